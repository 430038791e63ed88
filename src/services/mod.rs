//! Custom services run by `RunClusterCustomService`. Each service is one file;
//! registering it is one line in `REGISTRY`.

mod account_rules;
mod add_ck_user;
mod add_user;
mod assignmaster;
pub mod cluster_power;
mod configuring_ssl;
pub mod create_cluster;
mod decouple;
mod del_ck_user;
mod del_user;
pub mod delete_cluster;
pub mod dr_task;
mod failover;
mod features;
mod migrate_data;
mod node_op;
mod promote_standby;
mod rebuildme;
pub mod restart_cluster_service;
mod restart_node;
pub mod schema;
mod set_readonly;
mod settings;
mod start_log_server;
mod start_standby;
mod start_zabbix;
mod stop_log_server;
mod stop_migrate;
mod stop_standby;
mod stop_zabbix;
mod switchover;
pub mod topology;

use crate::store::model::Model;
use serde_json::Value;

use crate::error::ApiError;
use crate::secret::Secret;
use crate::store::effect::{Effect, EffectError};
use crate::store::{self, clusters::Cluster};
use crate::written::Object;
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

    /// Why it may not run on a running DR standby (it restarts the database,
    /// changes HA, …): the DR manual disables those until `stop_standby` or
    /// `promote_standby`. `None`: allowed.
    fn blocked_on_standby(&self) -> Option<&'static str> {
        None
    }
    /// Whether the cluster must be `active` (not stopped, being created, …).
    fn needs_active(&self) -> bool {
        true
    }
    /// Hosts an executor would connect to for this job (checked against the
    /// executor's allow-list before anything runs).
    fn dial_targets(&self, _params: &Value) -> Vec<String> {
        Vec::new()
    }
    /// What a job that ends `failed` leaves in the model (a creation that
    /// failed leaves its nodes, marked failed). `None`: nothing.
    fn on_failure(&self, _cluster_id: &str, _params: &Value) -> Option<Effect> {
        None
    }
}

/// The service's model effect, behind the same shared checks as
/// [`prepare`]: jobs queued earlier on the cluster may have changed it.
pub fn effect(service: &'static dyn Service, cluster_id: &str, params: &Value) -> Effect {
    let mut inner = service.model(cluster_id, params);
    let cluster_id = cluster_id.to_string();
    Box::new(move |conn| {
        let c = current(conn, &cluster_id)?;
        shared_checks(service, &c).map_err(|e| EffectError::Refused(e.to_string()))?;
        inner(conn)
    })
}

/// The shared checks against the cluster as it is now; the refusal as the
/// job's error message.
pub fn still_allowed(
    service: &dyn Service,
    conn: &dyn Model,
    cluster_id: &str,
) -> Result<(), String> {
    match conn.cluster(cluster_id) {
        Ok(Some(c)) => shared_checks(service, &c).map_err(|e| e.to_string()),
        Ok(None) => Err(format!("cluster [{cluster_id}] no longer exists")),
        Err(e) => {
            tracing::error!(error = %e, "reading the cluster model");
            Err("InternalError, the cluster model could not be read".into())
        }
    }
}

fn shared_checks(service: &dyn Service, c: &Cluster) -> Result<(), ApiError> {
    if let (Some(why), Some(_)) = (service.blocked_on_standby(), &c.standby_of) {
        return Err(ApiError::PermissionDenied(format!(
            "{} {why}, which is disabled while cluster [{}] is a DR standby; run stop_standby or promote_standby first",
            service.name(),
            c.cluster_id
        )));
    }
    if service.needs_active() && c.status != "active" {
        return Err(ApiError::PermissionDenied(format!(
            "cluster [{}] is {}, not active",
            c.cluster_id, c.status
        )));
    }
    Ok(())
}

/// The checks every service shares, then the service's own.
pub fn prepare(
    service: &dyn Service,
    cx: &PrepareCx<'_>,
    fields: Fields,
) -> Result<Prepared, ApiError> {
    let c = cx.cluster;
    shared_checks(service, c)?;
    // Every cluster has maininstance nodes: only other roles cost a lookup.
    if !matches!(cx.role, "" | "maininstance") && !cx.model.has_role(&c.cluster_id, cx.role)? {
        return Err(ApiError::PermissionDenied(format!(
            "cluster [{}] has no {} node",
            c.cluster_id, cx.role
        )));
    }
    service.prepare(cx, fields)
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
    /// The node role the request names (empty for cluster-wide jobs).
    pub role: &'a str,
    /// The model, for checks that involve other resources.
    pub model: &'a dyn Model,
}

static REGISTRY: &[&dyn Service] = &[
    &restart_node::RESTART_NODE,
    &rebuildme::REBUILDME,
    &set_readonly::SET_READONLY,
    &assignmaster::AssignMaster,
    &configuring_ssl::CONFIGURING_SSL,
    &add_user::AddUser,
    &add_ck_user::AddCkUser,
    &del_user::DelUser,
    &del_ck_user::DelCkUser,
    &migrate_data::MigrateData,
    &stop_migrate::STOP_MIGRATE,
    &start_standby::StartStandby,
    &stop_standby::StopStandby,
    &promote_standby::PromoteStandby,
    &start_log_server::StartLogServer,
    &stop_log_server::STOP_LOG_SERVER,
    &start_zabbix::StartZabbix,
    &stop_zabbix::STOP_ZABBIX,
    // Extensions with the OceanBase semantics of seed 003.
    &switchover::Switchover,
    &failover::Failover,
    &decouple::Decouple,
];

/// Jobs of cluster actions (`StartClusters`, …): run like services, but not
/// reachable through `RunClusterCustomService`.
static CLUSTER_JOBS: &[&dyn Service] = &[
    &cluster_power::START_CLUSTER,
    &cluster_power::STOP_CLUSTER,
    &create_cluster::CreateCluster,
    &delete_cluster::DeleteCluster,
    &restart_cluster_service::RestartClusterService,
    &dr_task::PRECHECK,
    &dr_task::START,
    &dr_task::COMPARE,
    &dr_task::RETRY,
    &dr_task::STOP,
];

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

impl Task {
    /// The JSON a `Task` with these fields is stored as, from its params'
    /// JSON text (which the directive shows too: it is written once).
    pub fn json(service: &str, cluster: &str, role: &str, params: &str) -> String {
        let mut o =
            Object::with_capacity(service.len() + cluster.len() + role.len() + params.len() + 48);
        o.str("service", service)
            .str("cluster", cluster)
            .str("role", role)
            .json("params", params);
        o.finish()
    }
}

/// The cluster a job's effect applies to, as it is now.
pub(crate) fn current(conn: &dyn Model, cluster_id: &str) -> Result<Cluster, EffectError> {
    conn.cluster(cluster_id)
        .map_err(EffectError::Store)?
        .ok_or_else(|| EffectError::Refused(format!("cluster [{cluster_id}] no longer exists")))
}

/// `service_params.node_id`: a node of this cluster with the requested role.
pub(crate) fn cluster_node(
    cx: &PrepareCx<'_>,
    f: &mut Fields,
) -> Result<store::nodes::NodeView, ApiError> {
    let id = f.checked(
        "node_id",
        "a node id such as cln-0a1b2c3d",
        schema::is_node_id,
    )?;
    let cluster = &cx.cluster.cluster_id;
    match cx.model.node(cluster, &id)? {
        Some(n) if cx.role.is_empty() || n.role == cx.role => Ok(n),
        Some(n) => Err(ApiError::invalid(
            "service_params.node_id",
            format!("must be a {} node; [{id}] is a {} node", cx.role, n.role),
        )),
        None => Err(ApiError::invalid(
            "service_params.node_id",
            format!("must be a node of cluster [{cluster}]"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_is_stored_as_serde_json_writes_it() {
        let params = serde_json::json!({"host": "127.0.0.1", "note": "a \"b\"", "port": 3306});
        let task = Task {
            service: "start_standby".into(),
            cluster: "cl-abc".into(),
            role: "maininstance".into(),
            params: params.clone(),
        };
        let json = Task::json(
            "start_standby",
            "cl-abc",
            "maininstance",
            &params.to_string(),
        );
        assert_eq!(json, serde_json::to_string(&task).expect("json"));
        let back: Task = serde_json::from_str(&json).expect("a task");
        assert_eq!(back.params, params);
    }
}
