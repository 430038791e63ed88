//! Actions, dispatched on `action=` after authentication. Each action is one
//! file; registering it is one line in `REGISTRY`.

mod cluster_jobs;
mod create_cluster;
mod delete_clusters;
mod describe_cluster_jobs;
mod describe_cluster_nodes;
mod describe_cluster_standbys;
mod describe_clusters;
mod describe_jobs;
mod dr_tasks;
mod reply;
mod restart_cluster_service;
mod run_cluster_custom_service;
mod start_clusters;
mod stop_clusters;

pub use reply::Reply;

use crate::BoxFuture;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::params::Params;
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::jobs::{Enqueued, NewJob, Once};
use crate::store::model::Model;
use crate::store::queue::{Creator, Queue};

/// Everything a handler may use: the authenticated caller and the parameters.
pub struct Context<'a> {
    pub state: &'a AppState,
    pub caller: &'a Caller,
    pub params: &'a Params,
}

pub trait Action: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn handle<'a>(&'a self, cx: &'a Context<'a>) -> BoxFuture<'a, Result<Reply, ApiError>>;
}

static REGISTRY: &[&dyn Action] = &[
    &create_cluster::CreateCluster,
    &delete_clusters::DeleteClusters,
    &describe_cluster_jobs::DescribeClusterJobs,
    &describe_cluster_nodes::DescribeClusterNodes,
    &describe_cluster_standbys::DescribeClusterStandbys,
    &describe_clusters::DescribeClusters,
    &describe_jobs::DescribeJobs,
    &restart_cluster_service::RestartClusterService,
    &run_cluster_custom_service::RunClusterCustomService,
    &start_clusters::StartClusters,
    &stop_clusters::StopClusters,
    // DR tasks (seed 002).
    &dr_tasks::create::CreateDRTask,
    &dr_tasks::precheck::PrecheckDRTasks,
    &dr_tasks::prechecks::DescribeDRTaskPrechecks,
    &dr_tasks::start::StartDRTasks,
    &dr_tasks::describe::DescribeDRTasks,
    &dr_tasks::progress::DescribeDRTaskProgress,
    &dr_tasks::logs::DescribeDRTaskLogs,
    &dr_tasks::compare::CreateDRTaskCompare,
    &dr_tasks::compares::DescribeDRTaskCompares,
    &dr_tasks::compare_results::DescribeDRTaskCompareResults,
    &dr_tasks::retry::RetryDRTasks,
    &dr_tasks::stop::StopDRTasks,
    &dr_tasks::delete::DeleteDRTasks,
];

pub fn find(name: &str) -> Option<&'static dyn Action> {
    REGISTRY.iter().copied().find(|a| a.name() == name)
}

pub fn names() -> Vec<&'static str> {
    let mut v: Vec<_> = REGISTRY.iter().map(|a| a.name()).collect();
    v.sort_unstable();
    v
}

/// The job this exact signed request already created, if any: a replay is
/// answered with it whatever the state is now. `part` tells apart the jobs
/// of a request that creates several (one per cluster). Actions whose reply
/// names more than the job (a new cluster's ids) look before validating;
/// the others use [`unless_replayed`].
pub fn replayed(cx: &Context<'_>, part: &str) -> Result<Option<String>, ApiError> {
    let once = once(cx, part);
    Ok(cx.state.store.replayed(&once)?)
}

/// `refused`, unless this signed request already created its job: then that
/// job. Validation runs first and the replay is looked up only when it
/// fails (the state the first request was validated against has usually
/// changed since); when validation passes, [`enqueue`] finds the replay
/// atomically in the writer. The common path thus costs no extra read.
pub fn unless_replayed(
    cx: &Context<'_>,
    part: &str,
    refused: ApiError,
) -> Result<String, ApiError> {
    match replayed(cx, part)? {
        Some(job_id) => Ok(job_id),
        None => Err(refused),
    }
}

/// The replay key of this signed request (or of one part of it).
fn once(cx: &Context<'_>, part: &str) -> Once {
    let digest = if part.is_empty() {
        cx.caller.request_digest()
    } else {
        format!("{}:{part}", cx.caller.request_digest())
    };
    Once {
        digest,
        expires: cx.caller.valid_until,
    }
}

/// Stores jobs for this signed request, once: the same request received
/// again (within its validity) answers with the jobs it already created.
/// Every action that creates jobs goes through here; `(part, job)` pairs as
/// for [`replayed`]. All or nothing under the owner's queue quota.
pub async fn enqueue(
    cx: &Context<'_>,
    jobs: Vec<(String, NewJob)>,
) -> Result<Vec<String>, ApiError> {
    submit(cx, jobs, None).await
}

/// [`enqueue`], plus `create`, run in the same transaction when the jobs are
/// new (not replayed, within quota): what the jobs work on (a new cluster)
/// exists exactly when they do.
pub async fn enqueue_with(
    cx: &Context<'_>,
    jobs: Vec<(String, NewJob)>,
    create: impl FnMut(&dyn Model) -> Result<(), StoreError> + Send + 'static,
) -> Result<Vec<String>, ApiError> {
    submit(cx, jobs, Some(Box::new(create))).await
}

async fn submit(
    cx: &Context<'_>,
    jobs: Vec<(String, NewJob)>,
    create: Option<Creator>,
) -> Result<Vec<String>, ApiError> {
    let items: Vec<(NewJob, Once)> = jobs
        .into_iter()
        .map(|(part, job)| (job, once(cx, &part)))
        .collect();
    let outcome = cx
        .state
        .store
        .submit(items, cx.state.max_open_jobs_per_owner, create)
        .await?;
    let mut ids = Vec::with_capacity(outcome.len());
    for o in outcome {
        match o {
            Enqueued::New(id) | Enqueued::Replayed(id) => ids.push(id),
            Enqueued::OverQuota(max) => {
                return Err(ApiError::QuotaExceeded(format!(
                    "the owner already has {max} jobs pending or working; wait for some to finish"
                )));
            }
        }
    }
    Ok(ids)
}

/// List actions return at most this many items, whatever `limit` says.
pub const MAX_LIMIT: u64 = 100;

/// `offset` and `limit` (default 20, at most [`MAX_LIMIT`]); `verbose` checked.
pub fn paging(params: &Params) -> Result<(u64, u64), ApiError> {
    params.int("verbose", 0, 0, 1)?;
    let offset = params.int("offset", 0, 0, i64::MAX as u64)?;
    let limit = params.int("limit", 20, 0, u64::MAX)?.min(MAX_LIMIT);
    Ok((offset, limit))
}

/// `status.n` (or scalar `status`), each one of `allowed`.
pub fn statuses(params: &Params, allowed: &[&str]) -> Result<Vec<String>, ApiError> {
    let statuses = params.list("status")?;
    if let Some(bad) = statuses.iter().find(|s| !allowed.contains(s)) {
        return Err(ApiError::invalid(
            "status",
            format!(
                "[{}] is not one of {}",
                crate::params::printable(bad),
                allowed.join(", ")
            ),
        ));
    }
    Ok(statuses.iter().map(|s| s.to_string()).collect())
}

/// `zone` as an optional filter (lower-case when given).
pub fn zone_filter(params: &Params) -> Result<Option<String>, ApiError> {
    match params.optional("zone") {
        Some(_) => Ok(Some(zone(params)?.to_string())),
        None => Ok(None),
    }
}

/// `zone`, required and lower-case.
pub fn zone(params: &Params) -> Result<&str, ApiError> {
    let z = params.required("zone")?;
    if crate::ids::is_zone(z) {
        Ok(z)
    } else {
        Err(ApiError::invalid(
            "zone",
            "must be a lower-case zone id such as pek3a",
        ))
    }
}
