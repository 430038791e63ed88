//! `DescribeClusters` (notes §5.3): the caller's clusters, newest first.
//! Ids in `clusters.n` that the caller cannot see are simply not listed.

use serde_json::Value;

use super::{Action, Context, Reply};
use crate::BoxFuture;
use crate::error::ApiError;
use crate::store::clusters::ClusterFilter;

pub struct DescribeClusters;

const STATUSES: [&str; 7] = [
    "pending",
    "active",
    "stopped",
    "suspended",
    "failed",
    "deleted",
    "ceased",
];

impl Action for DescribeClusters {
    fn name(&self) -> &'static str {
        "DescribeClusters"
    }

    fn handle<'a>(&'a self, cx: &'a Context<'a>) -> BoxFuture<'a, Result<Reply, ApiError>> {
        Box::pin(async move {
            let p = cx.params;
            let (offset, limit) = super::paging(p)?;
            let filter = ClusterFilter {
                owner: cx.caller.owner.clone(),
                zone: super::zone_filter(p)?,
                ids: p.list("clusters")?.iter().map(|s| s.to_string()).collect(),
                statuses: super::statuses(p, &STATUSES)?,
                search_word: p.optional("search_word").map(str::to_string),
                offset,
                limit,
            };
            let (set, total) = cx.state.store.read(|c| c.describe_clusters(&filter))?;
            let mut reply = Reply::new();
            reply.insert(
                "cluster_set".into(),
                serde_json::to_value(set).unwrap_or(Value::Null),
            );
            reply.insert("total_count".into(), Value::from(total));
            Ok(reply)
        })
    }
}
