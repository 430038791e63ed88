//! Access keys as the request path sees them: read and unsealed once, then
//! kept in memory, so authenticating a request touches no SQLite page.
//!
//! Keys are revoked by another process (`qcgate keys revoke`), which appends
//! a byte to `keys.changed` after its commit, then waits [`ANNOUNCE_WAIT`]
//! before returning. Lookups compare that file's length (an `fstat`, taken
//! at most once per [`LOOK_EVERY`] across all threads) with the length their
//! cached entry was read under. A look is never older than `LOOK_EVERY`, so a
//! revocation holds for every request received after the command returns,
//! and most requests make no system call (the `fstat` was ~4% of a read). If
//! the file is deleted while the gateway runs, later announcements go to a
//! new file it cannot see: from then on every lookup reads SQLite. Unknown
//! ids are never cached: a caller cannot grow the map.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::StoreError;
use crate::auth::KeyRecord;

pub const CHANGES_FILE: &str = "keys.changed";

/// How long one look at `keys.changed` is trusted.
pub const LOOK_EVERY: Duration = Duration::from_millis(50);
/// How long an announcement waits: past it, every lookup has looked again.
pub const ANNOUNCE_WAIT: Duration = Duration::from_millis(2 * LOOK_EVERY.as_millis() as u64);

/// Most keys held at once; past it the map starts again from empty.
const MAX_KEYS: usize = 100_000;

type Entries = HashMap<String, (u64, Arc<KeyRecord>)>;

/// The last look at `keys.changed`: when it started, and the length seen
/// (`None`: the file was deleted).
#[derive(Clone, Copy)]
struct Look {
    at: Instant,
    epoch: Option<u64>,
}

pub struct KeyCache {
    changes: File,
    look_every: Duration,
    last: RwLock<Look>,
    entries: RwLock<Entries>,
}

impl KeyCache {
    pub fn open(data_dir: &Path) -> Result<KeyCache, StoreError> {
        Self::open_looking_every(data_dir, LOOK_EVERY)
    }

    fn open_looking_every(data_dir: &Path, look_every: Duration) -> Result<KeyCache, StoreError> {
        let changes = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(data_dir.join(CHANGES_FILE))?;
        let first = Look {
            at: Instant::now(),
            epoch: Self::look(&changes)?,
        };
        Ok(KeyCache {
            changes,
            look_every,
            last: RwLock::new(first),
            entries: RwLock::new(HashMap::new()),
        })
    }

    fn look(changes: &File) -> Result<Option<u64>, StoreError> {
        let watched = changes.metadata()?;
        Ok((watched.nlink() > 0).then_some(watched.len()))
    }

    /// The length of `keys.changed` as of at most `look_every` ago.
    fn epoch(&self) -> Result<Option<u64>, StoreError> {
        let now = Instant::now();
        let last = *self.last.read().unwrap_or_else(|p| p.into_inner());
        if now.saturating_duration_since(last.at) < self.look_every {
            return Ok(last.epoch);
        }
        // Stamped with the time before the look, so a look is never newer
        // than it claims; a racing older look never replaces a newer one.
        let seen = Look {
            at: now,
            epoch: Self::look(&self.changes)?,
        };
        let mut last = self.last.write().unwrap_or_else(|p| p.into_inner());
        if seen.at > last.at {
            *last = seen;
        }
        Ok(seen.epoch)
    }

    /// The key `id`, from memory when nothing changed since it was read,
    /// else from `load` (and kept when it exists).
    pub fn get(
        &self,
        id: &str,
        load: impl FnOnce() -> Result<Option<KeyRecord>, StoreError>,
    ) -> Result<Option<Arc<KeyRecord>>, StoreError> {
        let Some(epoch) = self.epoch()? else {
            return Ok(load()?.map(Arc::new));
        };
        if let Ok(entries) = self.entries.read()
            && let Some((seen, record)) = entries.get(id)
            && *seen == epoch
        {
            return Ok(Some(record.clone()));
        }
        let Some(record) = load()? else {
            return Ok(None);
        };
        let record = Arc::new(record);
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= MAX_KEYS {
                entries.clear();
            }
            // Tagged with the length seen *before* the load: if a revocation
            // landed meanwhile, the entry never matches again.
            entries.insert(id.to_string(), (epoch, record.clone()));
        }
        Ok(Some(record))
    }
}

/// Tells running gateways that stored keys changed (after the commit), and
/// returns once every one of them has looked again.
pub fn announce_change(data_dir: &Path) -> Result<(), StoreError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(data_dir.join(CHANGES_FILE))?
        .write_all(b".")?;
    std::thread::sleep(ANNOUNCE_WAIT);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn record(owner: &str) -> Option<KeyRecord> {
        Some(KeyRecord {
            secret: Secret::new("s3cret"),
            owner: owner.into(),
        })
    }

    #[test]
    fn a_cached_key_is_read_again_only_after_a_change_is_announced() {
        let dir = tempfile::tempdir().expect("tmp");
        let cache = KeyCache::open(dir.path()).expect("open");
        let mut loads = 0;
        for _ in 0..3 {
            let got = cache
                .get("AK", || {
                    loads += 1;
                    Ok(record("usr-A"))
                })
                .expect("get");
            assert_eq!(got.expect("found").owner, "usr-A");
        }
        assert_eq!(loads, 1, "read once, then from memory");

        announce_change(dir.path()).expect("announce");
        let got = cache.get("AK", || Ok(None)).expect("get");
        assert!(got.is_none(), "a revoked key is not served from memory");
    }

    #[test]
    fn a_deleted_changes_file_turns_the_cache_off() {
        let dir = tempfile::tempdir().expect("tmp");
        let cache = KeyCache::open(dir.path()).expect("open");
        let got = cache.get("AK", || Ok(record("usr-A"))).expect("get");
        assert!(got.is_some());
        std::fs::remove_file(dir.path().join(CHANGES_FILE)).expect("rm");
        // This announcement lands in a new file the cache does not watch.
        announce_change(dir.path()).expect("announce");
        let got = cache.get("AK", || Ok(None)).expect("get");
        assert!(got.is_none(), "read again, not served from memory");
    }

    #[test]
    fn a_look_is_trusted_for_its_window_only() {
        let append = |dir: &Path| {
            // A bare append, without announce_change's wait.
            OpenOptions::new()
                .append(true)
                .open(dir.join(CHANGES_FILE))
                .and_then(|mut f| f.write_all(b"."))
                .expect("append");
        };
        let dir = tempfile::tempdir().expect("tmp");
        let trusting =
            KeyCache::open_looking_every(dir.path(), Duration::from_secs(3600)).expect("open");
        let looking = KeyCache::open_looking_every(dir.path(), Duration::ZERO).expect("open");
        for cache in [&trusting, &looking] {
            assert!(
                cache
                    .get("AK", || Ok(record("usr-A")))
                    .expect("get")
                    .is_some()
            );
        }
        append(dir.path());
        let got = trusting.get("AK", || Ok(None)).expect("get");
        assert!(got.is_some(), "within its window, the last look stands");
        let got = looking.get("AK", || Ok(None)).expect("get");
        assert!(got.is_none(), "past its window, the cache looks again");
    }

    #[test]
    fn unknown_ids_are_not_kept() {
        let dir = tempfile::tempdir().expect("tmp");
        let cache = KeyCache::open(dir.path()).expect("open");
        let mut loads = 0;
        for _ in 0..2 {
            let got = cache
                .get("NOPE", || {
                    loads += 1;
                    Ok(None)
                })
                .expect("get");
            assert!(got.is_none());
        }
        assert_eq!(loads, 2);
        assert_eq!(cache.entries.read().expect("lock").len(), 0);
    }
}
