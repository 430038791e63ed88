//! `DescribeClusterStandbys` (extension): a cluster's DR relationship (role,
//! sync status, its primary and standbys) and the whole topology as a tree.

use serde_json::Value;

use super::{Action, Context, Reply};
use crate::BoxFuture;
use crate::error::ApiError;
use crate::services::topology;

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
                .readers
                .with(|c| topology::relationship(c, owner, id))?;
            let rel = found.ok_or_else(|| ApiError::not_found(id))?;
            match serde_json::to_value(rel) {
                Ok(Value::Object(map)) => Ok(map.into()),
                _ => Err(ApiError::Internal(
                    "the topology could not be rendered".into(),
                )),
            }
        })
    }
}
