//! What the request path reads on every request (access keys, clusters),
//! kept for a second at most: a change made through another gateway is
//! seen when its `NOTIFY` arrives, or a second later if that was lost.
//! Absent rows are never kept, so made-up names cannot grow the map.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::store::StoreError;

const KEEP: Duration = Duration::from_secs(1);
const MAX_ENTRIES: usize = 100_000;

pub struct Cache<V> {
    map: Mutex<HashMap<String, (Instant, Arc<V>)>>,
    /// Moves on every clear: a load that a clear overtook is not kept.
    generation: AtomicU64,
}

impl<V> Default for Cache<V> {
    fn default() -> Self {
        Cache {
            map: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }
    }
}

impl<V> Cache<V> {
    pub fn get(
        &self,
        id: &str,
        load: impl FnOnce() -> Result<Option<V>, StoreError>,
    ) -> Result<Option<Arc<V>>, StoreError> {
        if let Ok(map) = self.map.lock()
            && let Some((at, v)) = map.get(id)
            && at.elapsed() < KEEP
        {
            return Ok(Some(v.clone()));
        }
        // Timed from before the load: a change during it ends the entry sooner.
        let at = Instant::now();
        let generation = self.generation.load(Ordering::Acquire);
        let Some(v) = load()?.map(Arc::new) else {
            return Ok(None);
        };
        if let Ok(mut map) = self.map.lock()
            && self.generation.load(Ordering::Acquire) == generation
        {
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
            map.insert(id.to_string(), (at, v.clone()));
        }
        Ok(Some(v))
    }

    pub fn clear(&self) {
        if let Ok(mut map) = self.map.lock() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            map.clear();
        }
    }
}
