//! Custom services run by `RunClusterCustomService`. Each service is one file;
//! registering it is one line in `REGISTRY`.

pub mod cluster_power;
mod configuring_ssl;
mod decouple;
mod failover;
mod promote_standby;
pub mod schema;
mod set_readonly;
mod settings;
mod start_standby;
mod stop_standby;
mod switchover;
pub mod topology;

use rusqlite::Connection;
use serde_json::Value;

use crate::error::ApiError;
use crate::secret::Secret;
use crate::store::clusters::Cluster;
use crate::store::effect::Effect;
use schema::Fields;

pub trait Service: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// Roles the service may run on; the first is the default when none is sent.
    fn roles(&self) -> &'static [&'static str];
    /// Whether running it again after an interruption is harmless. A service
    /// that is not is never retried automatically (see README, "Jobs").
    fn idempotent(&self) -> bool;
    /// Attempts before an idempotent job that keeps failing is given up.
    fn max_attempts(&self) -> u32 {
        3
    }
    /// Longest a single attempt may run.
    fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(3600)
    }
    /// Validates `service_params` against the schema and the cluster's state;
    /// returns what the executor needs, secrets apart (they are stored sealed).
    fn prepare(&self, cx: &PrepareCx<'_>, fields: Fields) -> Result<Prepared, ApiError>;
    /// The model executor's effect on the cluster model.
    fn model(&self, cluster_id: &str, params: &Value) -> Effect;
}

/// A validated request: plain parameters, and the secret ones by field name.
pub struct Prepared {
    pub params: Value,
    pub secrets: Vec<(&'static str, Secret)>,
}

/// What a service may look at while validating a request.
pub struct PrepareCx<'a> {
    pub cluster: &'a Cluster,
    pub owner: &'a str,
    /// A read connection, for checks that involve other resources.
    pub conn: &'a Connection,
}

static REGISTRY: &[&dyn Service] = &[
    &start_standby::StartStandby,
    &stop_standby::StopStandby,
    &promote_standby::PromoteStandby,
    &switchover::Switchover,
    &failover::Failover,
    &decouple::Decouple,
    &set_readonly::SET_READONLY,
    &configuring_ssl::CONFIGURING_SSL,
];

/// Jobs of cluster actions (`StartClusters`, …): run like services, but not
/// reachable through `RunClusterCustomService`.
static CLUSTER_JOBS: &[&dyn Service] = &[&cluster_power::StartCluster, &cluster_power::StopCluster];

/// A custom service, as `RunClusterCustomService` names it.
pub fn find(name: &str) -> Option<&'static dyn Service> {
    REGISTRY.iter().copied().find(|s| s.name() == name)
}

/// Any job kind a stored task may name.
pub fn find_job_kind(name: &str) -> Option<&'static dyn Service> {
    find(name).or_else(|| CLUSTER_JOBS.iter().copied().find(|s| s.name() == name))
}

/// The service a stored custom-service task names.
pub fn for_task(task: &str) -> Option<&'static dyn Service> {
    serde_json::from_str::<Task>(task)
        .ok()
        .and_then(|t| find_job_kind(&t.service))
}

/// Service names, sorted, as listed in error messages.
pub fn names() -> Vec<&'static str> {
    let mut v: Vec<_> = REGISTRY.iter().map(|s| s.name()).collect();
    v.sort_unstable();
    v
}

/// What a custom-service job carries to its executor (stored as JSON).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Task {
    pub service: String,
    pub cluster: String,
    pub role: String,
    pub params: Value,
}
