//! Test harness: a real gateway on 127.0.0.1:0 with a temporary data dir,
//! real signed requests over HTTP, and a real SQLite file.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use qcgate::app::{self, Gateway};
use qcgate::client::{Client, Credentials};
use qcgate::config::Config;
use qcgate::secret::Secret;
use qcgate::store::{self, clusters};
use serde_json::Value;

pub mod mariadb;
pub mod pg;
pub mod served;

pub const ZONE: &str = "sh1a";

/// Whether this test binary runs its suite on PostgreSQL: a `*_on_pg`
/// target (the same test file again, see tests/api_core_on_pg.rs) or
/// `QCGATE_TEST_STORE=postgres`.
pub fn on_postgres() -> bool {
    env!("CARGO_CRATE_NAME").ends_with("_on_pg")
        || std::env::var("QCGATE_TEST_STORE").is_ok_and(|s| s == "postgres")
}

pub struct Harness {
    pub gw: Option<Gateway>,
    /// The PostgreSQL server of a suite run on PostgreSQL.
    pub pg: Option<pg::Postgres>,
    /// Where the store is (the data dir's SQLite file, or a database).
    pub at: store::local::Location,
    pub dir: tempfile::TempDir,
    pub endpoint: String,
    /// Owner A's key (the first key, created by the gateway itself).
    pub a: Credentials,
    pub owner_a: String,
    /// Owner B's key, created the way `qcgate keys create` does.
    pub b: Credentials,
    pub owner_b: String,
}

impl Harness {
    pub async fn start(model_delay_ms: u64) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(dir, model_delay_ms).await
    }

    pub async fn start_in(dir: tempfile::TempDir, model_delay_ms: u64) -> Harness {
        Self::start_with(dir, |c| c.model_delay_ms = model_delay_ms).await
    }

    /// A gateway whose config `tweak` adjusts (listen and data dir are set here).
    pub async fn start_with(dir: tempfile::TempDir, tweak: impl FnOnce(&mut Config)) -> Harness {
        let (pg, at) = Self::store_for(&dir);
        let mut cfg = Config {
            listen: "127.0.0.1:0".parse().expect("addr"),
            data_dir: dir.path().to_path_buf(),
            store: at.store.clone(),
            master_key_file: at.master_key_file.clone(),
            ..Config::default()
        };
        tweak(&mut cfg);
        let gw = app::start(&cfg).await.expect("gateway starts");
        Self::adopt_at(dir, gw, pg, at)
    }

    /// SQLite in `dir`, or a new database on a PostgreSQL server (and the
    /// master key in a file, as a shared store needs it given).
    fn store_for(dir: &tempfile::TempDir) -> (Option<pg::Postgres>, store::local::Location) {
        let mut at = store::local::Location {
            data_dir: dir.path().to_path_buf(),
            store: None,
            master_key_file: None,
        };
        if !on_postgres() {
            return (None, at);
        }
        let server = pg::Postgres::start();
        at.store = Some(server.database());
        let key = dir.path().join("shared-master.key");
        std::fs::write(&key, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").expect("key");
        at.master_key_file = Some(key);
        (Some(server), at)
    }

    /// The shared store itself (PostgreSQL only), as another gateway holds it.
    pub fn shared_store(&self) -> Option<store::Store> {
        let url = self.at.store.as_deref()?;
        let key = qcgate::sealing::MasterKey::load_given(self.at.master_key_file.as_deref())
            .expect("master key");
        let pg = store::postgres::Pg::open(url, std::sync::Arc::new(key)).expect("store");
        Some(store::Store::from(pg))
    }

    /// Changes a job's row behind the gateway's back (`set`: an SQL SET list).
    pub fn edit_job(&self, id: &str, set: &str) {
        match (&self.pg, &self.at.store) {
            (Some(pg), Some(url)) => {
                let db = url.rsplit('/').next().expect("database");
                // Ids are not stored on PostgreSQL: the store works out the seq.
                let key =
                    qcgate::sealing::MasterKey::load_given(self.at.master_key_file.as_deref())
                        .expect("master key");
                let store =
                    store::postgres::Pg::open(url, std::sync::Arc::new(key)).expect("store");
                let seq = store.job_seq(id).expect("a job id");
                pg.value(db, &format!("UPDATE jobs SET {set} WHERE seq = {seq}"));
            }
            _ => {
                let db = rusqlite::Connection::open(self.db()).expect("db");
                db.execute(&format!("UPDATE jobs SET {set} WHERE id = ?1"), [id])
                    .expect("edit");
            }
        }
    }

    /// What a local command is given to find this gateway's store.
    pub fn store_args(&self) -> Vec<std::ffi::OsString> {
        let mut args = vec!["--data-dir".into(), self.dir.path().into()];
        if let (Some(url), Some(key)) = (&self.at.store, &self.at.master_key_file) {
            args.extend(["--store".into(), url.into(), "--master-key-file".into()]);
            args.push(key.into());
        }
        args
    }

    /// The store, as the local commands open it.
    pub fn local(&self) -> store::local::Local {
        store::local::Local::open(&self.at).expect("store")
    }

    /// Wraps a gateway already started on `dir`; adds owner B's key.
    pub fn adopt(dir: tempfile::TempDir, gw: Gateway) -> Harness {
        let at = store::local::Location {
            data_dir: dir.path().to_path_buf(),
            store: None,
            master_key_file: None,
        };
        Self::adopt_at(dir, gw, None, at)
    }

    fn adopt_at(
        dir: tempfile::TempDir,
        gw: Gateway,
        pg: Option<pg::Postgres>,
        at: store::local::Location,
    ) -> Harness {
        let first = gw
            .first_key
            .clone()
            .expect("a first key on an empty data dir");
        let b = store::local::Local::open(&at)
            .expect("store")
            .create_key("usr-OWNERBBB")
            .expect("key b");
        Harness {
            pg,
            at,
            endpoint: format!("http://{}/iaas/", gw.addr),
            gw: Some(gw),
            a: Credentials {
                access_key_id: first.access_key_id.clone(),
                secret_access_key: Secret::new(first.secret_access_key.clone()),
            },
            owner_a: first.owner.clone(),
            b: Credentials {
                access_key_id: b.access_key_id,
                secret_access_key: Secret::new(b.secret_access_key),
            },
            owner_b: b.owner,
            dir,
        }
    }

    pub fn db(&self) -> PathBuf {
        store::db_path(self.dir.path())
    }

    /// Registers a cluster, as `qcgate clusters add` does.
    pub fn add_cluster(&self, id: &str, zone: &str, owner: &str) {
        self.add_cluster_in(id, zone, owner, Default::default());
    }

    /// Registers a cluster with these nodes (`clusters add --read-nodes …`).
    pub fn add_cluster_with(&self, id: &str, owner: &str, layout: clusters::Layout) {
        self.add_cluster_in(id, ZONE, owner, layout);
    }

    fn add_cluster_in(&self, id: &str, zone: &str, owner: &str, layout: clusters::Layout) {
        let nodes = layout.nodes();
        let added = self
            .local()
            .change(|m| {
                m.create_cluster(&store::model::NewCluster {
                    id,
                    zone,
                    owner,
                    name: "",
                    nodes: &nodes,
                    status: "active",
                })
            })
            .expect("add");
        assert!(added, "cluster {id} added");
    }

    pub fn cluster(&self, id: &str) -> clusters::Cluster {
        self.local()
            .read(|m| m.cluster(id))
            .expect("read")
            .expect("cluster exists")
    }

    pub fn client_a(&self) -> Client {
        Client::new(&self.endpoint, self.a.clone()).expect("client")
    }

    pub fn client_b(&self) -> Client {
        Client::new(&self.endpoint, self.b.clone()).expect("client")
    }

    pub fn client_with(&self, access_key_id: &str, secret: &str) -> Client {
        Client::new(
            &self.endpoint,
            Credentials {
                access_key_id: access_key_id.into(),
                secret_access_key: Secret::new(secret),
            },
        )
        .expect("client")
    }

    /// Stops the gateway and starts a new one on the same data dir.
    pub async fn restart(&mut self, model_delay_ms: u64) {
        if let Some(gw) = self.gw.take() {
            gw.shutdown().await;
        }
        let cfg = Config {
            listen: "127.0.0.1:0".parse().expect("addr"),
            data_dir: self.dir.path().to_path_buf(),
            store: self.at.store.clone(),
            master_key_file: self.at.master_key_file.clone(),
            model_delay_ms,
            ..Config::default()
        };
        let gw = app::start(&cfg).await.expect("gateway restarts");
        self.endpoint = format!("http://{}/iaas/", gw.addr);
        self.gw = Some(gw);
    }

    pub async fn stop(mut self) {
        if let Some(gw) = self.gw.take() {
            gw.shutdown().await;
        }
    }
}

/// The service_params of seed 001, with the given source cluster.
pub fn standby_params(source: &str) -> String {
    format!(
        r#"{{"sync_way":"full","zone":"sh1a","host":"192.168.0.232","cluster_id":"{source}","user":"migrate_user","password":"Passwd@123","port":3306}}"#
    )
}

pub async fn start_standby(client: &mut Client, cluster: &str, source: &str) -> Value {
    let sp = standby_params(source);
    client
        .call(
            "RunClusterCustomService",
            &[
                ("cluster", cluster),
                ("role", "maininstance"),
                ("service", "start_standby"),
                ("service_params", &sp),
                ("zone", ZONE),
            ],
        )
        .await
        .expect("reply")
}

pub async fn job(client: &mut Client, job_id: &str) -> Value {
    let r = client
        .call("DescribeJobs", &[("jobs.1", job_id), ("zone", ZONE)])
        .await
        .expect("reply");
    assert_eq!(r["ret_code"], 0, "{r}");
    r["job_set"][0].clone()
}

/// Polls until the job leaves pending/working; returns every status seen.
pub async fn wait_job(
    client: &mut Client,
    job_id: &str,
    timeout: Duration,
) -> (Value, Vec<String>) {
    let deadline = Instant::now() + timeout;
    let mut seen: Vec<String> = Vec::new();
    loop {
        let j = job(client, job_id).await;
        let status = j["status"].as_str().unwrap_or("?").to_string();
        if seen.last() != Some(&status) {
            seen.push(status.clone());
        }
        if status != "pending" && status != "working" {
            return (j, seen);
        }
        assert!(
            Instant::now() < deadline,
            "job {job_id} still {status} after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Compares an error envelope with `fixtures/errors/NAME.json`
/// (`UPDATE_GOLDEN=1` rewrites the file). Timestamps are normalised.
pub fn assert_golden(name: &str, reply: &Value) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/errors")
        .join(format!("{name}.json"));
    let actual = normalise(&serde_json::to_string_pretty(reply).expect("json")) + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, &actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing golden file {} (run with UPDATE_GOLDEN=1)",
            path.display()
        )
    });
    assert_eq!(actual, expected, "reply differs from {}", path.display());
}

/// Replaces `YYYY-MM-DDThh:mm:ssZ` with `<TIME>` and random node ids
/// (`cln-…`) with `cln-<ID>`.
fn normalise(s: &str) -> String {
    let s = normalise_times(s);
    let mut out = String::with_capacity(s.len());
    let mut rest = s.as_str();
    while let Some(i) = rest.find("cln-") {
        out.push_str(&rest[..i + 4]);
        rest = &rest[i + 4..];
        let id_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
            .count();
        if id_len > 0 {
            out.push_str("<ID>");
        }
        rest = &rest[id_len..];
    }
    out.push_str(rest);
    out
}

fn normalise_times(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let shape = b"dddd-dd-ddTdd:dd:ddZ";
    while i < b.len() {
        if i + shape.len() <= b.len()
            && shape
                .iter()
                .zip(&b[i..i + shape.len()])
                .all(|(p, c)| match p {
                    b'd' => c.is_ascii_digit(),
                    _ => p == c,
                })
        {
            out.push_str("<TIME>");
            i += shape.len();
        } else {
            let ch = s[i..].chars().next().expect("char");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// Writes raw bytes on a fresh connection while reading the whole answer
/// (concurrently, so an early answer to a huge request is not lost).
pub async fn raw_exchange(h: &Harness, request: Vec<u8>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = h
        .endpoint
        .trim_start_matches("http://")
        .trim_end_matches("/iaas/")
        .to_string();
    let s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut rd, mut wr) = s.into_split();
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(&request).await;
        wr
    });
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, rd.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if response_complete(&out) {
            break;
        }
    }
    let _ = writer.await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `bytes` hold one whole response (head and content-length body).
fn response_complete(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    head.lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .and_then(|v| v.trim().parse::<usize>().ok())
        })
        .is_some_and(|len| body.len() >= len)
}

/// `RunClusterCustomService` on `cluster` (role omitted when empty).
pub async fn rccs(
    client: &mut Client,
    cluster: &str,
    service: &str,
    role: &str,
    sp: &str,
) -> Value {
    let mut p = vec![("cluster", cluster), ("service", service), ("zone", ZONE)];
    if !role.is_empty() {
        p.push(("role", role));
    }
    if !sp.is_empty() {
        p.push(("service_params", sp));
    }
    client
        .call("RunClusterCustomService", &p)
        .await
        .expect("reply")
}

/// Runs a service and waits for its job; panics unless it succeeds.
pub async fn run_ok(client: &mut Client, cluster: &str, service: &str, role: &str, sp: &str) {
    let r = rccs(client, cluster, service, role, sp).await;
    assert_eq!(r["ret_code"], 0, "{service}: {r}");
    let (j, _) = wait_job(
        client,
        r["job_id"].as_str().expect("job_id"),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(j["status"], "successful", "{service}: {j}");
}

/// The `node_set` of a cluster.
pub async fn nodes(client: &mut Client, cluster: &str) -> Vec<Value> {
    let r = client
        .call("DescribeClusterNodes", &[("cluster", cluster)])
        .await
        .expect("reply");
    assert_eq!(r["ret_code"], 0, "{r}");
    r["node_set"].as_array().expect("node_set").clone()
}

/// The node ids of `role`, the primary first.
pub async fn node_ids(client: &mut Client, cluster: &str, role: &str) -> Vec<String> {
    nodes(client, cluster)
        .await
        .iter()
        .filter(|n| n["role"] == role)
        .map(|n| n["node_id"].as_str().expect("id").to_string())
        .collect()
}

/// One cluster of `cluster_set`.
pub async fn describe_cluster(client: &mut Client, cluster: &str) -> Value {
    let r = client
        .call(
            "DescribeClusters",
            &[
                ("clusters.1", cluster),
                ("status.1", "active"),
                ("status.2", "stopped"),
                ("status.3", "pending"),
                ("status.4", "failed"),
                ("status.5", "deleted"),
                ("status.6", "ceased"),
            ],
        )
        .await
        .expect("reply");
    assert_eq!(r["ret_code"], 0, "{r}");
    r["cluster_set"][0].clone()
}
