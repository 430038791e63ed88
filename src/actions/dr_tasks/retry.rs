//! `RetryDRTasks`: a task whose replication broke (`sync_failed`) restarts
//! it once the cause is fixed; the sampler shows whether it holds.

use serde_json::json;

use super::super::{Action, Context, Reply};
use crate::BoxFuture;
use crate::error::ApiError;
use crate::services::dr_task::RETRY;

pub struct RetryDRTasks;

impl Action for RetryDRTasks {
    fn name(&self) -> &'static str {
        "RetryDRTasks"
    }

    fn handle<'a>(&'a self, cx: &'a Context<'a>) -> BoxFuture<'a, Result<Reply, ApiError>> {
        Box::pin(async move {
            let tasks = super::named_tasks(cx)?;
            let mut jobs = Vec::new();
            for t in &tasks {
                if t.status != "sync_failed" {
                    let refused = ApiError::PermissionDenied(format!(
                        "DR task [{}] is {}; only a task whose replication failed (sync_failed) is retried",
                        t.id, t.status
                    ));
                    super::super::unless_replayed(cx, &t.id, refused)?;
                }
                jobs.push((
                    t.id.clone(),
                    super::job(cx, self.name(), t, &RETRY, json!({"dr_task": t.id}))?,
                ));
            }
            let ids: Vec<String> = tasks.iter().map(|t| t.id.clone()).collect();
            let marked = ids.clone();
            let stored = super::super::enqueue_with(cx, jobs, move |c| {
                for id in &marked {
                    c.task_log(id, "info", "retry_queued", "", "retry queued")?;
                }
                Ok(())
            })
            .await?;
            Ok(super::job_ids(ids.into_iter().zip(stored)))
        })
    }
}
