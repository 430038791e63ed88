//! WAL checkpoints off the writer's path.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its
//! threshold, so the writer, and every request waiting on its batch, stalls
//! for the checkpoint's two fsyncs (the writer thread spent ~17% of a write
//! run in disk sleep). Here the writer's WAL hook only wakes a thread with
//! its own connection, which copies the log back with a PASSIVE checkpoint
//! while the writer goes on appending.
//!
//! A passive checkpoint cannot reset a log that is still being appended to,
//! so under a steady load the WAL would grow: past `hard` pages the writer
//! checkpoints itself, which then has little left to copy and lets the next
//! transaction start the log from the beginning again.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::wal::CheckpointMode;

use super::StoreError;

/// WAL pages that wake the checkpointer (~1 MiB of 4 KiB pages).
pub const SOFT_PAGES: i32 = 256;
/// WAL pages past which the writer checkpoints itself (~16 MiB).
pub const HARD_PAGES: i32 = 4096;

#[derive(Default)]
struct State {
    wanted: bool,
    stopped: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
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
pub fn attach(
    writer: &mut Connection,
    path: &Path,
    soft: i32,
    hard: i32,
) -> Result<std::thread::JoinHandle<()>, StoreError> {
    let conn = Connection::open(path)?;
    // Reading opens the connection's view of the log; until then a checkpoint
    // reports "not in WAL mode" and does nothing.
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
    // A checkpoint that finds the writer or a reader in the way copies what
    // it can and returns; it never needs to wait.
    conn.busy_timeout(Duration::ZERO)?;
    let shared = Arc::new(Shared::default());
    let signal = Signal(shared.clone());
    writer.wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, pages| {
        if pages >= hard {
            if let Err(e) = wal.checkpoint_v2(CheckpointMode::PASSIVE) {
                tracing::debug!(error = %e, pages, "writer checkpoint");
            }
        } else if pages >= soft {
            signal.0.set(|s| s.wanted = true);
        }
        // An error here would fail a COMMIT that has already happened.
        Ok(())
    }))?;
    std::thread::Builder::new()
        .name("qcgate-checkpoint".into())
        .spawn(move || run(conn, &shared))
        .map_err(StoreError::Io)
}

fn run(conn: Connection, shared: &Shared) {
    loop {
        {
            let mut s = shared.state.lock().unwrap_or_else(|p| p.into_inner());
            while !s.wanted && !s.stopped {
                s = shared.wake.wait(s).unwrap_or_else(|p| p.into_inner());
            }
            if s.stopped {
                return;
            }
            s.wanted = false;
        }
        if let Err(e) = conn.wal_checkpoint_v2(Some("main"), CheckpointMode::PASSIVE) {
            tracing::debug!(error = %e, "checkpoint");
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
    fn the_thread_copies_the_log_into_the_database_file() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("t.db");
        let mut writer = open(&path);
        // The writer never checkpoints itself (hard is out of reach), and the
        // hook replaced SQLite's automatic checkpoint: only the thread can
        // copy rows into the database file.
        let handle = attach(&mut writer, &path, 16, i32::MAX).expect("attach");
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
        let handle = attach(&mut writer, &path, i32::MAX, 64).expect("attach");
        insert_pages(&writer, 1000);
        // Over a thousand pages were logged, but the log kept starting over.
        let wal = bytes(&path.with_extension("db-wal"));
        assert!(wal < 200 * 4096, "the log grew to {wal} bytes");
        assert!(bytes(&path) >= 900 * 3500, "the rows were not copied back");
        drop(writer);
        handle.join().expect("the thread stops with the writer");
    }
}
