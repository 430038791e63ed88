//! `DescribeClusters` (notes §5.3): the caller's clusters, newest first.
//! Ids in `clusters.n` that the caller cannot see are simply not listed.

use serde_json::Value;

use super::{Action, Context, Reply};
use crate::BoxFuture;
use crate::error::ApiError;
use crate::params::printable;
use crate::store::clusters::{self, ClusterFilter};

pub struct DescribeClusters;

const STATUSES: [&str; 4] = ["active", "stopped", "suspended", "deleted"];
const MAX_LIMIT: u64 = 100;

impl Action for DescribeClusters {
    fn name(&self) -> &'static str {
        "DescribeClusters"
    }

    fn handle<'a>(&'a self, cx: &'a Context<'a>) -> BoxFuture<'a, Result<Reply, ApiError>> {
        Box::pin(async move {
            let p = cx.params;
            let statuses = p.list("status")?;
            if let Some(bad) = statuses.iter().find(|s| !STATUSES.contains(s)) {
                return Err(ApiError::invalid(
                    "status",
                    format!("[{}] is not one of {}", printable(bad), STATUSES.join(", ")),
                ));
            }
            p.int("verbose", 0, 0, 1)?;
            let filter = ClusterFilter {
                owner: cx.caller.owner.clone(),
                zone: match p.optional("zone") {
                    Some(_) => Some(super::zone(p)?.to_string()),
                    None => None,
                },
                ids: p.list("clusters")?.iter().map(|s| s.to_string()).collect(),
                statuses: statuses.iter().map(|s| s.to_string()).collect(),
                search_word: p.optional("search_word").map(str::to_string),
                offset: p.int("offset", 0, 0, i64::MAX as u64)?,
                limit: p.int("limit", 20, 0, u64::MAX)?.min(MAX_LIMIT),
            };
            let (set, total) = cx
                .state
                .store
                .readers
                .with(|c| clusters::describe(c, &filter))?;
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
