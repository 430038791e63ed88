//! The job queue as the request path and the workers use it: submit and
//! describe on one side; claim, heartbeat, record and prune on the other.
//! Cut at those use cases so that neither side names the storage engine;
//! the SQLite backend implements it in `store/sqlite/queue.rs`.

use tokio::sync::Notify;

use super::StoreError;
use super::effect::Effect;
pub use super::jobs::{Claimed, Described, Ending, Enqueued, JobFilter, NewJob, Once, Orphan};
use super::model::Model;
pub use super::steps::Step;
use crate::BoxFuture;

/// What a submission creates beside its jobs, in the same transaction, when
/// every job is new (a cluster, a DR task's status): it exists exactly when
/// they do.
pub type Creator = Box<dyn FnMut(&dyn Model) -> Result<(), StoreError> + Send>;

/// A claimed job's end, as a worker hands it back.
pub struct Outcome {
    pub seq: i64,
    pub lane: String,
    pub worker: String,
    /// `None`: stopped before it did anything, so back to pending. Else
    /// the effect to apply (its refusal fails the job) or the ending.
    pub result: Option<Result<Effect, Ending>>,
    /// Applied when the job ends `failed`.
    pub on_failure: Option<Effect>,
    /// What the executor printed, secrets removed.
    pub output: String,
}

/// How a job whose worker died ends, as the worker side decides it from the
/// job and the steps it recorded.
pub struct Rescue {
    pub ending: Ending,
    /// A step appended to the job's record first (`gateway_stopped`).
    pub note: Option<(String, String)>,
    /// Applied when the ending is `failed`.
    pub on_failure: Option<Effect>,
}

pub type Rescuer = Box<dyn Fn(&Orphan, &[Step]) -> Rescue + Send + Sync>;

pub trait Queue: Send + Sync {
    /// Stores the jobs, all or none: each is new, the one an identical
    /// signed request already stored, or refused over the owner's quota.
    fn submit(
        &self,
        items: Vec<(NewJob, Once)>,
        max_open: u64,
        create: Creator,
    ) -> BoxFuture<'_, Result<Vec<Enqueued>, StoreError>>;

    /// The job an identical signed request already stored, if any.
    fn replayed(&self, once: &Once) -> Result<Option<String>, StoreError>;

    /// How many jobs are pending and working, by status.
    fn open_jobs(&self) -> Result<Vec<(String, i64)>, StoreError>;

    /// `DescribeJobs`: newest first, the page and the total.
    fn describe(&self, filter: &JobFilter) -> Result<Described, StoreError>;

    /// The oldest pending job of a lane with nothing running, leased to
    /// `worker` for `lease_secs`.
    fn claim(
        &self,
        worker: &str,
        lease_secs: i64,
    ) -> BoxFuture<'_, Result<Option<Claimed>, StoreError>>;

    /// Extends a lease; false once the worker no longer holds it.
    fn heartbeat(
        &self,
        seq: i64,
        worker: &str,
        lease_secs: i64,
    ) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// Applies the effect and records the ending in one transaction; `None`
    /// (and nothing changed) when the lease was lost meanwhile, else the
    /// status recorded.
    fn record(&self, outcome: Outcome) -> BoxFuture<'_, Result<Option<&'static str>, StoreError>>;

    /// Ends, as `decide` says, every working job whose lease expired
    /// before `expired_before`; how many.
    fn rescue(
        &self,
        expired_before: i64,
        decide: Rescuer,
    ) -> BoxFuture<'_, Result<usize, StoreError>>;

    /// Deletes up to `batch` jobs that ended before `before`; how many.
    fn prune(&self, before: i64, batch: usize) -> BoxFuture<'_, Result<usize, StoreError>>;

    /// Signalled when a job may be ready to claim.
    fn job_ready(&self) -> &Notify;
}
