//! Executors run jobs. They only compute; recording the outcome (and applying
//! its effect to the model) happens afterwards in one transaction.

use crate::BoxFuture;
use crate::store::jobs::Claimed;
use crate::worker::Effect;

/// A job that ran: its effect on the model, and what it printed (kept with
/// the job; secrets already removed).
pub struct Done {
    pub effect: Effect,
    pub output: String,
}

impl From<Effect> for Done {
    fn from(effect: Effect) -> Self {
        Done {
            effect,
            output: String::new(),
        }
    }
}

/// Why a job failed, as shown in `error_codes` / `error_message`.
pub struct Failure {
    pub code: u32,
    pub message: String,
    /// A transient failure (timeout, unreachable host): an idempotent job may
    /// be tried again.
    pub retryable: bool,
    /// What the job printed before failing, secrets removed.
    pub output: String,
    /// What the model must record although the job failed (the servers
    /// changed part-way); `None`: the service's own failure effect, if any.
    pub effect: Option<Effect>,
}

impl std::fmt::Debug for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Failure")
            .field("code", &self.code)
            .field("message", &self.message)
            .field("retryable", &self.retryable)
            .finish_non_exhaustive()
    }
}

impl Failure {
    pub fn new(code: u32, message: impl Into<String>, retryable: bool) -> Self {
        Failure {
            code,
            message: message.into(),
            retryable,
            output: String::new(),
            effect: None,
        }
    }
}

pub trait Executor: Send + Sync + 'static {
    fn execute<'a>(&'a self, job: &'a Claimed) -> BoxFuture<'a, Result<Done, Failure>>;

    /// True when dropping `execute` for this job before it completes leaves
    /// nothing done, so on shutdown it can go back to `pending` instead of
    /// being waited for.
    fn cancel_safe(&self, _job: &Claimed) -> bool {
        false
    }
}
