//! Rows the request path reads on every request (access keys, clusters),
//! read from SQLite once and then kept in memory until a change is announced.
//!
//! Two kinds of change end an entry:
//! - one committed by this gateway's writer: an update hook marks the batch
//!   and, once it commits, a local counter moves (see [`Announced::touched`]);
//! - one committed by another process (`qcgate keys revoke`, a script): that
//!   process appends a byte to an announcement file after its commit, then
//!   waits [`ANNOUNCE_WAIT`] before returning. Lookups compare the file's
//!   length (an `fstat`, taken at most once per [`LOOK_EVERY`] across all
//!   threads) with the one their entry was read under, so a change holds for
//!   every request received after the announcing command returns, while
//!   most requests make no system call (the `fstat` was ~4% of a read).
//!
//! An entry is tagged with the counters seen *before* its load: a change that
//! lands during the load moves them, and the entry never matches again. If
//! the file is deleted while the gateway runs, later announcements go to a
//! new file it cannot see: from then on every lookup reads SQLite. Absent rows
//! are never kept, so a caller cannot grow the map with made-up names.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::writer::CommitListener;
use crate::store::StoreError;

/// How long one look at an announcement file is trusted.
pub const LOOK_EVERY: Duration = Duration::from_millis(50);
/// How long an announcement waits: past it, every lookup has looked again.
pub const ANNOUNCE_WAIT: Duration = Duration::from_millis(2 * LOOK_EVERY.as_millis() as u64);

/// Most entries held at once; past it the map starts again from empty.
const MAX_ENTRIES: usize = 100_000;

/// The last look at the announcement file: when it started, and the length
/// seen (`None`: the file was deleted).
#[derive(Clone, Copy)]
struct Look {
    at: Instant,
    length: Option<u64>,
}

/// What an entry was read under: the file's length and the local counter.
type Epoch = (u64, u64);

pub struct Announced<V> {
    changes: File,
    look_every: Duration,
    last: RwLock<Look>,
    /// Batches of this process's writer that changed the table, committed.
    local: AtomicU64,
    /// The writer's open batch changed the table.
    dirty: AtomicBool,
    entries: RwLock<HashMap<String, (Epoch, Arc<V>)>>,
}

impl<V> Announced<V> {
    /// Watches `file` in `data_dir` (created if missing).
    pub fn open(data_dir: &Path, file: &str) -> Result<Self, StoreError> {
        Self::open_looking_every(data_dir, file, LOOK_EVERY)
    }

    fn open_looking_every(
        data_dir: &Path,
        file: &str,
        look_every: Duration,
    ) -> Result<Self, StoreError> {
        let changes = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(data_dir.join(file))?;
        let first = Look {
            at: Instant::now(),
            length: Self::look(&changes)?,
        };
        Ok(Announced {
            changes,
            look_every,
            last: RwLock::new(first),
            local: AtomicU64::new(0),
            dirty: AtomicBool::new(false),
            entries: RwLock::new(HashMap::new()),
        })
    }

    fn look(changes: &File) -> Result<Option<u64>, StoreError> {
        let watched = changes.metadata()?;
        Ok((watched.nlink() > 0).then_some(watched.len()))
    }

    /// The file's length as of at most `look_every` ago.
    fn length(&self) -> Result<Option<u64>, StoreError> {
        let now = Instant::now();
        let last = *self.last.read().unwrap_or_else(|p| p.into_inner());
        if now.saturating_duration_since(last.at) < self.look_every {
            return Ok(last.length);
        }
        // Stamped with the time before the look, so a look is never newer
        // than it claims; a racing older look never replaces a newer one.
        let seen = Look {
            at: now,
            length: Self::look(&self.changes)?,
        };
        let mut last = self.last.write().unwrap_or_else(|p| p.into_inner());
        if seen.at > last.at {
            *last = seen;
        }
        Ok(seen.length)
    }

    /// The entry `key`, from memory when nothing changed since it was read,
    /// else from `load` (and kept when it exists).
    pub fn get(
        &self,
        key: &str,
        load: impl FnOnce() -> Result<Option<V>, StoreError>,
    ) -> Result<Option<Arc<V>>, StoreError> {
        let local = self.local.load(Ordering::Acquire);
        let Some(length) = self.length()? else {
            return Ok(load()?.map(Arc::new));
        };
        let epoch = (length, local);
        if let Ok(entries) = self.entries.read()
            && let Some((seen, value)) = entries.get(key)
            && *seen == epoch
        {
            return Ok(Some(value.clone()));
        }
        let Some(value) = load()? else {
            return Ok(None);
        };
        let value = Arc::new(value);
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(key.to_string(), (epoch, value.clone()));
        }
        Ok(Some(value))
    }

    /// Called by the writer's update hook for each row of the table changed.
    pub fn touched(&self) {
        self.dirty.store(true, Ordering::Relaxed);
    }
}

/// The local counter moves once the batch has ended (even a rolled-back one,
/// which costs a reload at most). Registered before the job views, so a
/// client that sees a job's effect in `DescribeJobs` also sees the new row.
impl<V: Send + Sync> CommitListener for Announced<V> {
    fn op_started(&self) {}
    fn op_failed(&self) {}
    fn batch_done(&self, _committed: bool) {
        if self.dirty.swap(false, Ordering::Relaxed) {
            self.local.fetch_add(1, Ordering::Release);
        }
    }
}

/// Tells running gateways that rows behind `file` changed (call after the
/// commit); returns once every one of them has looked again.
pub fn announce(data_dir: &Path, file: &str) -> Result<(), StoreError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(data_dir.join(file))?
        .write_all(b".")?;
    std::thread::sleep(ANNOUNCE_WAIT);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "things.changed";

    fn open(dir: &Path) -> Announced<String> {
        Announced::open(dir, FILE).expect("open")
    }

    /// What `cache` answers for "a" when SQLite would answer `stored`.
    fn read(cache: &Announced<String>, stored: Option<&str>) -> Option<String> {
        cache
            .get("a", || Ok(stored.map(str::to_string)))
            .expect("get")
            .map(|v| v.to_string())
    }

    #[test]
    fn an_entry_is_read_again_only_after_a_change_is_announced() {
        let dir = tempfile::tempdir().expect("tmp");
        let cache = open(dir.path());
        let mut loads = 0;
        for _ in 0..3 {
            let got = cache
                .get("a", || {
                    loads += 1;
                    Ok(Some("one".to_string()))
                })
                .expect("get");
            assert_eq!(got.as_deref().map(String::as_str), Some("one"));
        }
        assert_eq!(loads, 1, "read once, then from memory");

        announce(dir.path(), FILE).expect("announce");
        assert!(
            read(&cache, None).is_none(),
            "a changed row is not served from memory"
        );
    }

    #[test]
    fn a_batch_of_the_writer_that_touched_the_table_ends_every_entry() {
        let dir = tempfile::tempdir().expect("tmp");
        let cache = open(dir.path());
        read(&cache, Some("one"));

        // A batch that did not touch the table changes nothing.
        cache.batch_done(true);
        assert_eq!(read(&cache, Some("two")).as_deref(), Some("one"));

        cache.touched();
        // Until the batch ends, readers may still see the old row.
        assert_eq!(read(&cache, Some("two")).as_deref(), Some("one"));
        cache.batch_done(true);
        assert_eq!(read(&cache, Some("two")).as_deref(), Some("two"));
    }

    #[test]
    fn a_change_during_a_load_is_not_hidden_by_it() {
        let dir = tempfile::tempdir().expect("tmp");
        let cache = open(dir.path());
        // The load read the old row; the writer's batch commits meanwhile.
        cache
            .get("a", || {
                cache.touched();
                cache.batch_done(true);
                Ok(Some("old".into()))
            })
            .expect("get");
        assert_eq!(read(&cache, Some("new")).as_deref(), Some("new"));
    }

    #[test]
    fn a_deleted_announcement_file_turns_the_cache_off() {
        let dir = tempfile::tempdir().expect("tmp");
        let cache = open(dir.path());
        assert!(read(&cache, Some("one")).is_some());
        std::fs::remove_file(dir.path().join(FILE)).expect("rm");
        // This announcement lands in a new file the cache does not watch.
        announce(dir.path(), FILE).expect("announce");
        assert!(
            read(&cache, None).is_none(),
            "read again, not served from memory"
        );
    }

    #[test]
    fn a_look_is_trusted_for_its_window_only() {
        let append = |dir: &Path| {
            // A bare append, without announce's wait.
            OpenOptions::new()
                .append(true)
                .open(dir.join(FILE))
                .and_then(|mut f| f.write_all(b"."))
                .expect("append");
        };
        let dir = tempfile::tempdir().expect("tmp");
        let trusting: Announced<String> =
            Announced::open_looking_every(dir.path(), FILE, Duration::from_secs(3600))
                .expect("open");
        let looking: Announced<String> =
            Announced::open_looking_every(dir.path(), FILE, Duration::ZERO).expect("open");
        for cache in [&trusting, &looking] {
            assert!(read(cache, Some("one")).is_some());
        }
        append(dir.path());
        assert!(
            read(&trusting, None).is_some(),
            "within its window, the last look stands"
        );
        assert!(
            read(&looking, None).is_none(),
            "past its window, the cache looks again"
        );
    }

    #[test]
    fn absent_rows_are_not_kept() {
        let dir = tempfile::tempdir().expect("tmp");
        let cache = open(dir.path());
        let mut loads = 0;
        for _ in 0..2 {
            let got = cache
                .get("nope", || {
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
