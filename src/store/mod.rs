//! Durable state behind interfaces cut at use cases (`model`, `queue`,
//! `front::Store`): in one SQLite file (`sqlite/`, the default, one gateway)
//! or in a PostgreSQL database that several gateways share (`postgres/`).

pub mod effect;
mod front;
pub mod job_ids;
pub mod local;
pub mod model;
pub mod postgres;
pub mod queue;
pub mod sqlite;
pub mod types;

use crate::error::ApiError;

pub use front::Store;
// The SQLite backend's table modules, by the paths the rest of the code
// has always used (their types and sealing helpers are shared).
pub use sqlite::{
    DB_FILE, Sqlite, accounts, clusters, db_path, dr_tasks, jobs, keys, nodes, open_rw, servers,
    steps, views, with_tx,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgres: {0}")]
    Postgres(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("commit failed: {0}")]
    Commit(String),
    #[error("the store is closed")]
    Closed,
    /// A freshly drawn id was taken; nothing was stored.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error(transparent)]
    Seal(#[from] crate::sealing::SealError),
}

/// Converted at the API edge.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        // Details go to the log, not to the client.
        tracing::error!(error = %e, "store error");
        match e {
            StoreError::Closed => ApiError::Busy("the gateway is shutting down".into()),
            StoreError::Seal(_) => ApiError::Internal(
                "a stored secret could not be opened with this gateway's master key".into(),
            ),
            _ => ApiError::Internal("the request could not be stored; nothing was created".into()),
        }
    }
}

/// `synchronous=NORMAL` survives a process crash; `FULL` also survives power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    #[default]
    Normal,
    Full,
}
