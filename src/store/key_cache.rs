//! Access keys as the request path sees them: read and unsealed once, then
//! kept in memory, so authenticating a request touches no SQLite page.
//!
//! Keys are revoked by another process (`qcgate keys revoke`), which appends
//! a byte to `keys.changed` after its commit. Every lookup compares that
//! file's length (one `fstat`) with the length its cached entry was read
//! under, so a revocation holds for every request received after the
//! command returns. If the file is deleted while the gateway runs, later
//! announcements go to a new file it cannot see: from then on every lookup
//! reads SQLite. Unknown ids are never cached: a caller cannot grow the map.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, RwLock};

use super::StoreError;
use crate::auth::KeyRecord;

pub const CHANGES_FILE: &str = "keys.changed";

/// Most keys held at once; past it the map starts again from empty.
const MAX_KEYS: usize = 100_000;

type Entries = HashMap<String, (u64, Arc<KeyRecord>)>;

pub struct KeyCache {
    changes: File,
    entries: RwLock<Entries>,
}

impl KeyCache {
    pub fn open(data_dir: &Path) -> Result<KeyCache, StoreError> {
        let changes = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(data_dir.join(CHANGES_FILE))?;
        Ok(KeyCache {
            changes,
            entries: RwLock::new(HashMap::new()),
        })
    }

    /// The key `id`, from memory when nothing changed since it was read,
    /// else from `load` (and kept when it exists).
    pub fn get(
        &self,
        id: &str,
        load: impl FnOnce() -> Result<Option<KeyRecord>, StoreError>,
    ) -> Result<Option<Arc<KeyRecord>>, StoreError> {
        let watched = self.changes.metadata()?;
        if watched.nlink() == 0 {
            return Ok(load()?.map(Arc::new));
        }
        let epoch = watched.len();
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

/// Tells running gateways that stored keys changed (after the commit).
pub fn announce_change(data_dir: &Path) -> Result<(), StoreError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(data_dir.join(CHANGES_FILE))?
        .write_all(b".")?;
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
