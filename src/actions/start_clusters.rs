//! `StartClusters` (notes §5.3): `clusters.n`; answers `job_ids` {cluster_id: job_id}.

use super::{Action, Context, Reply, cluster_jobs};
use crate::BoxFuture;
use crate::error::ApiError;
use crate::services::cluster_power::START_CLUSTER;

pub struct StartClusters;

impl Action for StartClusters {
    fn name(&self) -> &'static str {
        "StartClusters"
    }

    fn handle<'a>(&'a self, cx: &'a Context<'a>) -> BoxFuture<'a, Result<Reply, ApiError>> {
        Box::pin(cluster_jobs::run(
            cx,
            self.name(),
            &START_CLUSTER,
            Default::default(),
        ))
    }
}
