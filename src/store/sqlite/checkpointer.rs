//! WAL checkpoints off the writer's path.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its
//! threshold, so the writer, and every request waiting on its batch, stalls
//! for the checkpoint's two fsyncs (the writer thread spent ~17% of a write
//! run in disk sleep). Here the writer's WAL hook only wakes a thread with
//! its own connection, which copies the log back with a PASSIVE checkpoint
//! while the writer goes on appending.
//!
//! Past `soft` pages the thread is woken again only once `step` more pages
//! were logged: woken after every commit, it ran ~300 checkpoints a second,
//! each with two fsyncs and a copy of the same hot pages (page 1, the right
//! edges of the b-trees), and the writer's p99 suffered for it.
//!
//! A passive checkpoint cannot reset a log that is still being appended to,
//! so under a steady load the WAL would grow: past `hard` pages the writer
//! checkpoints itself, which then has little left to copy and lets the next
//! transaction start the log from the beginning again. That stalls every
//! request of the batch, so `hard` is far away (64 MiB of log).
//!
//! That checkpoint must sync the database file before the log can start
//! over, and a passive one syncs it only when it copied the whole log, which
//! it never does while the writer appends: the writer's sync then flushed
//! everything the thread had copied since, ~60 ms with every request of the
//! batch waiting. So the thread syncs the file after each checkpoint that
//! copied pages, and the writer's sync finds little left (~1 ms).
//!
//! The log file keeps the size it grew to. Once no commit came for `idle`,
//! the thread copies the rest back and truncates the file, so a gateway that
//! took a burst does not keep 64 MiB of spent log on disk.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::wal::CheckpointMode;

use crate::store::StoreError;

/// When the writer's WAL hook wakes the checkpointer, and when the writer
/// must checkpoint itself; in pages of log (4 KiB each).
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    /// The log size that first wakes the thread.
    pub soft: i32,
    /// Pages logged since the last wake before the next one.
    pub step: i32,
    /// The log size past which the writer checkpoints itself.
    pub hard: i32,
    /// How long without a commit before the log file is truncated.
    pub idle: Duration,
}

impl Thresholds {
    /// Wake at ~4 MiB of log, then once per ~4 MiB more; the writer steps
    /// in at ~64 MiB; truncate after 2 s without a commit. A checkpoint
    /// copies each page once, however often it was logged since the last:
    /// waking per 4 MiB rather than per 1 MiB cut the thread's CPU per job
    /// from ~3.8 to ~2.7 µs in `qcgate bench`, and leaves the writer's own
    /// checkpoint at most 4 MiB of log to copy.
    pub const DEFAULT: Thresholds = Thresholds {
        soft: 1024,
        step: 1024,
        hard: 16384,
        idle: Duration::from_secs(2),
    };

    /// With `durability = "full"` every commit waits on the disk, and the
    /// database file's sync after a 4 MiB checkpoint held those commits up:
    /// write p99 12.5–12.8 ms against 8.7–9.4 with 1 MiB steps.
    pub const FULL: Thresholds = Thresholds {
        soft: 256,
        step: 256,
        ..Thresholds::DEFAULT
    };
}

#[derive(Default)]
struct State {
    wanted: bool,
    stopped: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// Commits seen by the WAL hook (a counter, not under the lock: the
    /// hook runs after every commit). Readers look at it too.
    commits: Arc<AtomicU64>,
}

impl Shared {
    fn set(&self, f: impl FnOnce(&mut State)) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut s);
        self.wake.notify_one();
    }
}

/// Held by the writer's WAL hook: when the writer's connection closes, the
/// hook is dropped and the checkpointer stops.
struct Signal(Arc<Shared>);

impl Drop for Signal {
    fn drop(&mut self) {
        self.0.set(|s| s.stopped = true);
    }
}

/// Installs the WAL hook on the writer's connection (replacing SQLite's
/// automatic checkpoint) and starts the checkpointer thread on `path`.
/// `commits` counts the writer's commits: the hook moves it right after each
/// one, before the writer answers for it. `let_go(all)` runs before each
/// checkpoint, so that readers end the snapshots that would hold it up (all
/// of them before the log is truncated).
pub fn attach(
    writer: &mut Connection,
    path: &Path,
    limits: Thresholds,
    commits: Arc<AtomicU64>,
    let_go: impl Fn(bool) + Send + 'static,
) -> Result<std::thread::JoinHandle<()>, StoreError> {
    let conn = Connection::open(path)?;
    // Reading opens the connection's view of the log; until then a checkpoint
    // reports "not in WAL mode" and does nothing.
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
    // A checkpoint that finds the writer or a reader in the way copies what
    // it can and returns; it never needs to wait.
    conn.busy_timeout(Duration::ZERO)?;
    let db = std::fs::File::open(path)?;
    let shared = Arc::new(Shared {
        commits,
        ..Shared::default()
    });
    let signal = Signal(shared.clone());
    let mut pacer = Pacer::new(limits);
    writer.wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, pages: i32| {
        signal.0.commits.fetch_add(1, Ordering::Release);
        match pacer.after_commit(pages) {
            Due::Writer => {
                if let Err(e) = wal.checkpoint_v2(CheckpointMode::PASSIVE) {
                    tracing::debug!(error = %e, pages, "writer checkpoint");
                }
            }
            Due::Thread => signal.0.set(|s| s.wanted = true),
            Due::Nothing => {}
        }
        // An error here would fail a COMMIT that has already happened.
        Ok(())
    }))?;
    std::thread::Builder::new()
        .name("qcgate-checkpoint".into())
        .spawn(move || run(conn, db, &shared, limits.idle, let_go))
        .map_err(StoreError::Io)
}

/// Who checkpoints after a commit.
#[derive(Debug, PartialEq, Eq)]
enum Due {
    Nothing,
    Thread,
    Writer,
}

struct Pacer {
    limits: Thresholds,
    /// The log size at which the thread is woken next.
    next: i32,
}

impl Pacer {
    fn new(limits: Thresholds) -> Pacer {
        Pacer {
            limits,
            next: limits.soft,
        }
    }

    /// `pages`: the log's size after a commit.
    fn after_commit(&mut self, pages: i32) -> Due {
        let Thresholds {
            soft, step, hard, ..
        } = self.limits;
        if pages >= hard {
            return Due::Writer;
        }
        if pages < self.next.saturating_sub(step) {
            // The log started over since the last wake.
            self.next = soft;
        }
        if pages < self.next {
            return Due::Nothing;
        }
        self.next = pages.saturating_add(step);
        Due::Thread
    }
}

fn run(
    conn: Connection,
    db: std::fs::File,
    shared: &Shared,
    idle: Duration,
    let_go: impl Fn(bool),
) {
    let mut seen = shared.commits.load(Ordering::Relaxed);
    // The log may hold frames of an earlier run.
    let mut spent_log = true;
    let mut last_copied = 0;
    loop {
        let wanted = {
            let mut s = shared.state.lock().unwrap_or_else(|p| p.into_inner());
            let mut timed_out = false;
            while !s.wanted && !s.stopped && !timed_out {
                let (guard, wait) = shared
                    .wake
                    .wait_timeout(s, idle)
                    .unwrap_or_else(|p| p.into_inner());
                s = guard;
                timed_out = wait.timed_out();
            }
            if s.stopped {
                return;
            }
            std::mem::take(&mut s.wanted)
        };
        let commits = shared.commits.load(Ordering::Relaxed);
        let quiet = commits == seen;
        seen = commits;
        spent_log |= !quiet;
        let (mode, truncate) = if wanted {
            (CheckpointMode::PASSIVE, false)
        } else if quiet && spent_log {
            // Fails at once if the writer or a reader is in the way (no busy
            // timeout); tried again after the next quiet spell.
            (CheckpointMode::TRUNCATE, true)
        } else {
            continue;
        };
        let_go(truncate);
        match conn.wal_checkpoint_v2(Some("main"), mode) {
            Ok(_) if truncate => spent_log = false,
            Ok((_, copied)) => {
                // Counted since the log last started over: unchanged means
                // this checkpoint wrote nothing to the database file.
                if copied > 0
                    && copied != last_copied
                    && let Err(e) = db.sync_data()
                {
                    tracing::debug!(error = %e, "syncing the database file");
                }
                last_copied = copied;
            }
            Err(e) => tracing::debug!(error = %e, truncate, "checkpoint"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(path: &Path) -> Connection {
        let conn = Connection::open(path).expect("open");
        conn.execute_batch(
            "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS t (x BLOB)",
        )
        .expect("schema");
        conn
    }

    /// Commits `n` rows of most of a page each.
    fn insert_pages(conn: &Connection, n: usize) {
        for _ in 0..n {
            conn.execute("INSERT INTO t VALUES (zeroblob(3500))", [])
                .expect("insert");
        }
    }

    fn bytes(path: &Path) -> u64 {
        std::fs::metadata(path).map_or(0, |m| m.len())
    }

    #[test]
    fn past_soft_the_thread_is_woken_once_per_step_and_again_after_a_restart() {
        let mut pacer = Pacer::new(Thresholds {
            soft: 100,
            step: 50,
            hard: 1000,
            idle: Duration::from_secs(3600),
        });
        let due: Vec<(i32, Due)> = [10, 99, 100, 120, 149, 150, 151, 220, 999, 1000, 12, 99, 101]
            .into_iter()
            .map(|pages| (pages, pacer.after_commit(pages)))
            .collect();
        use Due::*;
        assert_eq!(
            due,
            [
                (10, Nothing),
                (99, Nothing),
                (100, Thread),
                (120, Nothing),
                (149, Nothing),
                (150, Thread),
                (151, Nothing),
                (220, Thread),
                (999, Thread),
                (1000, Writer),
                (12, Nothing),
                (99, Nothing),
                (101, Thread),
            ]
        );
    }

    #[test]
    fn the_thread_copies_the_log_into_the_database_file() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("t.db");
        let mut writer = open(&path);
        // The writer never checkpoints itself (hard is out of reach), and the
        // hook replaced SQLite's automatic checkpoint: only the thread can
        // copy rows into the database file.
        let limits = Thresholds {
            soft: 16,
            step: 16,
            hard: i32::MAX,
            idle: Duration::from_secs(3600),
        };
        let handle =
            attach(&mut writer, &path, limits, Default::default(), |_| {}).expect("attach");
        insert_pages(&writer, 40);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while bytes(&path) < 40 * 3500 {
            assert!(
                std::time::Instant::now() < deadline,
                "nothing copied: the database file has {} bytes",
                bytes(&path)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(writer);
        handle.join().expect("the thread stops with the writer");
    }

    #[test]
    fn past_the_hard_limit_the_writer_checkpoints_and_the_log_restarts() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("t.db");
        let mut writer = open(&path);
        // The thread is never woken (soft is out of reach).
        let limits = Thresholds {
            soft: i32::MAX,
            step: 0,
            hard: 64,
            idle: Duration::from_secs(3600),
        };
        let handle =
            attach(&mut writer, &path, limits, Default::default(), |_| {}).expect("attach");
        insert_pages(&writer, 1000);
        // Over a thousand pages were logged, but the log kept starting over.
        let wal = bytes(&path.with_extension("db-wal"));
        assert!(wal < 200 * 4096, "the log grew to {wal} bytes");
        assert!(bytes(&path) >= 900 * 3500, "the rows were not copied back");
        drop(writer);
        handle.join().expect("the thread stops with the writer");
    }

    #[test]
    fn a_quiet_log_is_copied_back_and_truncated() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("t.db");
        let wal_path = path.with_extension("db-wal");
        let mut writer = open(&path);
        // Only the quiet spell can trigger a checkpoint here.
        let limits = Thresholds {
            soft: i32::MAX,
            step: 0,
            hard: i32::MAX,
            idle: Duration::from_millis(100),
        };
        let handle =
            attach(&mut writer, &path, limits, Default::default(), |_| {}).expect("attach");
        insert_pages(&writer, 40);
        assert!(bytes(&wal_path) >= 40 * 3500, "the rows were not logged");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while bytes(&wal_path) > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the log still has {} bytes",
                bytes(&wal_path)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(bytes(&path) >= 40 * 3500, "the rows were not copied back");
        let rows: i64 = writer
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .expect("count");
        assert_eq!(rows, 40);
        // The writer goes on from an empty log.
        insert_pages(&writer, 1);
        drop(writer);
        handle.join().expect("the thread stops with the writer");
    }
}
