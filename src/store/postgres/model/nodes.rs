//! A cluster's nodes, with the server bound to each.

use super::PgModel;
use super::rows::node;
use crate::store::StoreError;
use crate::store::postgres::Conn;
use crate::store::types::NodeView;

pub fn of_cluster<C: Conn>(
    m: &PgModel<'_, C>,
    cluster: &str,
    ids: &[String],
    role: Option<&str>,
) -> Result<Vec<NodeView>, StoreError> {
    let rows = m.rows(
        "SELECT n.id, n.cluster_id, n.role, n.is_primary, n.status, n.create_time, n.restart_time,
                n.rebuild_time, s.endpoint
         FROM nodes n LEFT JOIN servers s ON s.node_id = n.id
         WHERE n.cluster_id = $1 AND ($2::text IS NULL OR n.role = $2) ORDER BY n.is_primary DESC, n.n",
        &[&cluster, &role],
    )?;
    Ok(rows
        .iter()
        .map(node)
        .filter(|n| ids.is_empty() || ids.contains(&n.node_id))
        .collect())
}

/// The nodes named, of clusters `owner` has.
pub fn owned<C: Conn>(
    m: &PgModel<'_, C>,
    owner: &str,
    ids: &[String],
    role: Option<&str>,
) -> Result<Vec<NodeView>, StoreError> {
    let mut out = Vec::new();
    for id in ids {
        let cluster = m.opt(
            "SELECT n.cluster_id FROM nodes n JOIN clusters c ON c.id = n.cluster_id
             WHERE n.id = $1 AND c.owner = $2",
            &[id, &owner],
        )?;
        if let Some(r) = cluster {
            let cluster: String = r.get(0);
            out.extend(of_cluster(m, &cluster, std::slice::from_ref(id), role)?);
        }
    }
    Ok(out)
}
