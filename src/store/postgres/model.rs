//! [`Model`] inside a PostgreSQL transaction: the same use cases as the
//! SQLite table modules, one statement (a round trip) each.

use serde_json::Value;
use tokio_postgres::Row;

use super::conn::Params;
use super::{Conn, Pg};
use crate::clock::{now_millis, now_unix};
use crate::sealing::MasterKey;
use crate::secret::Secret;
use crate::store::StoreError;
use crate::store::model::{Model, NewCluster};
use crate::store::servers::{REPL_AAD, REPL_META};
use crate::store::types::{
    Cluster, ClusterFilter, ClusterView, Compare, DrTask, LogLine, NewAccount, NewServer, NodeView,
    Server, Step, TaskFilter,
};

thread_local! {
    /// Whether the model was written on this thread since [`take_wrote`]:
    /// a transaction runs on one thread, so its end tells the gateways that
    /// the model changed only when it did (their caches are dropped).
    static WROTE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the model was written since the last call (see [`WROTE`]).
pub fn take_wrote() -> bool {
    WROTE.with(|w| w.replace(false))
}

/// The model on a transaction, or (for reads, which gain nothing from one
/// under READ COMMITTED) on a connection.
pub struct PgModel<'a, C> {
    pg: &'a Pg,
    tx: &'a C,
}

impl<'a, C: Conn> PgModel<'a, C> {
    pub fn new(pg: &'a Pg, tx: &'a C) -> Self {
        PgModel { pg, tx }
    }
    fn rows(&self, sql: &str, p: Params<'_>) -> Result<Vec<Row>, StoreError> {
        self.pg.wait(self.tx.rows(sql, p))
    }
    fn opt(&self, sql: &str, p: Params<'_>) -> Result<Option<Row>, StoreError> {
        self.pg.wait(self.tx.opt(sql, p))
    }
    fn exec(&self, sql: &str, p: Params<'_>) -> Result<u64, StoreError> {
        WROTE.with(|w| w.set(true));
        self.pg.wait(self.tx.exec(sql, p))
    }
    fn exists(&self, sql: &str, p: Params<'_>) -> Result<bool, StoreError> {
        Ok(self.opt(sql, p)?.is_some())
    }
}

use rows::{CLUSTER, COMPARE, SERVER, TASK, Where, cluster, compare, server, task};

impl<C: Conn> PgModel<'_, C> {
    /// How many rows of `from` (a table and its alias) match, before paging.
    fn count(&self, from: &str, w: &Where) -> Result<u64, StoreError> {
        let sql = format!("SELECT COUNT(*) FROM {from} WHERE {}", w.clause);
        let n: i64 = self
            .rows(&sql, &w.params())?
            .first()
            .map(|r| r.get(0))
            .unwrap_or(0);
        Ok(n as u64)
    }

    fn list_tasks(&self, condition: &str) -> Result<Vec<DrTask>, StoreError> {
        let rows = self.rows(
            &format!("SELECT {TASK} FROM dr_tasks WHERE {condition}"),
            &[],
        )?;
        Ok(rows.iter().map(task).collect())
    }
}

mod accounts;
mod admin;
mod clusters;
mod nodes;
mod rows;
mod steps;
mod tasks;

impl<C: Conn> Model for PgModel<'_, C> {
    fn cluster(&self, id: &str) -> Result<Option<Cluster>, StoreError> {
        let sql = format!("SELECT {CLUSTER} FROM clusters WHERE id = $1");
        Ok(self.opt(&sql, &[&id])?.as_ref().map(cluster))
    }
    fn cluster_owned(&self, owner: &str, id: &str) -> Result<Option<Cluster>, StoreError> {
        Ok(self.cluster(id)?.filter(|c| c.owner == owner))
    }
    fn describe_clusters(&self, f: &ClusterFilter) -> Result<(Vec<ClusterView>, u64), StoreError> {
        clusters::describe(self, f)
    }
    fn create_cluster(&self, n: &NewCluster<'_>) -> Result<bool, StoreError> {
        let now = now_unix();
        let created = self.exec(
            "INSERT INTO clusters (id, owner, zone, name, status, create_time, status_time)
             VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (id) DO NOTHING",
            &[&n.id, &n.owner, &n.zone, &n.name, &n.status, &now],
        )?;
        if created == 0 {
            return Ok(false);
        }
        for (i, (node, role)) in n.nodes.iter().enumerate() {
            self.exec(
                "INSERT INTO nodes (id, cluster_id, role, is_primary, status, create_time)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[node, &n.id, role, &(i == 0), &n.status, &now],
            )?;
        }
        Ok(true)
    }
    fn set_backend(&self, id: &str, backend: &str) -> Result<(), StoreError> {
        self.exec(
            "UPDATE clusters SET backend = $2 WHERE id = $1",
            &[&id, &backend],
        )?;
        Ok(())
    }
    fn standbys_of(&self, id: &str) -> Result<Vec<String>, StoreError> {
        let rows = self.rows(
            "SELECT id FROM clusters WHERE standby_of = $1 ORDER BY id",
            &[&id],
        )?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
    fn set_cluster_status(&self, id: &str, status: &str) -> Result<(), StoreError> {
        self.exec(
            "UPDATE clusters SET status = $2, status_time = $3 WHERE id = $1",
            &[&id, &status, &now_unix()],
        )?;
        Ok(())
    }
    fn set_setting(&self, id: &str, key: &str, value: &Value) -> Result<(), StoreError> {
        self.exec(
            "UPDATE clusters SET settings = (settings::jsonb || jsonb_build_object($2::text, $3::text::jsonb))::text,
                                 status_time = $4 WHERE id = $1",
            &[&id, &key, &value.to_string(), &now_unix()],
        )?;
        Ok(())
    }
    fn clear_setting(&self, id: &str, key: &str) -> Result<(), StoreError> {
        self.exec(
            "UPDATE clusters SET settings = (settings::jsonb - $2::text)::text, status_time = $3 WHERE id = $1",
            &[&id, &key, &now_unix()],
        )?;
        Ok(())
    }
    fn set_standby(&self, id: &str, source: &str, sync_way: &str) -> Result<(), StoreError> {
        self.exec(
            "UPDATE clusters SET dr_role = 'standby', standby_of = $2, sync_way = $3, sync_status = 'NORMAL',
                                 status_time = $4 WHERE id = $1",
            &[&id, &source, &sync_way, &now_unix()],
        )?;
        Ok(())
    }
    fn clear_standby(&self, id: &str) -> Result<(), StoreError> {
        self.exec(
            "UPDATE clusters SET dr_role = 'primary', standby_of = NULL, sync_status = NULL, status_time = $2
             WHERE id = $1",
            &[&id, &now_unix()],
        )?;
        Ok(())
    }
    fn set_primary_of(&self, id: &str, primary: Option<&str>) -> Result<(), StoreError> {
        self.exec(
            "UPDATE clusters SET standby_of = $2::text,
                    dr_role = CASE WHEN $2::text IS NULL THEN 'primary' ELSE 'standby' END,
                    sync_status = CASE WHEN $2::text IS NULL THEN NULL ELSE 'NORMAL' END,
                    sync_way = CASE WHEN $2::text IS NULL THEN NULL ELSE COALESCE(sync_way, 'full') END,
                    status_time = $3
             WHERE id = $1",
            &[&id, &primary, &now_unix()],
        )?;
        Ok(())
    }
    fn set_sync_status(&self, id: &str, status: &str) -> Result<(), StoreError> {
        self.exec(
            "UPDATE clusters SET sync_status = $2, status_time = $3 WHERE id = $1 AND standby_of IS NOT NULL",
            &[&id, &status, &now_unix()],
        )?;
        Ok(())
    }

    fn node(&self, cluster: &str, node: &str) -> Result<Option<NodeView>, StoreError> {
        Ok(self.nodes(cluster, &[node.to_string()], None)?.pop())
    }
    fn nodes(
        &self,
        cluster: &str,
        ids: &[String],
        role: Option<&str>,
    ) -> Result<Vec<NodeView>, StoreError> {
        nodes::of_cluster(self, cluster, ids, role)
    }
    fn nodes_owned(
        &self,
        owner: &str,
        ids: &[String],
        role: Option<&str>,
    ) -> Result<Vec<NodeView>, StoreError> {
        nodes::owned(self, owner, ids, role)
    }
    fn has_role(&self, cluster: &str, role: &str) -> Result<bool, StoreError> {
        self.exists(
            "SELECT 1 FROM nodes WHERE cluster_id = $1 AND role = $2 LIMIT 1",
            &[&cluster, &role],
        )
    }
    fn set_nodes_status(&self, cluster: &str, status: &str) -> Result<(), StoreError> {
        self.exec(
            "UPDATE nodes SET status = $2 WHERE cluster_id = $1",
            &[&cluster, &status],
        )?;
        Ok(())
    }
    fn node_restarted(
        &self,
        cluster: &str,
        node: Option<&str>,
        role: Option<&str>,
    ) -> Result<usize, StoreError> {
        Ok(self.exec(
            "UPDATE nodes SET restart_time = $4 WHERE cluster_id = $1 AND ($2::text IS NULL OR id = $2)
             AND ($3::text IS NULL OR role = $3)",
            &[&cluster, &node, &role, &now_unix()],
        )? as usize)
    }
    fn node_rebuilt(&self, cluster: &str, node: &str) -> Result<usize, StoreError> {
        Ok(self.exec(
            "UPDATE nodes SET rebuild_time = $3 WHERE cluster_id = $1 AND id = $2",
            &[&cluster, &node, &now_unix()],
        )? as usize)
    }
    fn assign_primary(&self, cluster: &str, node: &str) -> Result<usize, StoreError> {
        Ok(self.exec(
            "UPDATE nodes SET is_primary = (id = $2) WHERE cluster_id = $1 AND role = 'maininstance'",
            &[&cluster, &node],
        )? as usize)
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
        let sql = format!("SELECT {SERVER} FROM servers WHERE endpoint = $1");
        Ok(self.opt(&sql, &[&endpoint])?.as_ref().map(server))
    }
    fn zone_has_servers(&self, zone: &str) -> Result<bool, StoreError> {
        self.exists("SELECT 1 FROM servers WHERE zone = $1 LIMIT 1", &[&zone])
    }
    fn servers_of(&self, cluster: &str) -> Result<Vec<Server>, StoreError> {
        let sql = format!("SELECT {SERVER} FROM servers WHERE cluster_id = $1 ORDER BY endpoint");
        Ok(self.rows(&sql, &[&cluster])?.iter().map(server).collect())
    }
    fn repl_password(&self, master: &MasterKey) -> Result<Secret, StoreError> {
        let fresh = Secret::new(format!("Qr{}7_", crate::ids::secret_access_key()));
        self.exec(
            "INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[
                &REPL_META,
                &master.seal(fresh.expose().as_bytes(), REPL_AAD),
            ],
        )?;
        let sealed: String = self
            .rows("SELECT value FROM meta WHERE name = $1", &[&REPL_META])?
            .first()
            .map(|r| r.get(0))
            .ok_or_else(|| StoreError::Commit("the replication secret is missing".into()))?;
        Ok(master.open(&sealed, REPL_AAD)?)
    }
    fn free_servers(&self, zone: &str) -> Result<Vec<Server>, StoreError> {
        let sql = format!(
            "SELECT {SERVER} FROM servers WHERE zone = $1 AND cluster_id IS NULL ORDER BY create_time, endpoint"
        );
        Ok(self.rows(&sql, &[&zone])?.iter().map(server).collect())
    }
    fn bind_server(&self, endpoint: &str, cluster: &str, node: &str) -> Result<bool, StoreError> {
        Ok(self.exec(
            "UPDATE servers SET cluster_id = $2, node_id = $3 WHERE endpoint = $1 AND cluster_id IS NULL",
            &[&endpoint, &cluster, &node],
        )? == 1)
    }
    fn release_servers(&self, cluster: &str) -> Result<(), StoreError> {
        self.exec(
            "UPDATE servers SET cluster_id = NULL, node_id = NULL WHERE cluster_id = $1",
            &[&cluster],
        )?;
        Ok(())
    }

    fn task(&self, id: &str) -> Result<Option<DrTask>, StoreError> {
        let sql = format!("SELECT {TASK} FROM dr_tasks WHERE id = $1");
        Ok(self.opt(&sql, &[&id])?.as_ref().map(task))
    }
    fn task_locked(&self, id: &str) -> Result<Option<DrTask>, StoreError> {
        let sql = format!("SELECT {TASK} FROM dr_tasks WHERE id = $1 FOR UPDATE");
        Ok(self.opt(&sql, &[&id])?.as_ref().map(task))
    }
    fn task_owned(&self, owner: &str, id: &str) -> Result<Option<DrTask>, StoreError> {
        Ok(self
            .task(id)?
            .filter(|t| t.owner == owner && t.status != "deleted"))
    }
    fn tasks(&self, f: &TaskFilter) -> Result<(Vec<DrTask>, u64), StoreError> {
        tasks::list(self, f)
    }
    fn sampled_tasks(&self) -> Result<Vec<DrTask>, StoreError> {
        self.list_tasks("status IN ('syncing', 'sync_failed')")
    }
    fn task_logs(
        &self,
        id: &str,
        levels: &[String],
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<LogLine>, u64), StoreError> {
        tasks::logs(self, id, levels, offset, limit)
    }
    fn set_task_progress(&self, id: &str, progress: &Value) -> Result<(), StoreError> {
        self.exec(
            "UPDATE dr_tasks SET progress = $2 WHERE id = $1",
            &[&id, &progress.to_string()],
        )?;
        Ok(())
    }
    fn set_task_precheck(&self, id: &str, result: &Value) -> Result<(), StoreError> {
        self.exec(
            "UPDATE dr_tasks SET precheck = $2, precheck_time = $3 WHERE id = $1",
            &[&id, &result.to_string(), &now_unix()],
        )?;
        Ok(())
    }
    fn compares(&self, task: &str) -> Result<Vec<Compare>, StoreError> {
        let sql = format!(
            "SELECT {COMPARE} FROM dr_compares WHERE task_id = $1 ORDER BY create_time DESC, id"
        );
        Ok(self.rows(&sql, &[&task])?.iter().map(compare).collect())
    }
    fn compare(&self, task: &str, id: &str) -> Result<Option<Compare>, StoreError> {
        let sql = format!("SELECT {COMPARE} FROM dr_compares WHERE task_id = $1 AND id = $2");
        Ok(self.opt(&sql, &[&task, &id])?.as_ref().map(compare))
    }
    fn compare_running(&self, id: &str) -> Result<(), StoreError> {
        self.exec(
            "UPDATE dr_compares SET status = 'RUNNING' WHERE id = $1",
            &[&id],
        )?;
        Ok(())
    }
    fn finish_compare(
        &self,
        id: &str,
        at_gtid: &str,
        result: Result<&Value, &str>,
    ) -> Result<(), StoreError> {
        let (status, result, error) = Compare::ending(result);
        self.exec(
            "UPDATE dr_compares SET status = $2, at_gtid = $3, result = $4, error = $5, finish_time = $6
             WHERE id = $1",
            &[&id, &status, &at_gtid, &result, &error, &now_unix()],
        )?;
        Ok(())
    }
    fn live_tasks(&self) -> Result<Vec<DrTask>, StoreError> {
        self.list_tasks("status IN ('syncing', 'sync_failed', 'paused', 'initializing')")
    }
    fn insert_task(&self, t: &DrTask) -> Result<bool, StoreError> {
        tasks::insert(self, t)
    }
    fn set_task_status(
        &self,
        id: &str,
        status: &str,
        last_error: Option<&str>,
    ) -> Result<Option<String>, StoreError> {
        let before = self
            .opt(
                "SELECT status FROM dr_tasks WHERE id = $1 FOR UPDATE",
                &[&id],
            )?
            .map(|r| r.get(0));
        self.exec(
            "UPDATE dr_tasks SET status = $2, status_time = $3, last_error = COALESCE($4, last_error)
             WHERE id = $1",
            &[&id, &status, &now_unix(), &last_error],
        )?;
        Ok(before)
    }
    fn set_task_sides(
        &self,
        id: &str,
        standby: &str,
        source: Option<&str>,
    ) -> Result<(), StoreError> {
        self.exec(
            "UPDATE dr_tasks SET standby_cluster = $2, source_cluster = $3 WHERE id = $1",
            &[&id, &standby, &source],
        )?;
        Ok(())
    }
    fn set_task_start_at(&self, id: &str, at: Option<i64>) -> Result<(), StoreError> {
        self.exec(
            "UPDATE dr_tasks SET start_at = $2 WHERE id = $1",
            &[&id, &at],
        )?;
        Ok(())
    }
    fn insert_compare(&self, id: &str, task: &str, types: &Value) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO dr_compares (id, task_id, types, status, create_time)
             VALUES ($1, $2, $3, 'WAITING_FOR_RUNNING', $4)",
            &[&id, &task, &types.to_string(), &now_unix()],
        )?;
        Ok(())
    }
    fn task_log(
        &self,
        id: &str,
        level: &str,
        code: &str,
        job_id: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        // The task's row is locked first, so two gateways number lines in turn.
        self.exec("SELECT 1 FROM dr_tasks WHERE id = $1 FOR UPDATE", &[&id])?;
        self.exec(
            "INSERT INTO dr_task_logs (task_id, n, time_ms, level, code, job_id, message)
             VALUES ($1, (SELECT COALESCE(max(n), 0) + 1 FROM dr_task_logs WHERE task_id = $1), $2, $3, $4, $5, $6)",
            &[&id, &now_millis(), &level, &code, &job_id, &message],
        )?;
        Ok(())
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
        self.exists(
            "SELECT 1 FROM job_steps WHERE job_seq = $1 LIMIT 1",
            &[&seq],
        )
    }
    fn steps_of(&self, seq: i64) -> Result<Vec<Step>, StoreError> {
        steps::of_job(self, seq)
    }
    fn lane_of(&self, job_id: &str) -> Result<Option<String>, StoreError> {
        let Some(seq) = self.pg.ids().decode(job_id) else {
            return Ok(None);
        };
        Ok(self
            .opt("SELECT lane FROM jobs WHERE seq = $1", &[&seq])?
            .map(|r| r.get(0)))
    }

    fn add_server(&self, master: &MasterKey, s: &NewServer<'_>) -> Result<bool, StoreError> {
        admin::add_server(self, master, s)
    }
    fn servers(&self) -> Result<Vec<Server>, StoreError> {
        let sql = format!("SELECT {SERVER} FROM servers ORDER BY endpoint");
        Ok(self.rows(&sql, &[])?.iter().map(server).collect())
    }
    fn remove_server(&self, endpoint: &str) -> Result<Result<bool, String>, StoreError> {
        admin::remove_server(self, endpoint)
    }
    fn clusters(&self) -> Result<Vec<Cluster>, StoreError> {
        let sql = format!("SELECT {CLUSTER} FROM clusters ORDER BY owner, id");
        Ok(self.rows(&sql, &[])?.iter().map(cluster).collect())
    }
    fn task_owners(&self) -> Result<Vec<String>, StoreError> {
        let rows = self.rows("SELECT DISTINCT owner FROM dr_tasks ORDER BY owner", &[])?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
    fn remove_cluster(&self, id: &str) -> Result<Result<(), String>, StoreError> {
        admin::remove_cluster(self, id)
    }
}
