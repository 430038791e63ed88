//! Local MariaDB servers for drills and benchmarks (and the tests): each a
//! `mariadbd` on its own loopback port with its own data directory, set up
//! as notes §B.0 asks (binlog, GTID strict mode, `read_only` at start), and
//! killed when dropped. Root signs in without a password on loopback; an
//! admin account for qcgate is created without binlogging.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use tokio::sync::Mutex;

/// The admin account each lab server gets.
pub const ADMIN_USER: &str = "qcadmin";

pub struct Server {
    pub port: u16,
    pub server_id: u32,
    dir: tempfile::TempDir,
    child: Option<Child>,
    admin_password: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("{0} (is mariadb-server installed?)")]
    Install(String),
    #[error("mariadbd on port {0} did not start: {1}")]
    Start(u16, String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Sql(#[from] mysql_async::Error),
}

/// One `mariadb-install-db` per machine and user, copied for each server;
/// made in a private directory and renamed into place, so concurrent
/// processes never see half of one.
fn template() -> Result<&'static Path, LabError> {
    static T: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let made = T.get_or_init(|| {
        // SAFETY: geteuid has no preconditions.
        let uid = unsafe { libc::geteuid() };
        let dir = std::env::temp_dir().join(format!("qcgate-lab-template-{uid}"));
        if dir.join("mysql").is_dir() {
            return Ok(dir);
        }
        let work = tempfile::Builder::new()
            .prefix("qcgate-lab-install-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let data = work.path().join("data");
        let out = Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args([
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--innodb-log-file-size=16M",
            ])
            .args(if is_root() {
                vec!["--user=root"]
            } else {
                vec![]
            })
            .output()
            .map_err(|e| format!("mariadb-install-db: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mariadb-install-db: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        // Another process may have won the race: theirs is as good.
        if std::fs::rename(&data, &dir).is_err() && !dir.join("mysql").is_dir() {
            return Err(format!("cannot place the template at {}", dir.display()));
        }
        Ok(dir)
    });
    made.as_deref().map_err(|e| LabError::Install(e.clone()))
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn free_port() -> Result<u16, LabError> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Server {
    /// A new server with `server_id`, read-only, with the admin account.
    pub async fn start(server_id: u32, admin_password: &str) -> Result<Server, LabError> {
        let dir = tempfile::Builder::new().prefix("qcgate-lab-").tempdir()?;
        let data = dir.path().join("data");
        let copied = Command::new("cp")
            .arg("-a")
            .arg(template()?)
            .arg(&data)
            .status()?;
        if !copied.success() {
            return Err(LabError::Install(
                "copying the template data dir failed".into(),
            ));
        }
        let mut s = Server {
            port: free_port()?,
            server_id,
            dir,
            child: None,
            admin_password: admin_password.to_string(),
        };
        s.launch().await?;
        let mut c = s.root().await?;
        c.query_drop(format!(
            "SET SESSION sql_log_bin=0; \
             CREATE USER '{ADMIN_USER}'@'%' IDENTIFIED BY {}; \
             GRANT ALL PRIVILEGES ON *.* TO '{ADMIN_USER}'@'%' WITH GRANT OPTION",
            mysql_async::Value::from(admin_password).as_sql(false)
        ))
        .await?;
        c.disconnect().await?;
        Ok(s)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    async fn launch(&mut self) -> Result<(), LabError> {
        let data = self.data_dir();
        let log = self.dir.path().join("err.log");
        let mut cmd = Command::new("mariadbd");
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!(
                "--socket={}",
                self.dir.path().join("s.sock").display()
            ))
            .arg(format!(
                "--pid-file={}",
                self.dir.path().join("m.pid").display()
            ))
            .arg(format!("--log-error={}", log.display()))
            .arg(format!("--port={}", self.port))
            .arg(format!("--server-id={}", self.server_id))
            // Replicas name themselves (SHOW SLAVE HOSTS), as pt-table-checksum expects.
            .arg("--report-host=127.0.0.1")
            .arg(format!("--report-port={}", self.port))
            .arg(format!("--log-bin={}", data.join("bin").display()))
            .arg(format!("--relay-log={}", data.join("relay").display()))
            .args([
                "--bind-address=127.0.0.1",
                "--log-slave-updates=ON",
                "--binlog-format=ROW",
                "--gtid-strict-mode=ON",
                "--read-only=ON",
                "--skip-name-resolve",
                "--innodb-buffer-pool-size=24M",
                "--innodb-log-file-size=16M",
                "--sync-binlog=1",
                "--innodb-flush-log-at-trx-commit=1",
                "--max-connections=200",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if is_root() {
            cmd.arg("--user=root");
        }
        self.child = Some(cmd.spawn()?);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(c) = Conn::new(self.opts("root", "")).await {
                drop(c);
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(LabError::Start(
                    self.port,
                    std::fs::read_to_string(&log).unwrap_or_default(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn opts(&self, user: &str, password: &str) -> OptsBuilder {
        OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(self.port)
            .user(Some(user))
            .pass(Some(password))
            .prefer_socket(false)
    }

    pub async fn root(&self) -> Result<Conn, LabError> {
        Ok(Conn::new(self.opts("root", "")).await?)
    }

    /// Runs statements as root.
    pub async fn exec(&self, sql: &str) -> Result<(), LabError> {
        let mut c = self.root().await?;
        c.query_drop(sql).await?;
        c.disconnect().await?;
        Ok(())
    }

    /// Writes the admin password to a 0600 file (for `servers add`).
    pub fn admin_password_file(&self) -> Result<PathBuf, LabError> {
        let path = self.dir.path().join("admin.pw");
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        std::io::Write::write_all(&mut opts.open(&path)?, self.admin_password.as_bytes())?;
        Ok(path)
    }

    /// `kill -9` of mariadbd.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on its data directory and port.
    pub async fn restart(&mut self) -> Result<(), LabError> {
        self.kill9();
        self.launch().await
    }
}

/// An application that knows nothing of switchovers: it writes to
/// whichever of two servers accepts, and remembers what was acknowledged.
pub struct Writer {
    acked: Arc<Mutex<Vec<(u64, Instant)>>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    /// Starts writing as `user` to whichever of the two servers accepts.
    pub fn start(ports: [u16; 2], user: &str, password: &str) -> Writer {
        let (user, password) = (user.to_string(), password.to_string());
        let acked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s) = (acked.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut id = 1_000_000_000u64;
            let mut target = 0usize;
            let mut conn: Option<mysql_async::Conn> = None;
            while !s.load(Ordering::Relaxed) {
                if conn.is_none() {
                    let opts = mysql_async::OptsBuilder::default()
                        .ip_or_hostname("127.0.0.1")
                        .tcp_port(ports[target])
                        .user(Some(user.clone()))
                        .pass(Some(password.clone()))
                        .prefer_socket(false);
                    conn = mysql_async::Conn::new(opts).await.ok();
                }
                let Some(c) = conn.as_mut() else {
                    target = 1 - target;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                };
                id += 1;
                match c
                    .query_drop(format!("INSERT INTO app.t VALUES ({id}, 'w')"))
                    .await
                {
                    Ok(()) => a.lock().await.push((id, Instant::now())),
                    Err(_) => {
                        conn = None;
                        target = 1 - target;
                    }
                }
            }
        });
        Writer { acked, stop, task }
    }

    /// The longest pause between acknowledged writes after `since`.
    pub async fn longest_gap_since(&self, since: Instant) -> f64 {
        let acked = self.acked.lock().await;
        let times: Vec<Instant> = acked
            .iter()
            .map(|(_, t)| *t)
            .filter(|t| *t >= since)
            .collect();
        times
            .windows(2)
            .map(|w| (w[1] - w[0]).as_secs_f64() * 1000.0)
            .fold(0.0, f64::max)
    }

    pub async fn finish(self) -> Vec<(u64, Instant)> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.acked.lock().await.clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}
