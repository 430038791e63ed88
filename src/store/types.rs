//! The model's types, shared by every backend and by the code that uses
//! the store: clusters, nodes, accounts, servers, DR tasks, job steps. A
//! leaf: it names no storage engine and imports no table module.

use serde_json::Value;

use crate::secret::Secret;

// clusters

#[derive(Debug, Clone, serde::Serialize)]
pub struct Cluster {
    pub cluster_id: String,
    pub owner: String,
    pub zone: String,
    pub name: String,
    pub status: String,
    /// `primary` or `standby` in a DR relationship.
    pub dr_role: String,
    pub standby_of: Option<String>,
    pub sync_way: Option<String>,
    pub sync_status: Option<String>,
    pub create_time: i64,
    pub status_time: i64,
    /// What custom services have recorded: `readonly`, `ssl`, `migration`, …
    pub settings: serde_json::Value,
    /// Who runs its jobs: `model` (simulated) or `servers` (its MariaDB servers).
    pub backend: String,
}

impl Cluster {
    /// Whether its jobs run on real servers rather than the model.
    pub fn on_servers(&self) -> bool {
        self.backend == "servers"
    }

    /// A setting that is a switch (`true` when on).
    pub fn switch_on(&self, key: &str) -> bool {
        self.settings.get(key) == Some(&serde_json::Value::Bool(true))
    }
}

/// The nodes a cluster has, by role. The default is MySQL Plus's HA pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// `maininstance` nodes: 1 without HA, 2 or 3 with.
    pub main: u8,
    pub read: u8,
    pub analysis: u8,
    pub proxy: u8,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            main: 2,
            read: 0,
            analysis: 0,
            proxy: 0,
        }
    }
}

impl Layout {
    /// New node ids with their roles, in creation order; the first is the primary.
    pub fn nodes(&self) -> Vec<(String, &'static str)> {
        self.roles()
            .into_iter()
            .map(|r| (crate::ids::node_id(), r))
            .collect()
    }

    fn roles(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        for (n, role) in [
            (self.main, "maininstance"),
            (self.read, "readinstance"),
            (self.analysis, "analysis"),
            (self.proxy, "proxy"),
        ] {
            v.extend(std::iter::repeat_n(role, n as usize));
        }
        v
    }
}

/// One row of `cluster_set`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClusterView {
    pub cluster_id: String,
    pub name: String,
    pub owner: String,
    pub zone: String,
    pub status: String,
    /// Non-empty while a job runs on the cluster.
    pub transition_status: String,
    pub create_time: String,
    pub status_time: String,
    /// The DR relationship (extension): `role`, `primary`, `sync_status`, `sync_way`.
    pub dr: serde_json::Value,
    /// What custom services have set (extension): `readonly`, `ssl`, …
    pub settings: serde_json::Value,
    /// Who runs its jobs (extension): `model` (simulated, nothing is
    /// dialled) or `servers` (its registered MariaDB servers).
    pub executor: String,
    /// Accounts made by `add_user` / `add_ck_user` (extension; no passwords).
    pub accounts: Vec<super::accounts::Account>,
}

#[derive(Debug, Default)]
pub struct ClusterFilter {
    pub owner: String,
    pub zone: Option<String>,
    pub ids: Vec<String>,
    pub statuses: Vec<String>,
    pub search_word: Option<String>,
    pub offset: u64,
    pub limit: u64,
}

// dr_tasks

#[derive(Debug, Clone)]
pub struct DrTask {
    pub id: String,
    pub owner: String,
    pub zone: String,
    pub name: String,
    pub description: String,
    pub direction: String,
    pub standby_cluster: String,
    pub source_cluster: Option<String>,
    pub source_endpoint: String,
    pub source_user: String,
    /// An external source's password, sealed ([`open_source_password`]).
    pub source_secret: Option<String>,
    pub sync_way: String,
    pub objects: Value,
    pub flow_control: Value,
    pub migrate_definer: bool,
    pub status: String,
    pub status_time: i64,
    pub create_time: i64,
    pub last_error: String,
    pub precheck: Option<Value>,
    pub precheck_time: Option<i64>,
    pub start_at: Option<i64>,
    pub progress: Option<Value>,
}

impl DrTask {
    /// A new task in `configuration` with the defaults; the caller sets
    /// its source and options.
    pub fn new(id: String, owner: &str, zone: &str, name: &str, standby_cluster: &str) -> DrTask {
        DrTask {
            id,
            owner: owner.to_string(),
            zone: zone.to_string(),
            name: name.to_string(),
            description: String::new(),
            direction: "standby".into(),
            standby_cluster: standby_cluster.to_string(),
            source_cluster: None,
            source_endpoint: String::new(),
            source_user: String::new(),
            source_secret: None,
            sync_way: "full".into(),
            objects: serde_json::json!(["*"]),
            flow_control: serde_json::json!({}),
            migrate_definer: true,
            status: "configuration".into(),
            status_time: 0,
            create_time: 0,
            last_error: String::new(),
            precheck: None,
            precheck_time: None,
            start_at: None,
            progress: None,
        }
    }
}

#[derive(Debug, Default)]
pub struct TaskFilter {
    pub owner: String,
    pub ids: Vec<String>,
    pub statuses: Vec<String>,
    pub search_word: Option<String>,
    pub offset: u64,
    pub limit: u64,
}

/// One line of a task's log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LogLine {
    pub time: String,
    pub level: String,
    pub code: String,
    pub job_id: String,
    pub message: String,
}

/// A comparison of a task's two sides.
#[derive(Debug, Clone)]
pub struct Compare {
    pub id: String,
    pub task_id: String,
    pub types: Value,
    pub status: String,
    pub at_gtid: String,
    pub create_time: i64,
    pub finish_time: Option<i64>,
    pub result: Value,
    pub error: String,
}

impl Compare {
    /// How a finished comparison is stored: its status, result and error.
    pub fn ending(result: Result<&Value, &str>) -> (&'static str, String, String) {
        match result {
            Ok(v) => ("SUCCESSFUL", v.to_string(), String::new()),
            Err(e) => ("FAILED", "{}".to_string(), e.to_string()),
        }
    }
}

// nodes

/// One row of `node_set`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeView {
    pub node_id: String,
    pub cluster_id: String,
    pub role: String,
    /// The maininstance node that takes writes.
    pub is_primary: bool,
    pub status: String,
    pub create_time: String,
    /// Last restart (`restart_node`, `RestartClusterService`); empty if never.
    pub restart_time: String,
    /// Last `rebuildme`; empty if never.
    pub rebuild_time: String,
    /// A server-backed node's server (`HOST:PORT`); absent on model nodes.
    #[serde(skip)]
    pub server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// On a server-backed node: what the server says now (read-only,
    /// replicating from whom, its GTID position).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_state: Option<serde_json::Value>,
}

// servers

/// One registered server.
#[derive(Debug, Clone)]
pub struct Server {
    pub endpoint: String,
    pub zone: String,
    pub admin_user: String,
    /// The admin password, sealed (see [`open_password`]).
    pub admin_secret: String,
    pub server_id: u32,
    pub version: String,
    pub cluster_id: Option<String>,
    pub node_id: Option<String>,
}

/// What `servers add` stores.
pub struct NewServer<'a> {
    pub endpoint: &'a str,
    pub zone: &'a str,
    pub admin_user: &'a str,
    pub admin_password: &'a Secret,
    pub server_id: u32,
    pub version: &'a str,
}

// steps

/// One recorded step.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    pub at_ms: i64,
    pub step: String,
    /// `begin`, `done`, `failed` or `info`.
    pub outcome: String,
    pub detail: String,
}

// accounts

#[derive(Debug, Clone, serde::Serialize)]
pub struct Account {
    /// `mysql` or `clickhouse`.
    pub engine: String,
    pub user: String,
    pub host: String,
    pub database: String,
    pub priv_type: String,
    pub ssl: bool,
    pub create_time: String,
}

/// What an account is made of, besides its password.
pub struct NewAccount<'a> {
    pub engine: &'a str,
    pub user: &'a str,
    pub host: &'a str,
    pub database: &'a str,
    pub priv_type: &'a str,
    pub ssl: bool,
}
