//! A few read-only connections, reused. In WAL mode readers see the last
//! committed state and never block on the writer.
//!
//! Looking a job up by id may reuse a read snapshot across calls while the
//! writer commits nothing ([`ReadPool::with_snapshot`]). Every SQLite read
//! transaction takes and drops a lock on the WAL index (two `fcntl`s) and
//! checks the log and page 1 again: ~10% of a `DescribeJobs` that misses the
//! job views, in a profile of `qcgate bench`'s read phase.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use crate::store::StoreError;
use crate::store::job_ids::JobIds;

/// How long the writer must have committed nothing before snapshots are kept.
/// Under writes a kept snapshot would go stale within a millisecond anyway,
/// and one left on an idle connection would stop the log from starting over.
const QUIET: Duration = Duration::from_millis(50);
/// The oldest a snapshot gets. Snapshots begun before the log was fully
/// copied back hold it; renewed, they let the idle truncation through.
const MAX_AGE: Duration = Duration::from_millis(500);

pub struct ReadPool {
    path: PathBuf,
    max_idle: usize,
    idle: Mutex<Vec<Reader>>,
    job_ids: JobIds,
    /// Whether some jobs kept the random ids they had before ids came from
    /// seq. Read when the first connection opens: only the migration of
    /// such a database adds them, and it runs before any pool exists.
    legacy_ids: OnceLock<bool>,
    /// The writer's commits (moved by its WAL hook before it answers for
    /// them); without it no snapshot is kept.
    commits: Option<Arc<AtomicU64>>,
    /// The commit count last seen, and since when.
    last_seen: Mutex<(u64, Instant)>,
}

struct Reader {
    conn: Connection,
    snapshot: Option<Snapshot>,
}

/// An open read transaction: what it shows is the database as of `commits`.
struct Snapshot {
    commits: u64,
    began: Instant,
}

impl Snapshot {
    /// Whether it still shows the last commit, and is young enough to keep.
    fn current(&self, commits: u64, now: Instant) -> bool {
        self.commits == commits && now.duration_since(self.began) < MAX_AGE
    }
}

impl Reader {
    /// Ends the snapshot, if any; `false` if the connection is unusable.
    fn end_snapshot(&mut self) -> bool {
        if self.snapshot.take().is_none() {
            return true;
        }
        if let Err(e) = self
            .conn
            .prepare_cached("COMMIT")
            .and_then(|mut s| s.execute([]))
        {
            tracing::debug!(error = %e, "ending a read snapshot");
        }
        self.conn.is_autocommit()
    }

    fn begin_snapshot(&mut self, commits: u64, now: Instant) {
        match self
            .conn
            .prepare_cached("BEGIN")
            .and_then(|mut s| s.execute([]))
        {
            Ok(_) => {
                self.snapshot = Some(Snapshot {
                    commits,
                    began: now,
                })
            }
            Err(e) => tracing::debug!(error = %e, "beginning a read snapshot"),
        }
    }
}

impl ReadPool {
    /// `commits`: the writer's commit count, from [`super::checkpointer::attach`].
    pub fn new(
        path: PathBuf,
        max_idle: usize,
        job_ids: JobIds,
        commits: Option<Arc<AtomicU64>>,
    ) -> Self {
        ReadPool {
            path,
            max_idle,
            idle: Mutex::new(Vec::new()),
            job_ids,
            legacy_ids: OnceLock::new(),
            commits,
            last_seen: Mutex::new((0, Instant::now())),
        }
    }

    /// The seq a job id names, when that alone finds the job (no job has a
    /// legacy id): a lookup by seq then needs neither `legacy_job_ids` nor
    /// `job_seq()`. Known once a connection has opened.
    pub fn seq_of(&self, id: &str) -> Option<i64> {
        match self.legacy_ids.get() {
            Some(false) => self.job_ids.decode(id),
            _ => None,
        }
    }

    /// Runs a short query on the last committed state. Queries here are index
    /// lookups of a few microseconds, so they run on the calling thread rather
    /// than hopping to a blocking pool.
    pub fn with<R>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let mut reader = self.take()?;
        let result = if reader.end_snapshot() {
            f(&reader.conn)
        } else {
            Err(StoreError::Commit("a read snapshot did not end".into()))
        };
        self.put(reader);
        result
    }

    /// [`with`], for reads of what only the writer changes (jobs): the
    /// snapshot is kept open for the next call unless the writer commits,
    /// so that call skips starting a read transaction.
    ///
    /// [`with`]: ReadPool::with
    pub fn with_snapshot<R>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let Some(commits) = &self.commits else {
            return self.with(f);
        };
        // Read before the snapshot begins, so a snapshot is never labelled
        // newer than it is.
        let count = commits.load(Ordering::Acquire);
        let now = Instant::now();
        let quiet = {
            let mut seen = self.last_seen.lock().unwrap_or_else(|p| p.into_inner());
            if seen.0 != count {
                *seen = (count, now);
            }
            now.duration_since(seen.1) >= QUIET
        };
        let mut reader = self.take()?;
        if !reader
            .snapshot
            .as_ref()
            .is_some_and(|s| s.current(count, now))
        {
            if reader.snapshot.is_some() {
                // The others are as old: end theirs too, rather than leave
                // them holding the log until their next use.
                self.end_idle_snapshots(|s| !s.current(count, now));
            }
            if !reader.end_snapshot() {
                return Err(StoreError::Commit("a read snapshot did not end".into()));
            }
            if quiet {
                reader.begin_snapshot(count, now);
            }
        }
        let result = f(&reader.conn);
        self.put(reader);
        result
    }

    /// Ends the snapshots idle connections hold that are out of date (every
    /// one with `all`): the checkpointer calls this before copying the log
    /// back, which an old snapshot would hold up.
    pub fn let_go(&self, all: bool) {
        let Some(commits) = &self.commits else {
            return;
        };
        let count = commits.load(Ordering::Acquire);
        let now = Instant::now();
        self.end_idle_snapshots(|s| all || !s.current(count, now));
    }

    fn end_idle_snapshots(&self, stale: impl Fn(&Snapshot) -> bool) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.retain_mut(|r| !r.snapshot.as_ref().is_some_and(&stale) || r.end_snapshot());
        }
    }

    fn take(&self) -> Result<Reader, StoreError> {
        match self.idle.lock().ok().and_then(|mut v| v.pop()) {
            Some(r) => Ok(r),
            None => Ok(Reader {
                conn: self.open()?,
                snapshot: None,
            }),
        }
    }

    fn put(&self, reader: Reader) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < self.max_idle
        {
            idle.push(reader);
        }
    }

    fn open(&self) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "query_only", "ON")?;
        // No mmap: the file grows under write load, and each growth made every
        // reader remap it (munmap + TLB shootdowns), costing more than pread.
        conn.set_prepared_statement_cache_capacity(64);
        self.job_ids.register(&conn)?;
        if self.legacy_ids.get().is_none() {
            let any: bool =
                conn.query_row("SELECT EXISTS (SELECT 1 FROM legacy_job_ids)", [], |r| {
                    r.get(0)
                })?;
            let _ = self.legacy_ids.set(any);
        }
        Ok(conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{db_path, open_rw};

    struct Setup {
        _dir: tempfile::TempDir,
        writer: Connection,
        commits: Arc<AtomicU64>,
        pool: ReadPool,
    }

    fn setup() -> Setup {
        let dir = tempfile::tempdir().expect("tmp");
        let path = db_path(dir.path());
        let writer = open_rw(&path).expect("open");
        writer
            .execute_batch("CREATE TABLE t (x INTEGER)")
            .expect("table");
        let ids = JobIds::load_or_create(&writer).expect("ids");
        let commits = Arc::new(AtomicU64::new(0));
        let pool = ReadPool::new(path, 4, ids, Some(commits.clone()));
        Setup {
            _dir: dir,
            writer,
            commits,
            pool,
        }
    }

    fn rows(s: &Setup, snapshot: bool) -> i64 {
        let count = |c: &Connection| Ok(c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?);
        if snapshot {
            s.pool.with_snapshot(count)
        } else {
            s.pool.with(count)
        }
        .expect("count")
    }

    /// A commit of the writer: the row, then the count its WAL hook moves.
    fn commit(s: &Setup, counted: bool) {
        s.writer
            .execute("INSERT INTO t VALUES (1)", [])
            .expect("row");
        if counted {
            s.commits.fetch_add(1, Ordering::Release);
        }
    }

    #[test]
    fn a_quiet_spell_keeps_the_snapshot_and_a_counted_commit_renews_it() {
        let s = setup();
        std::thread::sleep(QUIET + Duration::from_millis(10));
        assert_eq!(rows(&s, true), 0);
        // Not counted: the kept snapshot answers, as it would for the
        // writer's commits until the count moves.
        commit(&s, false);
        assert_eq!(rows(&s, true), 0, "the snapshot was not kept");
        // `with` always reads the last committed state.
        assert_eq!(rows(&s, false), 1);
        commit(&s, true);
        assert_eq!(rows(&s, true), 2, "a counted commit was not seen");
    }

    #[test]
    fn under_commits_no_snapshot_outlives_its_call() {
        let s = setup();
        assert_eq!(rows(&s, true), 0);
        commit(&s, false);
        assert_eq!(rows(&s, true), 1, "a snapshot was kept while not quiet");
    }

    #[test]
    fn letting_go_ends_idle_snapshots_so_the_log_can_be_truncated() {
        let s = setup();
        commit(&s, true);
        // The pool notices the commit here; it is quiet from then on.
        assert_eq!(rows(&s, true), 1);
        std::thread::sleep(QUIET + Duration::from_millis(10));
        assert_eq!(rows(&s, true), 1);
        s.writer.busy_timeout(Duration::ZERO).expect("no wait");
        let truncate = |s: &Setup| {
            s.writer
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    r.get::<_, i64>(0)
                })
                .expect("checkpoint")
        };
        assert_eq!(truncate(&s), 1, "an idle snapshot did not hold the log");
        s.pool.let_go(true);
        assert_eq!(truncate(&s), 0, "the log was still held");
    }
}
