//! `StopDRTasks`: the standby applies what it received and stops
//! replicating for good (like `stop_standby`); the task ends `stopped`.

use serde_json::json;

use super::super::{Action, Context, Reply};
use crate::BoxFuture;
use crate::error::ApiError;
use crate::services::dr_task::STOP;

pub struct StopDRTasks;

const RUNNING: [&str; 5] = [
    "syncing",
    "sync_failed",
    "paused",
    "pending_start",
    "init_failed",
];

impl Action for StopDRTasks {
    fn name(&self) -> &'static str {
        "StopDRTasks"
    }

    fn handle<'a>(&'a self, cx: &'a Context<'a>) -> BoxFuture<'a, Result<Reply, ApiError>> {
        Box::pin(async move {
            let tasks = super::named_tasks(cx)?;
            let mut jobs = Vec::new();
            for t in &tasks {
                if !RUNNING.contains(&t.status.as_str()) {
                    let refused = ApiError::PermissionDenied(format!(
                        "DR task [{}] is {}; only a running task stops",
                        t.id, t.status
                    ));
                    super::super::unless_replayed(cx, &t.id, refused)?;
                }
                jobs.push((
                    t.id.clone(),
                    super::job(cx, self.name(), t, &STOP, json!({"dr_task": t.id}))?,
                ));
            }
            let ids: Vec<String> = tasks.iter().map(|t| t.id.clone()).collect();
            let marked = ids.clone();
            let stored = super::super::enqueue_with(cx, jobs, move |c| {
                for id in &marked {
                    c.set_task_status(id, "stopping", None)?;
                    c.task_log(id, "info", "stop_queued", "", "stop queued")?;
                }
                Ok(())
            })
            .await?;
            Ok(super::job_ids(ids.into_iter().zip(stored)))
        })
    }
}
