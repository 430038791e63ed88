//! Deletes finished jobs past their retention, in small batches so requests
//! queued at the writer are never held up behind one long delete.

use tokio::sync::watch;

use super::WorkerConfig;
use crate::clock::now_unix;
use crate::store::queue::Queue;
use crate::store::{Store, StoreError};

const BATCH: usize = 500;

pub(super) async fn run(store: Store, cfg: WorkerConfig, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(cfg.prune_every) => {}
            _ = stop.changed() => return,
        }
        let before = now_unix() - cfg.retention_secs;
        loop {
            match store.prune(before, BATCH).await {
                Ok(n) if n == BATCH && !*stop.borrow() => tokio::task::yield_now().await,
                Ok(n) => {
                    if n > 0 {
                        tracing::debug!(deleted = n, "pruned finished jobs");
                    }
                    break;
                }
                Err(StoreError::Closed) => return,
                Err(e) => {
                    tracing::error!(error = %e, "prune failed");
                    break;
                }
            }
        }
    }
}
