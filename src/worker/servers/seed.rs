//! A consistent copy of a source's user schemas: `mariadb-dump
//! --single-transaction --master-data=2 --gtid` to a private file, restored
//! into each target with `sql_log_bin=0` (restoring into the binlog makes
//! the GTID position conflict: ERROR 1947, notes §B.2). Passwords reach the
//! tools only through 0600 option files removed after the run.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::process::Command;

use super::fleet::refused;
use super::shaping::Shaping;
use crate::mariadb::{Endpoint, GtidPos, Login, Node, runbook};
use crate::worker::executor::Failure;

/// A dump on disk, deleted when dropped.
pub struct Dump {
    _dir: tempfile::TempDir,
    pub path: std::path::PathBuf,
    pub gtid: GtidPos,
    pub bytes: u64,
    pub took: Duration,
}

/// An option file holding the login, readable by this user only.
fn options_file(
    dir: &Path,
    name: &str,
    ep: &Endpoint,
    login: &Login,
) -> Result<std::path::PathBuf, Failure> {
    let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let path = dir.join(name);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&path).map_err(io_failure)?;
    write!(
        f,
        "[client]\nhost=\"{}\"\nport={}\nuser=\"{}\"\npassword=\"{}\"\nprotocol=TCP\n",
        quote(&ep.host),
        ep.port,
        quote(&login.user),
        quote(login.password.expose())
    )
    .map_err(io_failure)?;
    Ok(path)
}

fn io_failure(e: std::io::Error) -> Failure {
    Failure::new(
        5000,
        format!("InternalError, preparing the copy: {e}"),
        false,
    )
}

/// A file streamed into a tool's stdin, shaped.
struct Feed {
    path: std::path::PathBuf,
    shaping: Shaping,
}

/// How a client tool failed.
enum ToolError {
    /// It did not start, broke, or ran out of time: the job's failure.
    Run(Failure),
    /// It exited non-zero: the last lines of its stderr (never a password:
    /// none is on its command line).
    Exit(String),
}

/// Runs a client tool with `stdout` and waits for it within `limit`.
async fn run_tool(
    mut cmd: Command,
    what: &str,
    limit: Duration,
    stdout: Stdio,
    feed: Option<Feed>,
) -> Result<(), ToolError> {
    cmd.stdout(stdout).stderr(Stdio::piped()).kill_on_drop(true);
    crate::worker::command::die_with_parent(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| {
        ToolError::Run(Failure::new(
            5000,
            format!("ToolMissing, {what} could not be started: {e}"),
            false,
        ))
    })?;
    let mut err = String::new();
    let stderr = child.stderr.take();
    let stdin = child.stdin.take();
    let wait = async {
        let fed = async {
            if let (Some(f), Some(stdin)) = (&feed, stdin) {
                // A tool that stops reading says why on stderr.
                let _ = f.shaping.feed(&f.path, stdin).await;
            }
        };
        let read = async {
            if let Some(mut s) = stderr {
                let _ = s.read_to_string(&mut err).await;
            }
        };
        tokio::join!(fed, read);
        child.wait().await
    };
    let status = match tokio::time::timeout(limit, wait).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return Err(ToolError::Run(Failure::new(
                5000,
                format!("ServerError, {what}: {e}"),
                false,
            )));
        }
        Err(_) => {
            return Err(ToolError::Run(Failure::new(
                5000,
                format!(
                    "ServerError, {what} did not finish within {} s",
                    limit.as_secs()
                ),
                false,
            )));
        }
    };
    if status.success() {
        return Ok(());
    }
    let tail: Vec<&str> = err.lines().rev().take(3).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(ToolError::Exit(if tail.is_empty() {
        "no message".into()
    } else {
        tail.join(" | ")
    }))
}

/// A private directory for one run, in `scratch` when given.
fn work_dir(prefix: &str, scratch: Option<&Path>) -> Result<tempfile::TempDir, Failure> {
    let mut b = tempfile::Builder::new();
    b.prefix(prefix);
    match scratch {
        Some(d) => b.tempdir_in(d),
        None => b.tempdir(),
    }
    .map_err(io_failure)
}

/// Dumps `schemas` of the source but the `ignore`d `db.table`s (or, with
/// no schemas, only its position).
pub async fn dump(
    source: &Endpoint,
    login: &Login,
    schemas: &[String],
    ignore: &[String],
    limit: Duration,
    scratch: Option<&Path>,
) -> Result<Dump, Failure> {
    let started = Instant::now();
    let dir = work_dir("qcgate-seed-", scratch)?;
    let opts = options_file(dir.path(), "source.cnf", source, login)?;
    let path = dir.path().join("dump.sql");
    let out = std::fs::File::create(&path).map_err(io_failure)?;
    let mut cmd = Command::new("mariadb-dump");
    cmd.arg(format!("--defaults-extra-file={}", opts.display()))
        .args([
            "--single-transaction",
            "--master-data=2",
            "--gtid",
            "--hex-blob",
            "--max-allowed-packet=1073741824",
        ]);
    if schemas.is_empty() {
        // Nothing to copy: the header still carries the consistent position.
        cmd.args(["--no-data", "--no-create-info", "--skip-triggers", "mysql"]);
    } else {
        cmd.args(ignore.iter().map(|t| format!("--ignore-table={t}")))
            .args(["--routines", "--events", "--triggers", "--databases"])
            .args(schemas);
    }
    let ran = run_tool(cmd, "mariadb-dump", limit, Stdio::from(out), None).await;
    let _ = std::fs::remove_file(&opts);
    match ran {
        Ok(()) => {}
        Err(ToolError::Run(f)) => return Err(f),
        Err(ToolError::Exit(why)) => {
            return Err(refused(format!(
                "the copy of the source [{source}] as [{}] failed: {why}",
                login.user
            )));
        }
    }
    let gtid = seed_gtid(&path)?;
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    Ok(Dump {
        _dir: dir,
        path,
        gtid,
        bytes,
        took: started.elapsed(),
    })
}

/// [`dump`], again while schemas appeared on the source between their
/// listing and the dump's snapshot: their creation is then below the
/// dump's position, so replication would never bring them (only
/// `qcgate_meta` counts when `whole` is false: a selection of objects).
#[allow(clippy::too_many_arguments)]
pub async fn dump_settled(
    source: &Endpoint,
    login: &Login,
    mut schemas: Vec<String>,
    ignore: &[String],
    whole: bool,
    limit: Duration,
    scratch: Option<&Path>,
) -> Result<(Dump, Vec<String>), Failure> {
    for _ in 0..3 {
        let dump = dump(source, login, &schemas, ignore, limit, scratch).await?;
        let mut src = Node::connect(source, login)
            .await
            .map_err(super::fleet::db)?;
        let now = runbook::copy_schemas(&mut src)
            .await
            .map_err(super::fleet::db)?;
        src.close().await;
        let missing: Vec<String> = now
            .into_iter()
            .filter(|s| !schemas.contains(s) && (whole || s == runbook::META_DB))
            .collect();
        if missing.is_empty() {
            return Ok((dump, schemas));
        }
        tracing::info!(?missing, %source, "schemas appeared during the copy; copying again");
        schemas.extend(missing);
    }
    Err(refused(format!(
        "schemas kept appearing on the source [{source}] during the copy; run it again when they settle"
    )))
}

/// The position the dump is consistent with, from its
/// `-- SET GLOBAL gtid_slave_pos='…';` line (near the end of the file).
fn seed_gtid(path: &Path) -> Result<GtidPos, Failure> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).map_err(io_failure)?;
    let len = f.metadata().map_err(io_failure)?.len();
    let mut text = String::new();
    // The line is near the start when there is no data, else near the end.
    for from in [len.saturating_sub(64 * 1024), 0] {
        f.seek(SeekFrom::Start(from)).map_err(io_failure)?;
        text.clear();
        let _ = Read::by_ref(&mut f)
            .take(256 * 1024)
            .read_to_string(&mut text);
        let marker = "SET GLOBAL gtid_slave_pos='";
        if let Some(i) = text.rfind(marker) {
            let rest = &text[i + marker.len()..];
            if let Some(end) = rest.find('\'') {
                return GtidPos::parse(&rest[..end]).map_err(|e| {
                    Failure::new(
                        5000,
                        format!("ServerError, the dump's position: {e}"),
                        false,
                    )
                });
            }
        }
    }
    Err(Failure::new(
        5000,
        "ServerError, the dump carries no GTID position (is the source's binlog on?)",
        false,
    ))
}

/// Restores a dump into one server without writing its binlog.
pub async fn restore(
    dump: &Dump,
    target: &Endpoint,
    login: &Login,
    limit: Duration,
    shaping: &Shaping,
    scratch: Option<&Path>,
) -> Result<(), Failure> {
    let dir = work_dir("qcgate-restore-", scratch)?;
    let opts = options_file(dir.path(), "target.cnf", target, login)?;
    let mut cmd = Command::new("mariadb");
    cmd.arg(format!("--defaults-extra-file={}", opts.display()))
        .args([
            "--init-command=SET SESSION sql_log_bin=0",
            "--max-allowed-packet=1073741824",
            "--binary-mode",
        ])
        .stdin(Stdio::piped());
    let what = format!("restoring into [{target}]");
    let feed = Feed {
        path: dump.path.clone(),
        shaping: shaping.clone(),
    };
    let done = match run_tool(cmd, &what, limit, Stdio::null(), Some(feed)).await {
        Ok(()) => Ok(()),
        Err(ToolError::Run(f)) => Err(f),
        Err(ToolError::Exit(why)) => Err(Failure::new(
            5000,
            format!("ServerError, {what} failed: {why}"),
            false,
        )),
    };
    let _ = std::fs::remove_file(&opts);
    done
}
