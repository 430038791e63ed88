//! The jobs of DR tasks (`PrecheckDRTasks`, `StartDRTasks`, …): job kinds,
//! not custom services. Their work is on servers only (worker/servers);
//! the model has nothing to simulate, so a model cluster refuses them.

use serde_json::Value;

use super::schema::Fields;
use super::{PrepareCx, Prepared, Service};
use crate::error::ApiError;
use crate::store::effect::{Effect, EffectError};

pub struct DrTaskJob {
    name: &'static str,
    idempotent: bool,
}

/// Checks a task's two sides; changes nothing.
pub const PRECHECK: DrTaskJob = DrTaskJob {
    name: "dr_precheck",
    idempotent: true,
};
/// Copies the source and starts replicating.
pub const START: DrTaskJob = DrTaskJob {
    name: "dr_start",
    idempotent: false,
};
/// Compares the two sides at one consistent point; writes nothing there.
pub const COMPARE: DrTaskJob = DrTaskJob {
    name: "dr_compare",
    idempotent: true,
};
/// Restarts a replication that broke.
pub const RETRY: DrTaskJob = DrTaskJob {
    name: "dr_retry",
    idempotent: true,
};
/// Stops the replication for good.
pub const STOP: DrTaskJob = DrTaskJob {
    name: "dr_stop",
    idempotent: true,
};

impl Service for DrTaskJob {
    fn name(&self) -> &'static str {
        self.name
    }

    fn roles(&self) -> &'static [&'static str] {
        &[""]
    }

    fn idempotent(&self) -> bool {
        self.idempotent
    }

    fn needs_active(&self) -> bool {
        false
    }

    fn prepare(&self, _cx: &PrepareCx<'_>, f: Fields) -> Result<Prepared, ApiError> {
        // The actions build these jobs' parameters themselves.
        f.finish()?;
        Ok(Prepared {
            params: Value::Object(Default::default()),
            secrets: Vec::new(),
        })
    }

    /// A job that ends `failed` without saying so to its task (it was
    /// interrupted: the gateway was killed) must not leave the task in a
    /// status that claims work is under way.
    fn on_failure(&self, _cluster_id: &str, params: &Value) -> Option<Effect> {
        let id = params["dr_task"].as_str()?.to_string();
        let job = self.name;
        Some(Box::new(move |m| {
            let store = EffectError::Store;
            let Some(t) = m.task(&id).map_err(store)? else {
                return Ok(());
            };
            let to = match (job, t.status.as_str()) {
                ("dr_start", "initializing") => "init_failed",
                ("dr_start", "starting" | "pending_start") => "start_failed",
                ("dr_precheck", "prechecking") => "configuration",
                ("dr_stop", "stopping") => "sync_failed",
                _ => return Ok(()),
            };
            let why = format!(
                "its {job} job ended failed while it was {}: see DescribeJobs",
                t.status
            );
            m.set_task_status(&id, to, Some(&why)).map_err(store)?;
            m.task_log(&id, "error", &format!("status_{to}"), "", &why)
                .map_err(store)
        }))
    }

    fn model(&self, cluster_id: &str, _params: &Value) -> Effect {
        let cluster_id = cluster_id.to_string();
        Box::new(move |_| {
            Err(EffectError::Refused(format!(
                "PermissionDenied, DR tasks run on servers; cluster [{cluster_id}] is simulated"
            )))
        })
    }
}
