//! The job queue as the request path and the workers use it: submit and
//! describe on one side; claim, heartbeat, record and prune on the other.
//! Cut at those use cases so that neither side names the storage engine;
//! the SQLite backend implements it in `store/sqlite/queue.rs`.

use tokio::sync::Notify;

use super::StoreError;
use super::effect::Effect;
use super::model::Model;
pub use super::types::Step;
use crate::BoxFuture;
use crate::written::{self, Written};

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
    /// `create`, when given, runs in the same transaction.
    fn submit(
        &self,
        items: Vec<(NewJob, Once)>,
        max_open: u64,
        create: Option<Creator>,
    ) -> BoxFuture<'_, Result<Vec<Enqueued>, StoreError>>;

    /// The job an identical signed request already stored, if any.
    fn replayed(&self, once: &Once) -> Result<Option<String>, StoreError>;

    /// How many jobs are pending and working, by status.
    fn open_jobs(&self) -> Result<Vec<(String, i64)>, StoreError>;

    /// `DescribeJobs`: newest first, the page and the total.
    fn describe<'a>(
        &'a self,
        filter: &'a JobFilter,
    ) -> BoxFuture<'a, Result<Described, StoreError>>;

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

// The queue's types.

/// A job as an action hands it to the store.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub owner: String,
    pub zone: String,
    pub action: String,
    /// Jobs of one lane (usually one cluster) run one at a time, in order.
    pub lane: String,
    pub resource_ids: Vec<String>,
    pub directive: String,
    pub task: String,
    /// Sealed secret fields (see [`seal_secrets`]); cleared when the job ends.
    pub secrets: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    New(String),
    /// The same signed request already stored this job.
    Replayed(String),
    /// The owner already has this many open jobs.
    OverQuota(u64),
}

#[derive(Debug, Default, Clone)]
pub struct JobFilter {
    pub owner: String,
    pub zone: Option<String>,
    pub ids: Vec<String>,
    pub statuses: Vec<String>,
    pub action: Option<String>,
    /// Only the jobs of this lane (one cluster's jobs).
    pub lane: Option<String>,
    pub offset: u64,
    pub limit: u64,
}

/// The result of a describe: the page, the total before paging, or the first
/// requested id the owner cannot see.
pub enum Described {
    Page(Vec<JobEntry>, u64),
    Missing(String),
}

/// `DescribeJobs` by ids, once every id was found: newest first, each job
/// once, then the filters and the page (the same on every backend).
pub fn by_ids_page(mut found: Vec<JobEntry>, f: &JobFilter) -> Described {
    found.sort_by_key(|e| std::cmp::Reverse(e.seq));
    found.dedup_by_key(|e| e.seq);
    let matching: Vec<JobEntry> = found
        .into_iter()
        .filter(|e| f.statuses.is_empty() || f.statuses.contains(&e.status))
        .filter(|e| f.action.as_ref().is_none_or(|a| *a == e.action))
        .filter(|e| {
            f.lane
                .as_ref()
                .is_none_or(|l| e.resource_ids.split(' ').any(|r| r == l))
        })
        .collect();
    let total = matching.len() as u64;
    let page = matching
        .into_iter()
        .skip(usize::try_from(f.offset).unwrap_or(usize::MAX))
        .take(usize::try_from(f.limit).unwrap_or(usize::MAX))
        .collect();
    Described::Page(page, total)
}

/// A job a worker holds the lease on.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub seq: i64,
    pub job_id: String,
    pub owner: String,
    pub zone: String,
    pub action: String,
    pub lane: String,
    pub task: String,
    /// The secret fields, sealed (see [`open_secrets`]).
    pub secrets: Option<String>,
    pub attempts: i64,
    pub enqueued_ms: i64,
    pub started_ms: i64,
}

/// How a job ended.
#[derive(Debug, Clone)]
pub enum Ending {
    Successful,
    Failed {
        code: u32,
        message: String,
    },
    /// Back to the queue (an idempotent job whose lease ran out).
    Requeued,
    /// Back to the queue after a transient failure; its lane waits until `at`.
    Retry {
        at: i64,
        code: u32,
        message: String,
    },
}

/// A working job whose lease ran out (or, at start-up, any working job).
#[derive(Debug, Clone)]
pub struct Orphan {
    pub seq: i64,
    pub job_id: String,
    pub lane: String,
    pub task: String,
    pub attempts: i64,
}

/// One row of `job_set`. Fields in alphabetical order: replies are written
/// straight from this struct ([`JobView::written`]), and every other object
/// in them has sorted keys. The serde derive is the reference tests hold
/// that writing to.
#[derive(Debug, Clone)]
#[cfg_attr(test, derive(serde::Serialize))]
pub struct JobView {
    pub create_time: String,
    pub directive: String,
    pub error_codes: String,
    #[cfg_attr(test, serde(skip_serializing_if = "String::is_empty"))]
    pub error_message: String,
    pub job_action: String,
    pub job_id: String,
    /// What a command executor printed, secrets removed (extension).
    #[cfg_attr(test, serde(skip_serializing_if = "String::is_empty"))]
    pub output: String,
    pub owner: String,
    pub resource_ids: String,
    pub status: String,
    pub status_time: String,
}

impl JobView {
    /// What serde_json writes for this struct, with its long strings
    /// escaped faster (see [`written::Object`]).
    pub fn written(&self) -> Written {
        let strings = self.directive.len() + self.output.len() + self.error_message.len();
        let mut o = written::Object::with_capacity(strings + strings / 4 + 256);
        o.str("create_time", &self.create_time)
            .str("directive", &self.directive)
            .str("error_codes", &self.error_codes);
        if !self.error_message.is_empty() {
            o.str("error_message", &self.error_message);
        }
        o.str("job_action", &self.job_action)
            .str("job_id", &self.job_id);
        if !self.output.is_empty() {
            o.str("output", &self.output);
        }
        o.str("owner", &self.owner)
            .str("resource_ids", &self.resource_ids)
            .str("status", &self.status)
            .str("status_time", &self.status_time);
        o.written()
    }
}

/// One job as `DescribeJobs` shows it: its `job_set` entry, written once,
/// and the fields that filters compare.
#[derive(Debug)]
pub struct JobEntry {
    pub seq: i64,
    pub id: String,
    pub owner: String,
    pub zone: String,
    pub status: String,
    pub action: String,
    pub resource_ids: String,
    pub json: Written,
}

impl JobEntry {
    pub(crate) fn new(seq: i64, zone: String, view: JobView) -> JobEntry {
        let json = view.written();
        JobEntry {
            seq,
            zone,
            id: view.job_id,
            owner: view.owner,
            status: view.status,
            action: view.job_action,
            resource_ids: view.resource_ids,
            json,
        }
    }
}

/// Identifies a signed request, so receiving it again creates no second job.
#[derive(Debug, Clone)]
pub struct Once {
    pub digest: String,
    /// Until when the signed request could be sent again.
    pub expires: i64,
}
