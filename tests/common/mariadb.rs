//! Real MariaDB servers for the tests (qcgate's own `lab`: each a
//! `mariadbd` on its own loopback port with its own data directory, started
//! and killed here), and the reads the assertions make on them.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};
use qcgate::lab::Server;

/// The admin account every test server gets (created without binlogging).
pub const ADMIN_USER: &str = qcgate::lab::ADMIN_USER;
pub const ADMIN_PASSWORD: &str = "Adm1n#S3cret-never-shown";
/// An ordinary application account: it lacks READ_ONLY ADMIN.
pub const APP_USER: &str = "app";
pub const APP_PASSWORD: &str = "App#Passw0rd";
/// The replication account a source offers (seed 001's migrate_user).
pub const REPL_USER: &str = "migrate_user";
pub const REPL_PASSWORD: &str = "Passwd@123";

pub struct Mariadb {
    pub port: u16,
    server: Server,
}

impl Mariadb {
    /// A new server, read-only as every managed node starts (notes §B.0).
    pub async fn start(server_id: u32) -> Mariadb {
        let server = Server::start(server_id, ADMIN_PASSWORD)
            .await
            .expect("mariadbd starts (install mariadb-server)");
        Mariadb {
            port: server.port,
            server,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A root session (passwordless on loopback, as install-db leaves it).
    pub async fn root(&self) -> Conn {
        self.server.root().await.expect("root session")
    }

    pub async fn connect_as(&self, user: &str, password: &str) -> Result<Conn, mysql_async::Error> {
        Conn::new(self.server.opts(user, password)).await
    }

    /// `kill -9` of mariadbd.
    pub fn kill9(&mut self) {
        self.server.kill9();
    }

    /// Starts it again on its data directory and port.
    pub async fn restart(&mut self) {
        self.server.restart().await.expect("mariadbd restarts");
    }

    // --- reading the server, for assertions ---

    pub async fn text(&self, sql: &str) -> String {
        let mut c = self.root().await;
        let row: Option<Row> = c.query_first(sql).await.expect(sql);
        c.disconnect().await.ok();
        row.map(|r| cell(&r, 0)).unwrap_or_default()
    }

    pub async fn exec(&self, sql: &str) {
        let mut c = self.root().await;
        c.query_drop(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        c.disconnect().await.ok();
    }

    pub async fn read_only(&self) -> bool {
        self.text("SELECT @@read_only").await == "1"
    }

    pub async fn gtid(&self) -> String {
        self.text("SELECT @@gtid_current_pos").await
    }

    /// `Master_Port` of SHOW SLAVE STATUS, if it replicates.
    pub async fn source_port(&self) -> Option<u16> {
        let mut c = self.root().await;
        let row: Option<Row> = c.query_first("SHOW SLAVE STATUS").await.expect("status");
        c.disconnect().await.ok();
        row.map(|r| named(&r, "Master_Port").parse().unwrap_or(0))
    }

    pub async fn slave_field(&self, name: &str) -> String {
        let mut c = self.root().await;
        let row: Option<Row> = c.query_first("SHOW SLAVE STATUS").await.expect("status");
        c.disconnect().await.ok();
        row.map(|r| named(&r, name)).unwrap_or_default()
    }

    pub async fn count(&self, table: &str) -> u64 {
        self.text(&format!("SELECT COUNT(*) FROM {table}"))
            .await
            .parse()
            .unwrap_or(0)
    }

    pub async fn checksum(&self, table: &str) -> String {
        let mut c = self.root().await;
        let row: Option<Row> = c
            .query_first(format!("CHECKSUM TABLE {table}"))
            .await
            .expect("checksum");
        c.disconnect().await.ok();
        row.map(|r| cell(&r, 1)).unwrap_or_default()
    }

    /// Waits until this server has applied `gtid`.
    pub async fn wait_for(&self, gtid: &str) -> bool {
        self.text(&format!("SELECT MASTER_GTID_WAIT('{gtid}', 10)"))
            .await
            == "0"
    }

    /// Makes it a writable primary with the accounts tests use and a table.
    pub async fn make_primary_with_data(&self, rows: u32) {
        self.exec(&format!(
            "SET GLOBAL read_only=OFF;
             CREATE USER '{REPL_USER}'@'%' IDENTIFIED BY '{REPL_PASSWORD}';
             GRANT REPLICATION SLAVE, REPLICATION SLAVE ADMIN, BINLOG MONITOR, SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES, RELOAD ON *.* TO '{REPL_USER}'@'%';
             CREATE USER '{APP_USER}'@'%' IDENTIFIED BY '{APP_PASSWORD}';
             GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP ON app.* TO '{APP_USER}'@'%';
             CREATE DATABASE app;
             CREATE TABLE app.t (id BIGINT PRIMARY KEY, v VARCHAR(64) NOT NULL) ENGINE=InnoDB;"
        ))
        .await;
        let mut c = self.root().await;
        let mut i = 1;
        while i <= rows {
            let end = (i + 499).min(rows);
            let values: Vec<String> = (i..=end).map(|n| format!("({n}, 'row {n}')")).collect();
            c.query_drop(format!("INSERT INTO app.t VALUES {}", values.join(",")))
                .await
                .expect("rows");
            i = end + 1;
        }
        c.disconnect().await.ok();
    }

    /// Makes it an HA copy of `primary` through the admin account.
    pub async fn follow(&self, primary: &Mariadb) {
        self.exec(&format!(
            "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='{ADMIN_USER}', \
             MASTER_PASSWORD='{ADMIN_PASSWORD}', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1; START SLAVE",
            primary.port
        ))
        .await;
    }
}

pub fn cell(r: &Row, i: usize) -> String {
    match r.as_ref(i) {
        Some(mysql_async::Value::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(mysql_async::Value::Int(n)) => n.to_string(),
        Some(mysql_async::Value::UInt(n)) => n.to_string(),
        _ => String::new(),
    }
}

pub fn named(r: &Row, name: &str) -> String {
    r.columns_ref()
        .iter()
        .position(|c| c.name_str() == name)
        .map(|i| cell(r, i))
        .unwrap_or_default()
}

/// Where a local command finds the store: a data dir, or a harness's store.
pub trait StoreAt {
    fn args(&self) -> Vec<std::ffi::OsString>;
}

impl StoreAt for &Path {
    fn args(&self) -> Vec<std::ffi::OsString> {
        vec!["--data-dir".into(), self.into()]
    }
}

impl StoreAt for &std::path::PathBuf {
    fn args(&self) -> Vec<std::ffi::OsString> {
        self.as_path().args()
    }
}

impl StoreAt for &super::Harness {
    fn args(&self) -> Vec<std::ffi::OsString> {
        self.store_args()
    }
}

/// `qcgate servers add` for a server, through the real command line.
pub fn register(at: impl StoreAt, m: &Mariadb, zone: &str) -> std::process::Output {
    // In the server's own directory, 0600: not among the gateway's files.
    let pw = m.server.admin_password_file().expect("password file");
    Command::new(env!("CARGO_BIN_EXE_qcgate"))
        .args([
            "servers",
            "add",
            "--endpoint",
            &m.endpoint(),
            "--zone",
            zone,
            "--admin-user",
            ADMIN_USER,
        ])
        .arg("--admin-password-file")
        .arg(&pw)
        .args(at.args())
        .output()
        .expect("qcgate runs")
}

/// `qcgate clusters add --server …`, through the real command line.
pub fn bind(
    at: impl StoreAt,
    id: &str,
    zone: &str,
    owner: &str,
    servers: &[&Mariadb],
) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_qcgate"));
    cmd.args([
        "clusters", "add", "--id", id, "--zone", zone, "--owner", owner,
    ]);
    for s in servers {
        cmd.args(["--server", &s.endpoint()]);
    }
    cmd.args(at.args()).output().expect("qcgate runs")
}

/// A command's output, which must have succeeded; stdout and stderr.
pub fn ok(out: std::process::Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

/// seed 001's `service_params`, from `source` (a registered cluster's primary).
pub fn standby_sp(source: &Mariadb, cluster: &str, sync_way: &str) -> String {
    serde_json::json!({"sync_way": sync_way, "zone": super::ZONE, "host": "127.0.0.1", "cluster_id": cluster,
           "user": REPL_USER, "password": REPL_PASSWORD, "port": source.port})
    .to_string()
}

/// Runs a service and waits (60 s at most) for its job; returns the job.
pub async fn run_job(
    c: &mut qcgate::client::Client,
    cluster: &str,
    service: &str,
    params: &str,
) -> serde_json::Value {
    let r = super::rccs(c, cluster, service, "", params).await;
    assert_eq!(r["ret_code"], 0, "{service}: {r}");
    let (j, _) = super::wait_job(
        c,
        r["job_id"].as_str().expect("id"),
        std::time::Duration::from_secs(60),
    )
    .await;
    j
}

/// The `evidence:` line of a job's output.
pub fn evidence(j: &serde_json::Value) -> serde_json::Value {
    let out = j["output"].as_str().unwrap_or_default();
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("evidence: "))
        .unwrap_or_else(|| panic!("no evidence in {out}"));
    serde_json::from_str(line).expect("evidence json")
}
