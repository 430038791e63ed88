//! Workers: claim → execute → record, beside the request path.
//!
//! A claim takes a lease (owner + expiry) that a heartbeat extends while the
//! job runs; jobs of one lane (cluster) run one at a time, in submission order.
//! The rescuer hands back jobs whose lease ran out: an idempotent service goes
//! back to the queue, any other ends `failed` as interrupted, never re-run.

pub mod allow;
pub mod command;
pub mod executor;
pub mod model;
pub mod orphans;
mod prune;
mod rescue;
pub mod servers;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock::now_millis;
use crate::services::{self, Service};
use crate::store::jobs::{Claimed, Ending};
use crate::store::queue::{Outcome, Queue};
use crate::store::{Store, StoreError};
use executor::{Executor, Failure};
pub use rescue::decide as rescue_decision;

pub use crate::store::effect::{Effect, EffectError};

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub workers: usize,
    pub lease_secs: i64,
    /// Fallback poll when no wake-up arrives.
    pub poll: Duration,
    /// Unique per process, so leases of a dead process are recognisable.
    pub instance: String,
    /// Finished jobs older than this are deleted.
    pub retention_secs: i64,
    pub prune_every: Duration,
    /// Longest any attempt may run (a service may set a shorter one).
    pub job_timeout: Duration,
}

pub struct WorkerPool {
    stop: watch::Sender<bool>,
    handles: Vec<JoinHandle<()>>,
}

impl WorkerPool {
    pub fn spawn(store: Store, executor: Arc<dyn Executor>, cfg: WorkerConfig) -> WorkerPool {
        let (stop, stop_rx) = watch::channel(false);
        let mut handles = Vec::new();
        for n in 0..cfg.workers {
            let worker = Worker {
                id: format!("{}-{n}", cfg.instance),
                store: store.clone(),
                executor: executor.clone(),
                cfg: cfg.clone(),
            };
            handles.push(tokio::spawn(worker.run(stop_rx.clone())));
        }
        handles.push(tokio::spawn(rescue::run(
            store.clone(),
            cfg.clone(),
            stop_rx.clone(),
        )));
        handles.push(tokio::spawn(prune::run(store, cfg, stop_rx)));
        WorkerPool { stop, handles }
    }

    /// Stops claiming; jobs already running finish and are recorded.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for h in self.handles {
            let _ = h.await;
        }
    }
}

struct Worker {
    id: String,
    store: Store,
    executor: Arc<dyn Executor>,
    cfg: WorkerConfig,
}

impl Worker {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            match self.store.claim(&self.id, self.cfg.lease_secs).await {
                Ok(Some(job)) => {
                    // Another job may be ready too: pass the wake-up on.
                    self.store.job_ready().notify_one();
                    self.run_job(job, stop.clone()).await;
                }
                Ok(None) => {
                    tokio::select! {
                        _ = self.store.job_ready().notified() => {}
                        _ = tokio::time::sleep(self.cfg.poll) => {}
                        _ = stop.changed() => {}
                    }
                }
                Err(StoreError::Closed) => break,
                Err(e) => {
                    tracing::error!(error = %e, "claim failed");
                    tokio::time::sleep(self.cfg.poll).await;
                }
            }
        }
    }

    async fn run_job(&self, job: Claimed, mut stop: watch::Receiver<bool>) {
        let service = services::for_task(&job.task);
        let kind = service.map_or(job.action.as_str(), |s| s.name());
        tracing::info!(job_id = %job.job_id, service = kind, cluster = %job.lane, "job started");
        let limit = service.map_or(self.cfg.job_timeout, |s| {
            s.timeout().min(self.cfg.job_timeout)
        });
        let attempt = async {
            match tokio::time::timeout(limit, self.executor.execute(&job)).await {
                Ok(outcome) => outcome,
                Err(_) => Err(Failure::new(
                    5000,
                    format!(
                        "JobTimeout, the attempt did not finish within {} s",
                        limit.as_secs()
                    ),
                    true,
                )),
            }
        };
        let heartbeat = self.spawn_heartbeat(job.seq);
        let outcome = if self.executor.cancel_safe(&job) {
            tokio::select! {
                o = attempt => Some(o),
                _ = stop.wait_for(|s| *s) => None,
            }
        } else {
            Some(attempt.await)
        };
        heartbeat.abort();
        let mut output = String::new();
        let mut observed = None;
        let outcome = outcome.map(|o| match o {
            Ok(done) => {
                output = done.output;
                Ok(done.effect)
            }
            Err(mut f) => {
                output = std::mem::take(&mut f.output);
                observed = f.effect.take();
                Err(retry_or_fail(f, service, job.attempts))
            }
        });
        let on_failure = match &outcome {
            Some(Err(Ending::Failed { .. })) => observed.or_else(|| failure_effect(&job.task)),
            _ => None,
        };
        let recorded = self
            .store
            .record(Outcome {
                seq: job.seq,
                lane: job.lane.clone(),
                worker: self.id.clone(),
                result: outcome,
                on_failure,
                output,
            })
            .await;
        match recorded {
            Ok(Some(status)) => {
                tracing::info!(job_id = %job.job_id, service = kind, cluster = %job.lane, outcome = status, "job ended");
                let name = service.map_or(job.action.as_str(), |s| s.name());
                let took = crate::clock::now_millis()
                    .saturating_sub(job.started_ms)
                    .max(0);
                crate::metrics::job(name, status, Duration::from_millis(took as u64));
            }
            Ok(None) => {
                tracing::warn!(job_id = %job.job_id, "lease lost before the job was recorded")
            }
            Err(e) => tracing::error!(job_id = %job.job_id, error = %e, "recording a job failed"),
        }
    }

    fn spawn_heartbeat(&self, seq: i64) -> JoinHandle<()> {
        let (store, wid, lease) = (self.store.clone(), self.id.clone(), self.cfg.lease_secs);
        tokio::spawn(async move {
            let every = Duration::from_secs((lease / 3).max(1) as u64);
            loop {
                tokio::time::sleep(every).await;
                if !matches!(store.heartbeat(seq, &wid, lease).await, Ok(true)) {
                    break;
                }
            }
        })
    }
}

/// Retries are for idempotent services only, with exponential backoff
/// (1 s, 2 s, 4 s … at most 60 s) up to the service's attempt limit.
fn retry_or_fail(f: Failure, service: Option<&'static dyn Service>, attempts: i64) -> Ending {
    match service {
        Some(s) if f.retryable && s.idempotent() && attempts < i64::from(s.max_attempts()) => {
            let backoff = 1i64 << (attempts - 1).clamp(0, 6);
            // Lanes wait in whole seconds: rounded up, the wait is never
            // shorter than the backoff (`now_unix() + 1` could be 1 ms away).
            Ending::Retry {
                at: (now_millis() + backoff.min(60) * 1000 + 999) / 1000,
                code: f.code,
                message: f.message,
            }
        }
        Some(s) if f.retryable && s.idempotent() => Ending::Failed {
            code: f.code,
            message: format!("{} (gave up after {attempts} attempts)", f.message),
        },
        Some(s) if f.retryable => Ending::Failed {
            code: f.code,
            message: format!(
                "{} ({} is not safe to repeat, so it was not retried)",
                f.message,
                s.name()
            ),
        },
        _ => Ending::Failed {
            code: f.code,
            message: f.message,
        },
    }
}

/// What a job that ended `failed` leaves in the model (its service says).
fn failure_effect(task: &str) -> Option<Effect> {
    let task: services::Task = serde_json::from_str(task).ok()?;
    services::find_job_kind(&task.service)?.on_failure(&task.cluster, &task.params)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lanes wait in whole seconds; the backoff must not shrink to a
    /// fraction of one when a failure lands late in a second.
    #[test]
    fn a_retry_waits_at_least_its_backoff() {
        let service = services::find("stop_standby");
        for attempts in 1..=2 {
            let before = crate::clock::now_millis();
            let ending = retry_or_fail(Failure::new(5000, "down", true), service, attempts);
            let Ending::Retry { at, .. } = ending else {
                panic!("attempt {attempts} was not retried: {ending:?}");
            };
            let backoff = 1000 << (attempts - 1);
            assert!(
                at * 1000 >= before + backoff,
                "attempt {attempts}: {at} from {before}"
            );
            assert!(
                at * 1000 < before + backoff + 2000,
                "attempt {attempts}: {at} from {before}"
            );
        }
    }
}
