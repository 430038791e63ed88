//! A PostgreSQL server for `qcgate bench shared`, on a free loopback port
//! with its own data dir, stopped when dropped. PostgreSQL refuses to run
//! as root: as root it runs as the `postgres` user (or `nobody`).

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::BenchResult;

pub struct PgServer {
    /// `postgres://qcgate@127.0.0.1:PORT/bench`.
    pub url: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // SAFETY: kill has no memory preconditions; SIGQUIT is an immediate stop.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGQUIT);
        }
        let _ = self.child.wait();
    }
}

/// Debian's newest server binaries, else those on PATH.
fn tool(name: &str) -> PathBuf {
    let newest = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|d| {
        d.filter_map(|e| e.ok())
            .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path())))
            .max()
    });
    match newest {
        Some((_, dir)) => dir.join("bin").join(name),
        None => PathBuf::from(name),
    }
}

fn unprivileged() -> BenchResult<Option<(u32, u32)>> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd")?;
    for name in ["postgres", "nobody"] {
        let prefix = format!("{name}:");
        if let Some(l) = passwd.lines().find(|l| l.starts_with(&prefix)) {
            let f: Vec<&str> = l.split(':').collect();
            if let (Some(uid), Some(gid)) = (f.get(2), f.get(3)) {
                return Ok(Some((uid.parse()?, gid.parse()?)));
            }
        }
    }
    Err("running as root with no postgres or nobody user to run PostgreSQL as".into())
}

impl PgServer {
    pub fn start() -> BenchResult<PgServer> {
        let user = unprivileged()?;
        let dir = tempfile::tempdir()?;
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
        }
        let data = dir.path().join("data");
        let mut initdb = Command::new(tool("initdb"));
        if let Some((uid, gid)) = user {
            initdb.uid(uid).gid(gid);
        }
        let out = initdb
            .args(["-A", "trust", "-U", "qcgate", "-E", "UTF8"])
            .arg("-D")
            .arg(&data)
            .output()
            .map_err(|e| format!("initdb ({e}); install PostgreSQL: apt-get install postgresql"))?;
        if !out.status.success() {
            return Err(format!("initdb: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut postgres = Command::new(tool("postgres"));
        if let Some((uid, gid)) = user {
            postgres.uid(uid).gid(gid);
        }
        // Durable as shipped (fsync on): the figures are about durable jobs.
        let child = postgres
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.path().display()))
            .args(["-c", "max_connections=300"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let server = PgServer {
            url: format!("postgres://qcgate@127.0.0.1:{port}/bench"),
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let made = Command::new("psql")
                .arg(format!("postgres://qcgate@127.0.0.1:{port}/postgres"))
                .args(["-XAtq", "-c", "CREATE DATABASE bench"])
                .stderr(Stdio::null())
                .status();
            if made.is_ok_and(|s| s.success()) {
                return Ok(server);
            }
            if Instant::now() > deadline {
                return Err("PostgreSQL did not start within 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
