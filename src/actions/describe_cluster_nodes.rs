//! `DescribeClusterNodes` (notes §5.3): the nodes of one of the caller's
//! clusters, or the caller's nodes named in `nodes.n`.

use serde_json::Value;

use super::{Action, Context, Reply};
use crate::BoxFuture;
use crate::error::ApiError;
use crate::store::nodes;

pub struct DescribeClusterNodes;

const ROLES: [&str; 4] = ["maininstance", "readinstance", "analysis", "proxy"];

impl Action for DescribeClusterNodes {
    fn name(&self) -> &'static str {
        "DescribeClusterNodes"
    }

    fn handle<'a>(&'a self, cx: &'a Context<'a>) -> BoxFuture<'a, Result<Reply, ApiError>> {
        Box::pin(async move {
            let p = cx.params;
            let role = p.optional("role");
            if let Some(r) = role
                && !ROLES.contains(&r)
            {
                return Err(ApiError::invalid(
                    "role",
                    format!("must be one of {}", ROLES.join(", ")),
                ));
            }
            let ids: Vec<String> = p.list("nodes")?.iter().map(|s| s.to_string()).collect();
            let (offset, limit) = super::paging(p)?;
            let (offset, limit) = (offset.min(usize::MAX as u64) as usize, limit as usize);
            let owner = cx.caller.owner.as_str();
            // Without `cluster`, `nodes.n` finds nodes in any of the caller's
            // clusters (a failed creation's standby node, by the id answered).
            let cluster = if ids.is_empty() {
                Some(p.required("cluster")?)
            } else {
                p.optional("cluster")
            };
            let nodes = cx.state.store.read(|c| {
                Ok(match cluster {
                    None => Some(c.nodes_owned(owner, &ids, role)?),
                    Some(id) => match c.cluster_owned(owner, id)? {
                        Some(_) => Some(c.nodes(id, &ids, role)?),
                        None => None,
                    },
                })
            })?;
            let nodes = nodes.ok_or_else(|| ApiError::not_found(cluster.unwrap_or_default()))?;
            let total = nodes.len();
            let mut page: Vec<_> = nodes.into_iter().skip(offset).take(limit).collect();
            live(cx, &mut page).await;
            let mut reply = Reply::new();
            reply.insert(
                "node_set".into(),
                serde_json::to_value(page).unwrap_or(Value::Null),
            );
            reply.insert("total_count".into(), Value::from(total));
            Ok(reply)
        })
    }
}

/// A server-backed node's status is its server's, read now.
async fn live(cx: &Context<'_>, page: &mut [nodes::NodeView]) {
    let fleet = &cx.state.fleet;
    let mut clusters: Vec<String> = page
        .iter()
        .filter(|n| n.server.is_some())
        .map(|n| n.cluster_id.clone())
        .collect();
    clusters.dedup();
    for id in clusters {
        let Ok(Some(members)) = fleet.members(&id) else {
            continue;
        };
        for n in page.iter_mut().filter(|n| n.cluster_id == id) {
            let Some(m) = members.all().find(|m| m.node_id == n.node_id) else {
                continue;
            };
            let state = match fleet.check_allowed(&m.endpoint) {
                Ok(()) => {
                    let limit = std::time::Duration::from_secs(1);
                    match crate::mariadb::Node::connect_within(&m.endpoint, &m.login, limit).await {
                        Ok(mut node) => {
                            let st = node.state().await;
                            node.close().await;
                            st.ok()
                        }
                        Err(_) => None,
                    }
                }
                Err(_) => None,
            };
            match state {
                Some(st) => {
                    if n.status == "active" || n.status == "unreachable" {
                        n.status = "active".into();
                    }
                    n.server_state = Some(serde_json::json!({
                        "read_only": st.read_only,
                        "replicates_from": st.replica.as_ref().map(|r| format!("{}:{}", r.source_host, r.source_port)),
                        "gtid": st.current_pos.to_string(),
                        "version": st.version,
                    }));
                }
                None if n.status == "active" => n.status = "unreachable".into(),
                None => {}
            }
        }
    }
}
