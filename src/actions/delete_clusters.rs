//! `DeleteClusters` (notes §5.3): `clusters.n`, `direct_cease` (0: recycle
//! bin, 1: destroy); answers `job_ids` {cluster_id: job_id}.

use serde_json::{Map, Value};

use super::{Action, Context, Reply, cluster_jobs};
use crate::BoxFuture;
use crate::error::ApiError;
use crate::services::delete_cluster::DeleteCluster;

pub struct DeleteClusters;

impl Action for DeleteClusters {
    fn name(&self) -> &'static str {
        "DeleteClusters"
    }

    fn handle<'a>(&'a self, cx: &'a Context<'a>) -> BoxFuture<'a, Result<Reply, ApiError>> {
        Box::pin(async move {
            let cease = cx.params.int("direct_cease", 0, 0, 1)?;
            let mut fields = Map::new();
            fields.insert("direct_cease".into(), Value::from(cease));
            cluster_jobs::run(cx, self.name(), &DeleteCluster, fields).await
        })
    }
}
