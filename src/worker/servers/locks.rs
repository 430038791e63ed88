//! One operation at a time on the servers of a DR tree: a job on a standby
//! changes its primary's servers too, and jobs of different clusters run on
//! different lanes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

#[derive(Default)]
pub struct ClusterLocks {
    map: Mutex<HashMap<String, Arc<AsyncMutex<()>>>>,
}

impl ClusterLocks {
    /// Takes every cluster's lock, in one global order (no deadlock).
    pub async fn lock_all(&self, ids: &[String]) -> Vec<OwnedMutexGuard<()>> {
        let mut sorted: Vec<&String> = ids.iter().collect();
        sorted.sort();
        sorted.dedup();
        let locks: Vec<Arc<AsyncMutex<()>>> = {
            let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            sorted
                .iter()
                .map(|id| map.entry((*id).clone()).or_default().clone())
                .collect()
        };
        let mut held = Vec::with_capacity(locks.len());
        for l in locks {
            held.push(l.lock_owned().await);
        }
        held
    }
}
