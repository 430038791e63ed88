//! `DescribeJobs` (notes §4.1): the caller's jobs, newest first.

use serde_json::Value;

use super::{Action, Context, Reply};
use crate::BoxFuture;
use crate::error::ApiError;
use crate::ids::is_job_id;
use crate::params::printable;
use crate::store::jobs::{Described, JobFilter, STATUSES};
use crate::store::queue::Queue;

pub struct DescribeJobs;

impl Action for DescribeJobs {
    fn name(&self) -> &'static str {
        "DescribeJobs"
    }

    fn handle<'a>(&'a self, cx: &'a Context<'a>) -> BoxFuture<'a, Result<Reply, ApiError>> {
        Box::pin(async move { describe(cx, None).await })
    }
}

/// DescribeJobs, optionally scoped to one cluster's jobs (DescribeClusterJobs).
pub async fn describe(cx: &Context<'_>, cluster: Option<String>) -> Result<Reply, ApiError> {
    let p = cx.params;
    let ids = p.list("jobs")?;
    if let Some(bad) = ids.iter().find(|id| !is_job_id(id)) {
        // Malformed ids cannot exist: same answer as an unknown one.
        return Err(ApiError::not_found(&printable(bad)));
    }
    let (offset, limit) = super::paging(p)?;
    let filter = JobFilter {
        owner: cx.caller.owner.clone(),
        zone: super::zone_filter(p)?,
        ids: ids.iter().map(|s| s.to_string()).collect(),
        statuses: super::statuses(p, &STATUSES)?,
        action: p.optional("job_action").map(str::to_string),
        lane: cluster,
        offset,
        limit,
    };
    let store = &cx.state.store;
    let (set, total) = match store.describe(&filter).await? {
        Described::Page(set, total) => (set, total),
        Described::Missing(id) => return Err(ApiError::not_found(&id)),
    };
    let mut reply = Reply::new();
    let rows = set.into_iter().map(|e| e.json).collect();
    reply.insert_list("job_set".into(), rows);
    reply.insert("total_count".into(), Value::from(total));
    Ok(reply)
}
