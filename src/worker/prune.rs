//! Deletes finished jobs past their retention, in small batches so requests
//! queued at the writer are never held up behind one long delete.

use tokio::sync::watch;

use super::WorkerConfig;
use crate::clock::now_unix;
use crate::store::jobs;
use crate::store::{Store, StoreError};

const BATCH: usize = 500;
/// Expired rows of `replay_spill` deleted by one writer operation (~1 ms).
const SPILL_BATCH: usize = 4000;

pub(super) async fn run(store: Store, cfg: WorkerConfig, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(cfg.prune_every) => {}
            _ = stop.changed() => return,
        }
        let before = now_unix() - cfg.retention_secs;
        loop {
            let replays = store.replays.clone();
            match store
                .writer
                .write(move |c| jobs::prune(c, &replays, before, BATCH))
                .await
            {
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
        loop {
            let replays = store.replays.clone();
            match store
                .writer
                .write(move |c| replays.drop_expired_spill(c, SPILL_BATCH))
                .await
            {
                Ok(n) if n == SPILL_BATCH && !*stop.borrow() => tokio::task::yield_now().await,
                Ok(_) => break,
                Err(StoreError::Closed) => return,
                Err(e) => {
                    tracing::error!(error = %e, "dropping expired replay records failed");
                    break;
                }
            }
        }
    }
}
