//! `DescribeClusterJobs` (notes §4.3): DescribeJobs for one cluster
//! (`cluster`; the docs' `app` is accepted as the same).

use super::{Action, Context, Reply, describe_jobs};
use crate::BoxFuture;
use crate::error::ApiError;

pub struct DescribeClusterJobs;

impl Action for DescribeClusterJobs {
    fn name(&self) -> &'static str {
        "DescribeClusterJobs"
    }

    fn handle<'a>(&'a self, cx: &'a Context<'a>) -> BoxFuture<'a, Result<Reply, ApiError>> {
        Box::pin(async move {
            let id = match cx
                .params
                .optional("cluster")
                .or_else(|| cx.params.optional("app"))
            {
                Some(id) => id,
                None => return Err(ApiError::missing("cluster")),
            };
            let owner = cx.caller.owner.as_str();
            if cx
                .state
                .store
                .read(|c| c.cluster_owned(owner, id))?
                .is_none()
            {
                return Err(ApiError::not_found(id));
            }
            describe_jobs::describe(cx, Some(id.to_string())).await
        })
    }
}
