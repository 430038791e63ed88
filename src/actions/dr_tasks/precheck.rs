//! `PrecheckDRTasks`: one pre-check job per task (`DescribeDRTaskPrechecks`
//! shows the items it finds). Changes nothing on the servers.

use serde_json::json;

use super::super::{Action, Context, Reply};
use crate::BoxFuture;
use crate::error::ApiError;
use crate::services::dr_task::PRECHECK;

pub struct PrecheckDRTasks;

/// Statuses a pre-check may start from.
const FROM: [&str; 4] = ["configuration", "start_failed", "stopped", "init_failed"];

impl Action for PrecheckDRTasks {
    fn name(&self) -> &'static str {
        "PrecheckDRTasks"
    }

    fn handle<'a>(&'a self, cx: &'a Context<'a>) -> BoxFuture<'a, Result<Reply, ApiError>> {
        Box::pin(async move {
            let tasks = super::named_tasks(cx)?;
            let mut jobs = Vec::new();
            for t in &tasks {
                if !FROM.contains(&t.status.as_str()) {
                    let refused = ApiError::PermissionDenied(format!(
                        "DR task [{}] is {}; a pre-check runs on a task in configuration",
                        t.id, t.status
                    ));
                    super::super::unless_replayed(cx, &t.id, refused)?;
                }
                let job = super::job(cx, self.name(), t, &PRECHECK, json!({"dr_task": t.id}))?;
                jobs.push((t.id.clone(), job));
            }
            let ids: Vec<String> = tasks.iter().map(|t| t.id.clone()).collect();
            let marked = ids.clone();
            let stored = super::super::enqueue_with(cx, jobs, move |c| {
                for id in &marked {
                    c.set_task_status(id, "prechecking", None)?;
                    c.task_log(id, "info", "precheck_queued", "", "pre-check queued")?;
                }
                Ok(())
            })
            .await?;
            Ok(super::job_ids(ids.into_iter().zip(stored)))
        })
    }
}
