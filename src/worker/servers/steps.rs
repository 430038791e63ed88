//! A DR job's steps, recorded durably as each begins and ends (so a gateway
//! stopped mid-way knows what was under way), and kept as the job's output.

use std::time::Instant;

use super::fleet::internal;
use crate::clock::now_millis;
use crate::store::Store;
use crate::worker::executor::Failure;

pub struct Steps {
    store: Store,
    seq: i64,
    /// For the log lines: the job, its service and cluster.
    job_id: String,
    service: String,
    cluster: String,
    started: Instant,
    lines: Vec<String>,
    /// A DR task whose log gets every step too, and the job's id.
    task: Option<(String, String)>,
}

impl Steps {
    pub fn new(store: Store, seq: i64, job_id: &str, service: &str, cluster: &str) -> Steps {
        Steps {
            store,
            seq,
            job_id: job_id.to_string(),
            service: service.to_string(),
            cluster: cluster.to_string(),
            started: Instant::now(),
            lines: Vec::new(),
            task: None,
        }
    }

    /// Every step from now on also goes to DR task `task_id`'s log.
    pub fn for_task(&mut self, task_id: &str, job_id: &str) {
        self.task = Some((task_id.to_string(), job_id.to_string()));
    }

    /// Milliseconds since the job started.
    pub fn elapsed_ms(&self) -> u128 {
        self.started.elapsed().as_millis()
    }

    /// Recorded (committed) before it returns: call it before changing a server.
    pub async fn begin(&mut self, step: &str, detail: impl Into<String>) -> Result<(), Failure> {
        self.record(step, "begin", detail.into()).await
    }

    pub async fn done(&mut self, step: &str, detail: impl Into<String>) -> Result<(), Failure> {
        self.record(step, "done", detail.into()).await
    }

    pub async fn info(&mut self, step: &str, detail: impl Into<String>) -> Result<(), Failure> {
        self.record(step, "info", detail.into()).await
    }

    /// Recorded as failed; a failure to record it is only logged (the job
    /// is failing anyway).
    pub async fn failed(&mut self, step: &str, detail: impl Into<String>) {
        if let Err(e) = self.record(step, "failed", detail.into()).await {
            tracing::warn!(seq = self.seq, error = %e.message, "a failed step was not recorded");
        }
    }

    async fn record(&mut self, step: &str, outcome: &str, detail: String) -> Result<(), Failure> {
        let at = now_millis();
        self.lines.push(format!(
            "+{:>6} ms  {step:<22} {outcome:<6} {detail}",
            self.elapsed_ms()
        ));
        tracing::info!(
            job_id = %self.job_id,
            service = %self.service,
            cluster = %self.cluster,
            step,
            outcome,
            %detail,
            "job step"
        );
        let (seq, step, outcome) = (self.seq, step.to_string(), outcome.to_string());
        let task = self.task.clone();
        self.store
            .change(move |c| {
                c.append_step(seq, at, &step, &outcome, &detail)?;
                if let Some((task_id, job_id)) = &task {
                    let level = match (outcome.as_str(), step.as_str()) {
                        ("failed", _) => "error",
                        (_, "warning" | "precheck_alarm") => "warning",
                        _ => "info",
                    };
                    let message = if detail.is_empty() {
                        format!("{step} {outcome}")
                    } else {
                        format!("{step} {outcome}: {detail}")
                    };
                    c.task_log(task_id, level, &step, job_id, &message)?;
                }
                Ok(())
            })
            .await
            .map_err(internal)
    }

    /// The steps as the job's output, then `evidence` as one JSON line.
    pub fn output(&self, evidence: &serde_json::Value) -> String {
        let mut out = self.lines.join("\n");
        out.push_str("\nevidence: ");
        out.push_str(&evidence.to_string());
        out.push('\n');
        out
    }

    /// A failure carrying the steps so far as its output.
    pub fn fail(&self, mut f: Failure, evidence: &serde_json::Value) -> Failure {
        f.output = self.output(evidence);
        f
    }
}
