//! The model executor: simulates each service against the gateway's own
//! cluster model. It takes a configurable time and never opens a connection
//! to any host named in `service_params`.

use std::time::Duration;

use super::Effect;
use super::executor::{Executor, Failure};
use crate::BoxFuture;
use crate::services::{self, Task};
use crate::store::jobs::Claimed;

pub struct ModelExecutor {
    pub delay: Duration,
}

impl Executor for ModelExecutor {
    fn execute<'a>(&'a self, job: &'a Claimed) -> BoxFuture<'a, Result<Effect, Failure>> {
        Box::pin(async move {
            let task: Task = serde_json::from_str(&job.task).map_err(|e| Failure {
                code: 5000,
                message: format!("InternalError, the stored task is unreadable: {e}"),
                retryable: false,
            })?;
            let service = services::find_job_kind(&task.service).ok_or_else(|| Failure {
                code: 5000,
                message: format!(
                    "InternalError, service [{}] is no longer supported",
                    task.service
                ),
                retryable: false,
            })?;
            tokio::time::sleep(self.delay).await;
            Ok(service.model(&task.cluster, &task.params))
        })
    }

    // Nothing happens until the effect is recorded.
    fn cancel_safe(&self) -> bool {
        true
    }
}
