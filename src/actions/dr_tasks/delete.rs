//! `DeleteDRTasks`: forgets tasks that no longer run (stopped, failed to
//! start, never started, completed). The servers are not touched.

use serde_json::json;

use super::super::{Action, Context, Reply};
use crate::BoxFuture;
use crate::error::ApiError;

pub struct DeleteDRTasks;

const DELETABLE: [&str; 6] = [
    "configuration",
    "stopped",
    "start_failed",
    "init_failed",
    "completed",
    "failed_over",
];

impl Action for DeleteDRTasks {
    fn name(&self) -> &'static str {
        "DeleteDRTasks"
    }

    fn handle<'a>(&'a self, cx: &'a Context<'a>) -> BoxFuture<'a, Result<Reply, ApiError>> {
        Box::pin(async move {
            let tasks = super::named_tasks(cx)?;
            for t in &tasks {
                if !DELETABLE.contains(&t.status.as_str()) {
                    return Err(ApiError::PermissionDenied(format!(
                        "DR task [{}] is {}; stop it (StopDRTasks) before deleting it",
                        t.id, t.status
                    )));
                }
            }
            let ids: Vec<String> = tasks.iter().map(|t| t.id.clone()).collect();
            let done = ids.clone();
            cx.state
                .store
                .change(move |c| {
                    for id in &done {
                        c.set_task_status(id, "deleted", None)?;
                        c.task_log(id, "info", "deleted", "", "task deleted")?;
                    }
                    Ok(())
                })
                .await?;
            let mut r = Reply::new();
            r.insert("dr_tasks".into(), json!(ids));
            Ok(r)
        })
    }
}
