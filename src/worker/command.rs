//! The command executor: runs an operator's program for each job of the
//! services it is configured for; other jobs go to the model executor.
//!
//! The program gets the job as JSON on stdin, the decrypted `service_params`
//! included, and nothing secret in its arguments or environment (the
//! environment is cleared: the gateway's own may hold `QCGATE_MASTER_KEY`).
//! Exit 0 → `successful` (and the model records the effect); exit 75
//! (`EX_TEMPFAIL`) → a transient failure, retried for idempotent services;
//! anything else → `failed` with the last lines of stderr in the error.
//! What it prints is kept with the job, with every secret value removed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use super::allow::AllowList;
use super::executor::{Done, Executor, Failure};
use super::model::{ModelExecutor, job_kind};
use crate::BoxFuture;
use crate::secret::Secret;
use crate::services;
use crate::store::Store;
use crate::store::jobs::{self, Claimed};

/// The program for one service, from the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandConfig {
    pub program: PathBuf,
    #[serde(default)]
    pub args: Vec<String>,
    /// Longest a run may take (the service's own limit when shorter).
    pub timeout_secs: Option<u64>,
}

/// `[executor]` in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecutorConfig {
    /// Hosts jobs may name as connection targets: IPs, CIDR networks, names.
    pub allow_hosts: Vec<String>,
    /// Service (or job kind: `create_cluster`, …) → its program.
    pub commands: BTreeMap<String, CommandConfig>,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        ExecutorConfig {
            allow_hosts: super::allow::DEFAULT
                .iter()
                .map(|s| s.to_string())
                .collect(),
            commands: BTreeMap::new(),
        }
    }
}

/// Most of a program's output kept per stream (the tail).
const MAX_OUTPUT: usize = 64 * 1024;
/// Lines of stderr quoted in a failed job's error.
const STDERR_LINES: usize = 5;
/// `EX_TEMPFAIL` from sysexits.h: try again later.
const EXIT_TEMPFAIL: i32 = 75;

pub struct CommandExecutor {
    commands: BTreeMap<String, CommandConfig>,
    allow: AllowList,
    store: Store,
    model: ModelExecutor,
}

impl CommandExecutor {
    pub fn new(
        cfg: &ExecutorConfig,
        store: &Store,
        model: ModelExecutor,
    ) -> Result<CommandExecutor, String> {
        for (name, c) in &cfg.commands {
            if services::find_job_kind(name).is_none() {
                return Err(format!(
                    "[executor.commands.{name}]: no service or job kind is called {name}"
                ));
            }
            if !c.program.is_file() {
                return Err(format!(
                    "[executor.commands.{name}]: program {} is not a file",
                    c.program.display()
                ));
            }
        }
        Ok(CommandExecutor {
            commands: cfg.commands.clone(),
            allow: AllowList::parse(&cfg.allow_hosts)?,
            store: store.clone(),
            model,
        })
    }

    async fn run(&self, job: &Claimed, cmd: &CommandConfig) -> Result<Done, Failure> {
        let (service, task) = job_kind(job)?;
        if let Some(host) = service
            .dial_targets(&task.params)
            .into_iter()
            .find(|h| !self.allow.allows(h))
        {
            return Err(Failure::new(
                1400,
                format!(
                    "PermissionDenied, host [{host}] is not in the executor's allow_hosts; nothing was run"
                ),
                false,
            ));
        }
        // Jobs queued before this one may have changed the cluster (made it a
        // DR standby, stopped it): the program never runs what is now refused.
        let allowed = self
            .store
            .read(|c| Ok(services::still_allowed(service, c, &task.cluster)));
        match allowed {
            Ok(Ok(())) => {}
            Ok(Err(why)) => return Err(Failure::new(1400, why, false)),
            Err(_) => {
                return Err(Failure::new(
                    5000,
                    "InternalError, the cluster model could not be read",
                    true,
                ));
            }
        }
        let secrets = self.secrets(job)?;
        let mut params = task.params.clone();
        if let (Some(p), Some(Value::Object(s))) = (params.as_object_mut(), secret_fields(&secrets))
        {
            p.extend(s);
        }
        let input = Secret::new(
            json!({
                "job_id": job.job_id,
                "action": job.action,
                "service": task.service,
                "cluster_id": task.cluster,
                "role": task.role,
                "zone": job.zone,
                "owner": job.owner,
                "attempt": job.attempts,
                "service_params": params,
            })
            .to_string(),
        );
        let limit = cmd
            .timeout_secs
            .map_or(service.timeout(), Duration::from_secs)
            .min(service.timeout());
        let run = spawn_and_wait(cmd, &job.job_id, input, &self.store, job.seq);
        let (status, out, err) = match tokio::time::timeout(limit, run).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                return Err(Failure::new(
                    5000,
                    format!(
                        "CommandFailed, {} could not be run: {e}",
                        cmd.program.display()
                    ),
                    false,
                ));
            }
            // Dropping the run kills the child (kill_on_drop).
            Err(_) => {
                return Err(Failure::new(
                    5000,
                    format!(
                        "JobTimeout, {} did not finish within {} s and was killed",
                        cmd.program.display(),
                        limit.as_secs()
                    ),
                    true,
                ));
            }
        };
        let (out, err) = (
            scrub(&out, &secrets, job.secrets.is_some()),
            scrub(&err, &secrets, job.secrets.is_some()),
        );
        let output = match (out.is_empty() || out.ends_with('\n'), err.is_empty()) {
            (_, true) => out,
            (true, false) => format!("{out}--- stderr ---\n{err}"),
            (false, false) => format!("{out}\n--- stderr ---\n{err}"),
        };
        if status.success() {
            return Ok(Done {
                effect: services::effect(service, &task.cluster, &task.params),
                output,
            });
        }
        let how = match status.code() {
            Some(code) => format!("exited with status {code}"),
            None => "was killed by a signal".to_string(),
        };
        let tail: Vec<&str> = err.lines().rev().take(STDERR_LINES).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        let mut failure = Failure::new(
            5000,
            format!(
                "CommandFailed, {} {how}: {}",
                cmd.program.display(),
                if tail.is_empty() {
                    "(no stderr)".to_string()
                } else {
                    tail.join(" | ")
                }
            ),
            status.code() == Some(EXIT_TEMPFAIL),
        );
        failure.output = output;
        Err(failure)
    }

    /// The job's secret fields as a JSON object text (empty object if none).
    fn secrets(&self, job: &Claimed) -> Result<Secret, Failure> {
        match &job.secrets {
            None => Ok(Secret::new("{}")),
            Some(sealed) => jobs::open_secrets(&self.store.master, &job.owner, &job.lane, sealed)
                .map_err(|_| {
                    Failure::new(
                        5000,
                        "InternalError, the job's secrets could not be opened with this gateway's master key",
                        false,
                    )
                }),
        }
    }
}

fn secret_fields(secrets: &Secret) -> Option<Value> {
    serde_json::from_str(secrets.expose()).ok()
}

/// Removes every secret value, raw and as JSON would escape it.
fn scrub(text: &str, secrets: &Secret, any: bool) -> String {
    let mut text = text.to_string();
    if !any {
        return text;
    }
    if let Some(Value::Object(map)) = secret_fields(secrets) {
        for v in map.values() {
            let Some(raw) = v.as_str().filter(|s| !s.is_empty()) else {
                continue;
            };
            let escaped = Value::String(raw.to_string()).to_string();
            let escaped = &escaped[1..escaped.len() - 1];
            for form in [raw, escaped] {
                text = text.replace(form, "******");
            }
        }
    }
    text
}

async fn spawn_and_wait(
    cmd: &CommandConfig,
    job_id: &str,
    input: Secret,
    store: &Store,
    seq: i64,
) -> std::io::Result<(std::process::ExitStatus, String, String)> {
    let mut command = Command::new(&cmd.program);
    command
        .args(&cmd.args)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("QCGATE_JOB_ID", job_id)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    die_with_parent(&mut command);
    own_group(&mut command);
    let mut child = command.spawn()?;
    // Its process group, recorded before it can do much: a gateway that
    // restarts after being killed finds it, and what it started, by this.
    if let Some(pid) = child.id() {
        let detail = super::orphans::describe(pid);
        let recorded = store
            .change(move |c| {
                c.append_step(seq, crate::clock::now_millis(), "program", "info", &detail)
            })
            .await;
        if let Err(e) = recorded {
            tracing::warn!(error = %e, "a program's process group was not recorded");
        }
    }
    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(std::io::Error::other("the child's pipes are missing"));
    };
    let feed = async move {
        // A program that does not read its input is not an error.
        let _ = stdin.write_all(input.expose().as_bytes()).await;
        let _ = stdin.shutdown().await;
    };
    let (_, out, err, status) = tokio::join!(feed, tail(stdout), tail(stderr), child.wait());
    Ok((status?, out?, err?))
}

/// A program must not outlive a gateway killed with `kill -9` (it would go
/// on changing servers with nobody to record it): Linux sends it SIGKILL
/// when the gateway's thread that started it ends.
#[cfg(target_os = "linux")]
pub(crate) fn die_with_parent(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork
    // and exec here.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn die_with_parent(_cmd: &mut Command) {}

/// The program leads a process group of its own, so that what it starts
/// can be stopped with it.
#[cfg(unix)]
fn own_group(cmd: &mut Command) {
    cmd.process_group(0);
}

#[cfg(not(unix))]
fn own_group(_cmd: &mut Command) {}

/// Reads a stream to its end, keeping the last [`MAX_OUTPUT`] bytes.
async fn tail(mut r: impl AsyncRead + Unpin) -> std::io::Result<String> {
    let mut kept: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > 2 * MAX_OUTPUT {
            kept.drain(..kept.len() - MAX_OUTPUT);
        }
    }
    if kept.len() > MAX_OUTPUT {
        kept.drain(..kept.len() - MAX_OUTPUT);
    }
    Ok(String::from_utf8_lossy(&kept).into_owned())
}

impl Executor for CommandExecutor {
    fn execute<'a>(&'a self, job: &'a Claimed) -> BoxFuture<'a, Result<Done, Failure>> {
        Box::pin(async move {
            let (service, _) = job_kind(job)?;
            match self.commands.get(service.name()) {
                Some(cmd) => self.run(job, cmd).await,
                None => self.model.execute(job).await,
            }
        })
    }

    // A program may have done part of its work when stopped: wait for it.
    fn cancel_safe(&self, job: &Claimed) -> bool {
        job_kind(job).is_ok_and(|(s, _)| !self.commands.contains_key(s.name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_raw_and_json_escaped_secrets() {
        let s = Secret::new(r#"{"passwd":"pa\"ss\\w0rd"}"#);
        let text = r#"got pa"ss\w0rd and {"passwd":"pa\"ss\\w0rd"}"#;
        let out = scrub(text, &s, true);
        assert!(
            !out.contains("ss\\w0rd") && !out.contains(r#"ss\\w0rd"#),
            "{out}"
        );
        assert_eq!(out.matches("******").count(), 2, "{out}");
    }
}
