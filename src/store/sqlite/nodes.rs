//! The nodes of a cluster (`cln-…`), as `DescribeClusterNodes` shows them.

use rusqlite::{Connection, OptionalExtension, params};

use crate::clock::{format_ts, now_unix};
use crate::store::StoreError;
pub use crate::store::types::NodeView;

fn ts(v: Option<i64>) -> String {
    v.map(format_ts).unwrap_or_default()
}

/// The nodes of a cluster, optionally only some ids or one role.
pub fn list(
    conn: &Connection,
    cluster_id: &str,
    ids: &[String],
    role: Option<&str>,
) -> Result<Vec<NodeView>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT n.id, n.cluster_id, n.role, n.is_primary, n.status, n.create_time, n.restart_time, n.rebuild_time,
                s.endpoint
         FROM nodes n LEFT JOIN servers s ON s.node_id = n.id
         WHERE n.cluster_id = ?1 AND (?2 IS NULL OR n.role = ?2) ORDER BY n.is_primary DESC, n.rowid",
    )?;
    let rows = stmt.query_map(params![cluster_id, role], |r| {
        Ok(NodeView {
            node_id: r.get(0)?,
            cluster_id: r.get(1)?,
            role: r.get(2)?,
            is_primary: r.get(3)?,
            status: r.get(4)?,
            create_time: format_ts(r.get(5)?),
            restart_time: ts(r.get(6)?),
            rebuild_time: ts(r.get(7)?),
            server: r.get(8)?,
            private_ip: None,
            port: None,
            server_state: None,
        })
        .map(|mut n: NodeView| {
            if let Some(ep) = n
                .server
                .as_deref()
                .and_then(crate::mariadb::Endpoint::parse)
            {
                n.private_ip = Some(ep.host);
                n.port = Some(ep.port);
            }
            n
        })
    })?;
    let all: Vec<NodeView> = rows.collect::<Result<_, _>>()?;
    Ok(all
        .into_iter()
        .filter(|n| ids.is_empty() || ids.contains(&n.node_id))
        .collect())
}

/// Nodes by id among `owner`'s clusters, whichever cluster they are in.
pub fn owned_by_id(
    conn: &Connection,
    owner: &str,
    ids: &[String],
    role: Option<&str>,
) -> Result<Vec<NodeView>, StoreError> {
    let mut out = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT n.cluster_id FROM nodes n JOIN clusters c ON c.id = n.cluster_id WHERE n.id = ?1 AND c.owner = ?2",
    )?;
    for id in ids {
        let cluster: Option<String> = stmt
            .query_row(params![id, owner], |r| r.get(0))
            .optional()?;
        if let Some(cluster) = cluster {
            out.extend(list(conn, &cluster, std::slice::from_ref(id), role)?);
        }
    }
    Ok(out)
}

/// One node of a cluster.
pub fn get(
    conn: &Connection,
    cluster_id: &str,
    node_id: &str,
) -> Result<Option<NodeView>, StoreError> {
    Ok(list(conn, cluster_id, &[node_id.to_string()], None)?.pop())
}

/// Whether the cluster has a node of `role`.
pub fn has_role(conn: &Connection, cluster_id: &str, role: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM nodes WHERE cluster_id = ?1 AND role = ?2")?
        .exists(params![cluster_id, role])?)
}

/// Records a restart of one node, or of every node of `role`.
pub fn restarted(
    conn: &Connection,
    cluster_id: &str,
    node_id: Option<&str>,
    role: Option<&str>,
) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "UPDATE nodes SET restart_time = ?4 WHERE cluster_id = ?1 AND (?2 IS NULL OR id = ?2) AND (?3 IS NULL OR role = ?3)",
        params![cluster_id, node_id, role, now_unix()],
    )?)
}

pub fn rebuilt(conn: &Connection, cluster_id: &str, node_id: &str) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "UPDATE nodes SET rebuild_time = ?3 WHERE cluster_id = ?1 AND id = ?2",
        params![cluster_id, node_id, now_unix()],
    )?)
}

/// Makes `node_id` the cluster's primary maininstance node.
pub fn assign_primary(
    conn: &Connection,
    cluster_id: &str,
    node_id: &str,
) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "UPDATE nodes SET is_primary = (id = ?2) WHERE cluster_id = ?1 AND role = 'maininstance'",
        params![cluster_id, node_id],
    )?)
}

/// Sets the status of every node of a cluster.
pub fn set_status(conn: &Connection, cluster_id: &str, status: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE nodes SET status = ?2 WHERE cluster_id = ?1",
        params![cluster_id, status],
    )?;
    Ok(())
}
