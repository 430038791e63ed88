//! `DescribeClusterStandbys` (extension): a cluster's DR relationship (role,
//! sync status, its primary and standbys) and the whole topology as a tree.

use serde_json::Value;

use super::{Action, Context, Reply};
use crate::BoxFuture;
use crate::error::ApiError;
use crate::services::topology::{self, Node, Relationship};
use crate::worker::servers::live;

pub struct DescribeClusterStandbys;

impl Action for DescribeClusterStandbys {
    fn name(&self) -> &'static str {
        "DescribeClusterStandbys"
    }

    fn handle<'a>(&'a self, cx: &'a Context<'a>) -> BoxFuture<'a, Result<Reply, ApiError>> {
        Box::pin(async move {
            let id = cx.params.required("cluster")?;
            let owner = cx.caller.owner.as_str();
            let found = cx
                .state
                .store
                .read(|c| topology::relationship(c, owner, id))?;
            let mut rel = found.ok_or_else(|| ApiError::not_found(id))?;
            live(cx, &mut rel).await;
            match serde_json::to_value(rel) {
                Ok(Value::Object(map)) => Ok(map.into()),
                _ => Err(ApiError::Internal(
                    "the topology could not be rendered".into(),
                )),
            }
        })
    }
}

/// On servers, the sync status and lag come from the servers themselves.
async fn live(cx: &Context<'_>, rel: &mut Relationship) {
    let fleet = &cx.state.fleet;
    if rel.executor == "servers"
        && rel.primary.is_some()
        && let Some(l) = live::standby(fleet, &rel.cluster_id).await
    {
        rel.sync_timestamp =
            (l.sync_status == "NORMAL").then(|| crate::clock::format_ts(crate::clock::now_unix()));
        rel.sync_status = Some(l.sync_status);
        rel.replication = Some(l.detail);
    }
    if rel.executor == "servers"
        && let Some(inv) = rel.invalidated.as_mut()
        && let Some(p) = inv.get("promoted_gtid").and_then(Value::as_str)
        && let Ok(promoted) = crate::mariadb::GtidPos::parse(p)
        && let Some(lost) = live::lost(fleet, &rel.cluster_id, &promoted).await
    {
        inv["returned"] = lost;
    }
    walk(cx, &mut rel.topology).await;
}

fn walk<'a>(cx: &'a Context<'a>, n: &'a mut Node) -> crate::BoxFuture<'a, ()> {
    Box::pin(async move {
        if n.executor == "servers"
            && n.role == "STANDBY"
            && let Some(l) = live::standby(&cx.state.fleet, &n.cluster_id).await
        {
            n.sync_status = Some(l.sync_status);
        }
        for c in n.standbys.iter_mut() {
            walk(cx, c).await;
        }
    })
}
