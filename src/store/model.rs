//! The cluster model as services and executors see it: what a request is
//! checked against and what a job's effect changes, inside the transaction
//! that records the job. Cut at what the domain asks, not at tables, so
//! that no service names the storage engine (the SQLite backend implements
//! it in `store/sqlite/`).

use serde_json::Value;

use super::StoreError;
use super::types::{
    Cluster, ClusterFilter, ClusterView, Compare, DrTask, LogLine, NewAccount, NewServer, NodeView,
    Server, Step, TaskFilter,
};
use crate::sealing::MasterKey;
use crate::secret::Secret;

/// What [`Model::create_cluster`] stores.
pub struct NewCluster<'a> {
    pub id: &'a str,
    pub zone: &'a str,
    pub owner: &'a str,
    pub name: &'a str,
    pub nodes: &'a [(String, &'a str)],
    pub status: &'a str,
}

pub trait Model {
    // Clusters.
    fn cluster(&self, id: &str) -> Result<Option<Cluster>, StoreError>;
    /// The cluster when `owner` owns it.
    fn cluster_owned(&self, owner: &str, id: &str) -> Result<Option<Cluster>, StoreError>;
    /// `DescribeClusters`: the page and the total.
    fn describe_clusters(&self, f: &ClusterFilter) -> Result<(Vec<ClusterView>, u64), StoreError>;
    /// A new cluster and its nodes (`(node id, role)`); false if the id is taken.
    fn create_cluster(&self, new: &NewCluster<'_>) -> Result<bool, StoreError>;
    /// `model` or `servers`: which executor runs its jobs.
    fn set_backend(&self, id: &str, backend: &str) -> Result<(), StoreError>;
    /// Ids of the clusters that replicate from `id`.
    fn standbys_of(&self, id: &str) -> Result<Vec<String>, StoreError>;
    fn set_cluster_status(&self, id: &str, status: &str) -> Result<(), StoreError>;
    fn set_setting(&self, id: &str, key: &str, value: &Value) -> Result<(), StoreError>;
    fn clear_setting(&self, id: &str, key: &str) -> Result<(), StoreError>;
    fn set_standby(&self, id: &str, source: &str, sync_way: &str) -> Result<(), StoreError>;
    fn clear_standby(&self, id: &str) -> Result<(), StoreError>;
    fn set_primary_of(&self, id: &str, primary: Option<&str>) -> Result<(), StoreError>;
    fn set_sync_status(&self, id: &str, status: &str) -> Result<(), StoreError>;

    // Nodes.
    fn node(&self, cluster: &str, node: &str) -> Result<Option<NodeView>, StoreError>;
    /// A cluster's nodes, all or those named, of a role or any.
    fn nodes(
        &self,
        cluster: &str,
        ids: &[String],
        role: Option<&str>,
    ) -> Result<Vec<NodeView>, StoreError>;
    /// Nodes by id across `owner`'s clusters.
    fn nodes_owned(
        &self,
        owner: &str,
        ids: &[String],
        role: Option<&str>,
    ) -> Result<Vec<NodeView>, StoreError>;
    fn has_role(&self, cluster: &str, role: &str) -> Result<bool, StoreError>;
    fn set_nodes_status(&self, cluster: &str, status: &str) -> Result<(), StoreError>;
    /// Nodes restarted (all, one, or those of a role); how many.
    fn node_restarted(
        &self,
        cluster: &str,
        node: Option<&str>,
        role: Option<&str>,
    ) -> Result<usize, StoreError>;
    fn node_rebuilt(&self, cluster: &str, node: &str) -> Result<usize, StoreError>;
    fn assign_primary(&self, cluster: &str, node: &str) -> Result<usize, StoreError>;

    // Database accounts.
    fn account_exists(
        &self,
        cluster: &str,
        engine: &str,
        user: &str,
        host: Option<&str>,
    ) -> Result<bool, StoreError>;
    fn add_account(&self, cluster: &str, a: &NewAccount<'_>) -> Result<bool, StoreError>;
    fn delete_account(
        &self,
        cluster: &str,
        engine: &str,
        user: &str,
        host: Option<&str>,
    ) -> Result<usize, StoreError>;

    // Servers.
    fn server(&self, endpoint: &str) -> Result<Option<Server>, StoreError>;
    fn zone_has_servers(&self, zone: &str) -> Result<bool, StoreError>;
    fn servers_of(&self, cluster: &str) -> Result<Vec<Server>, StoreError>;
    /// The replication account's password (made and sealed the first time).
    fn repl_password(&self, master: &MasterKey) -> Result<Secret, StoreError>;
    /// Registered servers of the zone no cluster uses, oldest first.
    fn free_servers(&self, zone: &str) -> Result<Vec<Server>, StoreError>;
    /// The server now holds that node; false if it was taken meanwhile.
    fn bind_server(&self, endpoint: &str, cluster: &str, node: &str) -> Result<bool, StoreError>;
    /// The cluster's servers are free again.
    fn release_servers(&self, cluster: &str) -> Result<(), StoreError>;

    // DR tasks.
    fn task(&self, id: &str) -> Result<Option<DrTask>, StoreError>;
    /// The task, which nothing else can change until this transaction ends.
    fn task_locked(&self, id: &str) -> Result<Option<DrTask>, StoreError>;
    fn task_owned(&self, owner: &str, id: &str) -> Result<Option<DrTask>, StoreError>;
    /// `DescribeDRTasks`: the page and the total.
    fn tasks(&self, f: &TaskFilter) -> Result<(Vec<DrTask>, u64), StoreError>;
    /// Tasks the sampler reads replication for.
    fn sampled_tasks(&self) -> Result<Vec<DrTask>, StoreError>;
    fn task_logs(
        &self,
        id: &str,
        levels: &[String],
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<LogLine>, u64), StoreError>;
    fn set_task_progress(&self, id: &str, progress: &Value) -> Result<(), StoreError>;
    fn set_task_precheck(&self, id: &str, result: &Value) -> Result<(), StoreError>;
    fn compares(&self, task: &str) -> Result<Vec<Compare>, StoreError>;
    fn compare(&self, task: &str, id: &str) -> Result<Option<Compare>, StoreError>;
    fn compare_running(&self, id: &str) -> Result<(), StoreError>;
    fn finish_compare(
        &self,
        id: &str,
        at_gtid: &str,
        result: Result<&Value, &str>,
    ) -> Result<(), StoreError>;
    /// Tasks that follow a replication now.
    fn live_tasks(&self) -> Result<Vec<DrTask>, StoreError>;
    fn insert_task(&self, t: &DrTask) -> Result<bool, StoreError>;
    /// Returns the status it had (`None`: no such task).
    fn set_task_status(
        &self,
        id: &str,
        status: &str,
        last_error: Option<&str>,
    ) -> Result<Option<String>, StoreError>;
    fn set_task_sides(
        &self,
        id: &str,
        standby: &str,
        source: Option<&str>,
    ) -> Result<(), StoreError>;
    fn set_task_start_at(&self, id: &str, at: Option<i64>) -> Result<(), StoreError>;
    fn insert_compare(&self, id: &str, task: &str, types: &Value) -> Result<(), StoreError>;
    fn task_log(
        &self,
        id: &str,
        level: &str,
        code: &str,
        job_id: &str,
        message: &str,
    ) -> Result<(), StoreError>;

    // A job's steps on servers, and its lane.
    fn append_step(
        &self,
        seq: i64,
        at_ms: i64,
        step: &str,
        outcome: &str,
        detail: &str,
    ) -> Result<(), StoreError>;
    fn has_steps(&self, seq: i64) -> Result<bool, StoreError>;
    fn steps_of(&self, seq: i64) -> Result<Vec<Step>, StoreError>;
    /// The lane (cluster) of a job.
    fn lane_of(&self, job_id: &str) -> Result<Option<String>, StoreError>;

    // What the local commands manage.
    /// Registers a server (its password sealed); false if already registered.
    fn add_server(&self, master: &MasterKey, s: &NewServer<'_>) -> Result<bool, StoreError>;
    fn servers(&self) -> Result<Vec<Server>, StoreError>;
    /// Removes a free server; `Err` names the cluster holding it.
    fn remove_server(&self, endpoint: &str) -> Result<Result<bool, String>, StoreError>;
    fn clusters(&self) -> Result<Vec<Cluster>, StoreError>;
    /// Owners with DR tasks.
    fn task_owners(&self) -> Result<Vec<String>, StoreError>;
    /// Forgets a cluster and frees its servers; `Err` says why not.
    fn remove_cluster(&self, id: &str) -> Result<Result<(), String>, StoreError>;
}
