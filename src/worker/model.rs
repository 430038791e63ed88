//! The model executor: simulates each service against the gateway's own
//! cluster model. It takes a configurable time and never opens a connection
//! to any host named in `service_params`.

use std::time::Duration;

use super::executor::{Done, Executor, Failure};
use crate::BoxFuture;
use crate::services::{self, Service, Task};
use crate::store::jobs::Claimed;

pub struct ModelExecutor {
    pub delay: Duration,
}

impl Executor for ModelExecutor {
    fn execute<'a>(&'a self, job: &'a Claimed) -> BoxFuture<'a, Result<Done, Failure>> {
        Box::pin(async move {
            let (service, task) = job_kind(job)?;
            tokio::time::sleep(self.delay).await;
            Ok(Done {
                effect: services::effect(service, &task.cluster, &task.params),
                output: format!(
                    "simulated: the model executor applied {} to its model of cluster [{}]; no server was contacted (bind the cluster to servers to run it for real)\n",
                    task.service, task.cluster
                ),
            })
        })
    }

    // Nothing happens until the effect is recorded.
    fn cancel_safe(&self, _job: &Claimed) -> bool {
        true
    }
}

/// The stored task of a job and the service (or job kind) it names.
pub fn job_kind(job: &Claimed) -> Result<(&'static dyn Service, Task), Failure> {
    let task: Task = serde_json::from_str(&job.task).map_err(|e| {
        Failure::new(
            5000,
            format!("InternalError, the stored task is unreadable: {e}"),
            false,
        )
    })?;
    let service = services::find_job_kind(&task.service).ok_or_else(|| {
        Failure::new(
            5000,
            format!(
                "InternalError, service [{}] is no longer supported",
                task.service
            ),
            false,
        )
    })?;
    Ok((service, task))
}
