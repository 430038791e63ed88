//! `StopClusters` (notes §5.3): `clusters.n`; answers `job_ids` {cluster_id: job_id}.

use super::{Action, Context, Reply, cluster_jobs};
use crate::BoxFuture;
use crate::error::ApiError;
use crate::services::cluster_power::STOP_CLUSTER;

pub struct StopClusters;

impl Action for StopClusters {
    fn name(&self) -> &'static str {
        "StopClusters"
    }

    fn handle<'a>(&'a self, cx: &'a Context<'a>) -> BoxFuture<'a, Result<Reply, ApiError>> {
        Box::pin(cluster_jobs::run(
            cx,
            self.name(),
            &STOP_CLUSTER,
            Default::default(),
        ))
    }
}
