//! Jobs whose worker died: found by expired lease, then requeued or failed.

use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::watch;

use super::WorkerConfig;
use crate::clock::now_unix;
use crate::services;
use crate::store::jobs::{self, Ending};
use crate::store::{Store, StoreError};

/// Attempts after which even an idempotent job is failed rather than requeued.
const MAX_ATTEMPTS: i64 = 3;

/// Rescues working jobs whose lease expired before `expired_before`.
pub fn rescue_orphans(conn: &Connection, expired_before: i64) -> Result<usize, StoreError> {
    let orphans = jobs::orphans(conn, expired_before)?;
    for o in &orphans {
        let service = services::for_task(&o.task);
        // A job that acted on servers is handed back, to be inspected (and
        // reported) by its executor, never run again (worker/servers/recover.rs).
        let steps = crate::store::steps::of_job(conn, o.seq)?;
        let on_servers = steps
            .iter()
            .any(|s| s.step != "program" && s.step != "gateway_stopped");
        // A program it ran may still be running: stopped before the job is
        // failed or queued again (never two at once).
        let program: Option<String> = steps
            .iter()
            .rev()
            .find(|s| s.step == "program")
            .and_then(|s| super::orphans::stop(&s.detail));
        let ending = match service {
            Some(s) if !s.idempotent() && on_servers && o.attempts <= MAX_ATTEMPTS => {
                crate::store::steps::append(
                    conn,
                    o.seq,
                    crate::clock::now_millis(),
                    "gateway_stopped",
                    "info",
                    "the gateway stopped while this job ran; its servers will be inspected",
                )?;
                Ending::Requeued
            }
            Some(s) if s.idempotent() && o.attempts < MAX_ATTEMPTS => Ending::Requeued,
            Some(s) if s.idempotent() => Ending::Failed {
                code: 5000,
                message: format!(
                    "JobInterrupted, {} was interrupted {} times; giving up",
                    s.name(),
                    o.attempts
                ),
            },
            Some(s) => Ending::Failed {
                code: 5000,
                message: format!(
                    "JobInterrupted, the gateway stopped while {} was running{}; it is not safe to repeat, so it was not retried: check the cluster and submit it again",
                    s.name(),
                    program
                        .as_deref()
                        .map(|p| format!(" ({p})"))
                        .unwrap_or_default()
                ),
            },
            None => Ending::Failed {
                code: 5000,
                message: "JobInterrupted, the gateway stopped while this job was running".into(),
            },
        };
        tracing::warn!(job_id = %o.job_id, ?ending, "rescued an orphaned job");
        if matches!(ending, Ending::Failed { .. })
            && let Some(Err(why)) = super::failure_effect(&o.task)
                .map(|mut e| crate::store::sqlite::apply(conn, &mut e))
                .transpose()?
        {
            tracing::warn!(job_id = %o.job_id, %why, "a failed job's model effect was refused");
        }
        jobs::finish(conn, o.seq, &o.lane, &ending)?;
    }
    Ok(orphans.len())
}

pub(super) async fn run(store: Store, cfg: WorkerConfig, mut stop: watch::Receiver<bool>) {
    let every = Duration::from_secs((cfg.lease_secs / 2).max(1) as u64);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        match store.writer.write(|c| rescue_orphans(c, now_unix())).await {
            Ok(0) => {}
            Ok(_) => store.job_ready.notify_one(),
            Err(StoreError::Closed) => return,
            Err(e) => tracing::error!(error = %e, "rescue failed"),
        }
    }
}
