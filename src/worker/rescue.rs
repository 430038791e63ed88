//! Jobs whose worker died: found by expired lease, then requeued or failed.

use std::time::Duration;

use tokio::sync::watch;

use super::WorkerConfig;
use crate::clock::now_unix;
use crate::services;
use crate::store::queue::{Ending, Orphan, Queue, Rescue, Step};
use crate::store::{Store, StoreError};

/// Attempts after which even an idempotent job is failed rather than requeued.
const MAX_ATTEMPTS: i64 = 3;

/// How an orphan ends: an idempotent job goes back to the queue (a few
/// times), a job that acted on servers is handed back to be inspected by
/// its executor (worker/servers/recover.rs), never run again; anything else
/// fails as interrupted.
pub fn decide(o: &Orphan, steps: &[Step]) -> Rescue {
    let service = services::for_task(&o.task);
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
    let mut note = None;
    let ending = match service {
        Some(s) if !s.idempotent() && on_servers && o.attempts <= MAX_ATTEMPTS => {
            note = Some((
                "gateway_stopped".to_string(),
                "the gateway stopped while this job ran; its servers will be inspected".to_string(),
            ));
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
    let on_failure = matches!(ending, Ending::Failed { .. })
        .then(|| super::failure_effect(&o.task))
        .flatten();
    Rescue {
        ending,
        note,
        on_failure,
    }
}

pub(super) async fn run(store: Store, cfg: WorkerConfig, mut stop: watch::Receiver<bool>) {
    let every = Duration::from_secs((cfg.lease_secs / 2).max(1) as u64);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        match store.rescue(now_unix(), Box::new(decide)).await {
            Ok(0) => {}
            Ok(_) => store.job_ready().notify_one(),
            Err(StoreError::Closed) => return,
            Err(e) => tracing::error!(error = %e, "rescue failed"),
        }
    }
}
