//! What a job does to the model: computed by an executor, applied by the
//! worker in the same transaction that records the job's end.

use super::StoreError;
use super::model::Model;

/// What a job does to the model, applied in the transaction that records it.
pub type Effect = Box<dyn FnMut(&dyn Model) -> Result<(), EffectError> + Send>;

#[derive(Debug)]
pub enum EffectError {
    /// The model's state no longer allows the operation: the job fails with this message.
    Refused(String),
    Store(StoreError),
}
