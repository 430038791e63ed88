//! [`Model`] on a SQLite connection: each use case is one of the table
//! modules' statements.

use rusqlite::Connection;
use serde_json::Value;

use crate::sealing::MasterKey;
use crate::secret::Secret;
use crate::store::StoreError;
use crate::store::accounts::{self, NewAccount};
use crate::store::clusters::{self, Cluster, ClusterFilter, ClusterView};
use crate::store::dr_tasks::{self, Compare, DrTask, LogLine, TaskFilter};
use crate::store::jobs;
use crate::store::model::{Model, NewCluster};
use crate::store::nodes::{self, NodeView};
use crate::store::servers::{self, Server};
use crate::store::steps::{self, Step};

impl Model for Connection {
    fn cluster(&self, id: &str) -> Result<Option<Cluster>, StoreError> {
        clusters::get(self, id)
    }
    fn cluster_owned(&self, owner: &str, id: &str) -> Result<Option<Cluster>, StoreError> {
        clusters::get_owned(self, owner, id)
    }
    fn describe_clusters(&self, f: &ClusterFilter) -> Result<(Vec<ClusterView>, u64), StoreError> {
        clusters::describe(self, f)
    }
    fn create_cluster(&self, n: &NewCluster<'_>) -> Result<bool, StoreError> {
        clusters::create(self, n.id, n.zone, n.owner, n.name, n.nodes, n.status)
    }
    fn set_backend(&self, id: &str, backend: &str) -> Result<(), StoreError> {
        clusters::set_backend(self, id, backend)
    }
    fn standbys_of(&self, id: &str) -> Result<Vec<String>, StoreError> {
        clusters::standbys_of(self, id)
    }
    fn set_cluster_status(&self, id: &str, status: &str) -> Result<(), StoreError> {
        clusters::set_status(self, id, status)
    }
    fn set_setting(&self, id: &str, key: &str, value: &Value) -> Result<(), StoreError> {
        clusters::set_setting(self, id, key, value)
    }
    fn clear_setting(&self, id: &str, key: &str) -> Result<(), StoreError> {
        clusters::clear_setting(self, id, key)
    }
    fn set_standby(&self, id: &str, source: &str, sync_way: &str) -> Result<(), StoreError> {
        clusters::set_standby(self, id, source, sync_way)
    }
    fn clear_standby(&self, id: &str) -> Result<(), StoreError> {
        clusters::clear_standby(self, id)
    }
    fn set_primary_of(&self, id: &str, primary: Option<&str>) -> Result<(), StoreError> {
        clusters::set_primary_of(self, id, primary)
    }
    fn set_sync_status(&self, id: &str, status: &str) -> Result<(), StoreError> {
        clusters::set_sync_status(self, id, status)
    }

    fn node(&self, cluster: &str, node: &str) -> Result<Option<NodeView>, StoreError> {
        nodes::get(self, cluster, node)
    }
    fn nodes(
        &self,
        cluster: &str,
        ids: &[String],
        role: Option<&str>,
    ) -> Result<Vec<NodeView>, StoreError> {
        nodes::list(self, cluster, ids, role)
    }
    fn nodes_owned(
        &self,
        owner: &str,
        ids: &[String],
        role: Option<&str>,
    ) -> Result<Vec<NodeView>, StoreError> {
        nodes::owned_by_id(self, owner, ids, role)
    }
    fn has_role(&self, cluster: &str, role: &str) -> Result<bool, StoreError> {
        nodes::has_role(self, cluster, role)
    }
    fn set_nodes_status(&self, cluster: &str, status: &str) -> Result<(), StoreError> {
        nodes::set_status(self, cluster, status)
    }
    fn node_restarted(
        &self,
        cluster: &str,
        node: Option<&str>,
        role: Option<&str>,
    ) -> Result<usize, StoreError> {
        nodes::restarted(self, cluster, node, role)
    }
    fn node_rebuilt(&self, cluster: &str, node: &str) -> Result<usize, StoreError> {
        nodes::rebuilt(self, cluster, node)
    }
    fn assign_primary(&self, cluster: &str, node: &str) -> Result<usize, StoreError> {
        nodes::assign_primary(self, cluster, node)
    }

    fn account_exists(
        &self,
        cluster: &str,
        engine: &str,
        user: &str,
        host: Option<&str>,
    ) -> Result<bool, StoreError> {
        accounts::exists(self, cluster, engine, user, host)
    }
    fn add_account(&self, cluster: &str, a: &NewAccount<'_>) -> Result<bool, StoreError> {
        accounts::add(self, cluster, a)
    }
    fn delete_account(
        &self,
        cluster: &str,
        engine: &str,
        user: &str,
        host: Option<&str>,
    ) -> Result<usize, StoreError> {
        accounts::delete(self, cluster, engine, user, host)
    }

    fn server(&self, endpoint: &str) -> Result<Option<Server>, StoreError> {
        servers::get(self, endpoint)
    }
    fn zone_has_servers(&self, zone: &str) -> Result<bool, StoreError> {
        servers::zone_has_servers(self, zone)
    }
    fn servers_of(&self, cluster: &str) -> Result<Vec<Server>, StoreError> {
        servers::of_cluster(self, cluster)
    }
    fn repl_password(&self, master: &MasterKey) -> Result<Secret, StoreError> {
        servers::repl_password(self, master)
    }
    fn free_servers(&self, zone: &str) -> Result<Vec<Server>, StoreError> {
        servers::free_in_zone(self, zone)
    }
    fn bind_server(&self, endpoint: &str, cluster: &str, node: &str) -> Result<bool, StoreError> {
        servers::bind(self, endpoint, cluster, node)
    }
    fn release_servers(&self, cluster: &str) -> Result<(), StoreError> {
        servers::release(self, cluster)
    }

    fn task(&self, id: &str) -> Result<Option<DrTask>, StoreError> {
        dr_tasks::get(self, id)
    }
    // The writer is the only one: its transaction is the lock.
    fn task_locked(&self, id: &str) -> Result<Option<DrTask>, StoreError> {
        dr_tasks::get(self, id)
    }
    fn task_owned(&self, owner: &str, id: &str) -> Result<Option<DrTask>, StoreError> {
        dr_tasks::get_owned(self, owner, id)
    }
    fn tasks(&self, f: &TaskFilter) -> Result<(Vec<DrTask>, u64), StoreError> {
        dr_tasks::list(self, f)
    }
    fn sampled_tasks(&self) -> Result<Vec<DrTask>, StoreError> {
        dr_tasks::sampled(self)
    }
    fn task_logs(
        &self,
        id: &str,
        levels: &[String],
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<LogLine>, u64), StoreError> {
        dr_tasks::logs(self, id, levels, offset, limit)
    }
    fn set_task_progress(&self, id: &str, progress: &Value) -> Result<(), StoreError> {
        dr_tasks::set_progress(self, id, progress)
    }
    fn set_task_precheck(&self, id: &str, result: &Value) -> Result<(), StoreError> {
        dr_tasks::set_precheck(self, id, result)
    }
    fn compares(&self, task: &str) -> Result<Vec<Compare>, StoreError> {
        dr_tasks::compares(self, task)
    }
    fn compare(&self, task: &str, id: &str) -> Result<Option<Compare>, StoreError> {
        dr_tasks::compare(self, task, id)
    }
    fn compare_running(&self, id: &str) -> Result<(), StoreError> {
        dr_tasks::compare_running(self, id)
    }
    fn finish_compare(
        &self,
        id: &str,
        at_gtid: &str,
        result: Result<&Value, &str>,
    ) -> Result<(), StoreError> {
        dr_tasks::finish_compare(self, id, at_gtid, result)
    }
    fn live_tasks(&self) -> Result<Vec<DrTask>, StoreError> {
        dr_tasks::live(self)
    }
    fn insert_task(&self, t: &DrTask) -> Result<bool, StoreError> {
        dr_tasks::insert(self, t)
    }
    fn set_task_status(
        &self,
        id: &str,
        status: &str,
        last_error: Option<&str>,
    ) -> Result<Option<String>, StoreError> {
        dr_tasks::set_status(self, id, status, last_error)
    }
    fn set_task_sides(
        &self,
        id: &str,
        standby: &str,
        source: Option<&str>,
    ) -> Result<(), StoreError> {
        dr_tasks::set_sides(self, id, standby, source)
    }
    fn set_task_start_at(&self, id: &str, at: Option<i64>) -> Result<(), StoreError> {
        dr_tasks::set_start_at(self, id, at)
    }
    fn insert_compare(&self, id: &str, task: &str, types: &Value) -> Result<(), StoreError> {
        dr_tasks::insert_compare(self, id, task, types)
    }
    fn task_log(
        &self,
        id: &str,
        level: &str,
        code: &str,
        job_id: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        dr_tasks::log(self, id, level, code, job_id, message)
    }

    fn append_step(
        &self,
        seq: i64,
        at_ms: i64,
        step: &str,
        outcome: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        steps::append(self, seq, at_ms, step, outcome, detail)
    }
    fn has_steps(&self, seq: i64) -> Result<bool, StoreError> {
        steps::any(self, seq)
    }
    fn steps_of(&self, seq: i64) -> Result<Vec<Step>, StoreError> {
        steps::of_job(self, seq)
    }
    fn lane_of(&self, job_id: &str) -> Result<Option<String>, StoreError> {
        jobs::lane_of(self, job_id)
    }

    fn add_server(
        &self,
        master: &MasterKey,
        s: &servers::NewServer<'_>,
    ) -> Result<bool, StoreError> {
        servers::add(self, master, s)
    }
    fn servers(&self) -> Result<Vec<Server>, StoreError> {
        servers::list(self)
    }
    fn remove_server(&self, endpoint: &str) -> Result<Result<bool, String>, StoreError> {
        servers::remove(self, endpoint)
    }
    fn clusters(&self) -> Result<Vec<Cluster>, StoreError> {
        clusters::list(self)
    }
    fn task_owners(&self) -> Result<Vec<String>, StoreError> {
        dr_tasks::owners(self)
    }
    fn remove_cluster(&self, id: &str) -> Result<Result<(), String>, StoreError> {
        clusters::remove(self, id)
    }
}
