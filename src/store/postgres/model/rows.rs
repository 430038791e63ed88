//! Rows as the model's types, and the WHERE clause of the listings.

use serde_json::Value;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::clock::format_ts;
use crate::store::types::{Cluster, Compare, DrTask, NodeView, Server};

pub const CLUSTER: &str = "id, owner, zone, name, status, dr_role, standby_of, sync_way, sync_status, create_time, status_time, settings, backend";

pub fn cluster(r: &Row) -> Cluster {
    Cluster {
        cluster_id: r.get(0),
        owner: r.get(1),
        zone: r.get(2),
        name: r.get(3),
        status: r.get(4),
        dr_role: r.get(5),
        standby_of: r.get(6),
        sync_way: r.get(7),
        sync_status: r.get(8),
        create_time: r.get(9),
        status_time: r.get(10),
        settings: serde_json::from_str(r.get(11)).unwrap_or_default(),
        backend: r.get(12),
    }
}

pub const SERVER: &str =
    "endpoint, zone, admin_user, admin_secret, server_id, version, cluster_id, node_id";

pub fn server(r: &Row) -> Server {
    Server {
        endpoint: r.get(0),
        zone: r.get(1),
        admin_user: r.get(2),
        admin_secret: r.get(3),
        server_id: u32::try_from(r.get::<_, i64>(4)).unwrap_or(0),
        version: r.get(5),
        cluster_id: r.get(6),
        node_id: r.get(7),
    }
}

pub const TASK: &str = "id, owner, zone, name, description, direction, standby_cluster, source_cluster, \
    source_endpoint, source_user, source_secret, sync_way, objects, flow_control, migrate_definer, status, \
    status_time, create_time, last_error, precheck, precheck_time, start_at, progress";

pub fn json(text: Option<&str>) -> Option<Value> {
    text.and_then(|t| serde_json::from_str(t).ok())
}

pub fn task(r: &Row) -> DrTask {
    DrTask {
        id: r.get(0),
        owner: r.get(1),
        zone: r.get(2),
        name: r.get(3),
        description: r.get(4),
        direction: r.get(5),
        standby_cluster: r.get(6),
        source_cluster: r.get(7),
        source_endpoint: r.get(8),
        source_user: r.get(9),
        source_secret: r.get(10),
        sync_way: r.get(11),
        objects: json(r.get(12)).unwrap_or(Value::Null),
        flow_control: json(r.get(13)).unwrap_or(Value::Null),
        migrate_definer: r.get(14),
        status: r.get(15),
        status_time: r.get(16),
        create_time: r.get(17),
        last_error: r.get(18),
        precheck: json(r.get(19)),
        precheck_time: r.get(20),
        start_at: r.get(21),
        progress: json(r.get(22)),
    }
}

pub const COMPARE: &str =
    "id, task_id, types, status, at_gtid, create_time, finish_time, result, error";

pub fn compare(r: &Row) -> Compare {
    Compare {
        id: r.get(0),
        task_id: r.get(1),
        types: json(r.get(2)).unwrap_or(Value::Null),
        status: r.get(3),
        at_gtid: r.get(4),
        create_time: r.get(5),
        finish_time: r.get(6),
        result: json(r.get(7)).unwrap_or(Value::Null),
        error: r.get(8),
    }
}

pub fn node(r: &Row) -> NodeView {
    let ts = |v: Option<i64>| v.map(format_ts).unwrap_or_default();
    let mut n = NodeView {
        node_id: r.get(0),
        cluster_id: r.get(1),
        role: r.get(2),
        is_primary: r.get(3),
        status: r.get(4),
        create_time: format_ts(r.get(5)),
        restart_time: ts(r.get(6)),
        rebuild_time: ts(r.get(7)),
        server: r.get(8),
        private_ip: None,
        port: None,
        server_state: None,
    };
    if let Some(ep) = n
        .server
        .as_deref()
        .and_then(crate::mariadb::Endpoint::parse)
    {
        n.private_ip = Some(ep.host);
        n.port = Some(ep.port);
    }
    n
}

/// QingCloud's `transition_status`, as the SQLite store derives it.
pub fn transition(status: &str, running: Option<&str>) -> &'static str {
    match (status, running) {
        ("pending", _) => "creating",
        (_, None) => "",
        (_, Some("DeleteClusters")) => "deleting",
        (_, Some("StartClusters")) => "starting",
        (_, Some("StopClusters")) => "stopping",
        (_, Some("RestartClusterService")) => "restarting",
        (_, Some(_)) => "updating",
    }
}

/// `owner = $1 AND …` for the listings, with its text arguments.
pub struct Where {
    pub clause: String,
    args: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Where {
    pub fn new(col: &str, value: &str) -> Self {
        Where {
            clause: format!("{col} = $1"),
            args: vec![Box::new(value.to_string())],
        }
    }
    pub fn arg(&mut self, v: impl ToSql + Sync + Send + 'static) -> String {
        self.args.push(Box::new(v));
        format!("${}", self.args.len())
    }
    pub fn and(&mut self, sql: &str) -> &mut Self {
        self.clause.push_str(" AND ");
        self.clause.push_str(sql);
        self
    }
    pub fn eq(&mut self, col: &str, value: Option<&String>) -> &mut Self {
        if let Some(v) = value {
            let p = self.arg(v.clone());
            self.and(&format!("{col} = {p}"));
        }
        self
    }
    pub fn any_of(&mut self, col: &str, values: &[String]) -> &mut Self {
        if !values.is_empty() {
            let p = self.arg(values.to_vec());
            self.and(&format!("{col} = ANY({p})"));
        }
        self
    }
    pub fn search(&mut self, id: &str, name: &str, word: Option<&String>) -> &mut Self {
        if let Some(w) = word {
            let p = self.arg(w.clone());
            self.and(&format!(
                "(strpos({id}, {p}) > 0 OR strpos({name}, {p}) > 0)"
            ));
        }
        self
    }
    /// `LIMIT $n OFFSET $m` for a page, its arguments added.
    pub fn page(&mut self, limit: u64, offset: u64) -> String {
        let limit = self.arg(page(limit));
        let offset = self.arg(page(offset));
        format!("LIMIT {limit} OFFSET {offset}")
    }
    pub fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.args
            .iter()
            .map(|a| &**a as &(dyn ToSql + Sync))
            .collect()
    }
}

pub fn page(n: u64) -> i64 {
    n.min(i64::MAX as u64) as i64
}
