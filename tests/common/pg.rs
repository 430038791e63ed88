//! A real PostgreSQL server for the tests: started on a free loopback port
//! with its own data dir (initdb, then postgres), stopped when dropped.
//! PostgreSQL refuses to run as root, so as root it runs as the `postgres`
//! user (Debian's package makes it) or `nobody`.
//! `QCGATE_TEST_PG_URL=postgres://USER@HOST:PORT` names a server to use
//! instead; each test then gets a database of its own on it.
#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub struct Postgres {
    /// `postgres://USER@127.0.0.1:PORT` (no database).
    pub server: String,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

/// The directory of initdb and postgres: `QCGATE_TEST_PG_BIN`, else the
/// newest of Debian's /usr/lib/postgresql/*/bin, else PATH.
fn bin_dir() -> Option<PathBuf> {
    if let Ok(d) = std::env::var("QCGATE_TEST_PG_BIN") {
        return Some(PathBuf::from(d));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b)
}

fn tool(name: &str) -> PathBuf {
    match bin_dir() {
        Some(d) => d.join(name),
        None => PathBuf::from(name),
    }
}

/// uid and gid to run the server as when we are root.
fn unprivileged() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").expect("passwd");
    for name in ["postgres", "nobody"] {
        if let Some(l) = passwd.lines().find(|l| l.starts_with(&format!("{name}:"))) {
            let f: Vec<&str> = l.split(':').collect();
            return Some((f[2].parse().expect("uid"), f[3].parse().expect("gid")));
        }
    }
    panic!("running as root, and no postgres or nobody user to run PostgreSQL as");
}

fn as_user(cmd: &mut Command, user: Option<(u32, u32)>) -> &mut Command {
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

static DATABASES: AtomicU32 = AtomicU32::new(0);

impl Postgres {
    pub fn start() -> Postgres {
        if let Ok(server) = std::env::var("QCGATE_TEST_PG_URL") {
            return Postgres {
                server: server.trim_end_matches('/').to_string(),
                child: None,
                _dir: None,
            };
        }
        let user = unprivileged();
        let dir = tempfile::tempdir().expect("tmp");
        let data = dir.path().join("data");
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown");
        }
        let out = as_user(&mut Command::new(tool("initdb")), user)
            .args(["-A", "trust", "-U", "qcgate", "--no-sync", "-E", "UTF8"])
            .arg("-D")
            .arg(&data)
            .output()
            .expect("initdb runs (install PostgreSQL: apt-get install postgresql)");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let child = as_user(&mut Command::new(tool("postgres")), user)
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.path().display()))
            .args(["-c", "fsync=off", "-c", "max_connections=300"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("postgres starts");
        let pg = Postgres {
            server: format!("postgres://qcgate@127.0.0.1:{port}"),
            child: Some(child),
            _dir: Some(dir),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !pg.psql("postgres", "SELECT 1").0 {
            assert!(Instant::now() < deadline, "PostgreSQL did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        pg
    }

    /// Runs one statement with psql; (ok, output).
    pub fn psql(&self, db: &str, sql: &str) -> (bool, String) {
        let out = Command::new("psql")
            .arg(format!("{}/{db}", self.server))
            .args(["-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("psql runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    }

    /// One value a query reads.
    pub fn value(&self, db: &str, sql: &str) -> String {
        let (ok, out) = self.psql(db, sql);
        assert!(ok, "{sql}: {out}");
        out
    }

    /// A new, empty database; its URL.
    pub fn database(&self) -> String {
        let name = format!(
            "qc_{}_{}",
            std::process::id(),
            DATABASES.fetch_add(1, Ordering::Relaxed)
        );
        let (ok, out) = self.psql("postgres", &format!("CREATE DATABASE {name}"));
        assert!(ok, "create database: {out}");
        format!("{}/{name}", self.server)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGQUIT: immediate shutdown; the data dir goes with the tempdir.
            let _ = Command::new("kill")
                .args(["-QUIT", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }
}
