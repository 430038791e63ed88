//! `DescribeClusterNodes` (notes §5.3): the nodes of one of the caller's
//! clusters, or the caller's nodes named in `nodes.n`.

use serde_json::Value;

use super::{Action, Context, Reply};
use crate::BoxFuture;
use crate::error::ApiError;
use crate::store::{clusters, nodes};

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
            let nodes = cx.state.store.readers.with(|c| {
                Ok(match cluster {
                    None => Some(nodes::owned_by_id(c, owner, &ids, role)?),
                    Some(id) => match clusters::get_owned(c, owner, id)? {
                        Some(_) => Some(nodes::list(c, id, &ids, role)?),
                        None => None,
                    },
                })
            })?;
            let nodes = nodes.ok_or_else(|| ApiError::not_found(cluster.unwrap_or_default()))?;
            let total = nodes.len();
            let page: Vec<_> = nodes.into_iter().skip(offset).take(limit).collect();
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
