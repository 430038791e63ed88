//! Group commit: one thread owns the write connection. Requests hand it
//! closures; it runs everything that is queued in one transaction, commits,
//! and only then answers each caller.
//!
//! One failing closure must not undo the others. Savepoints around each would
//! ensure that, but cost three statements and a copy of every page a closure
//! touches (~10% of the writer's time in a profile), for failures that are
//! rare. So a batch first runs without them; if a closure fails, the batch is
//! rolled back and run again with a savepoint around each closure, which is
//! why closures are `FnMut`: one may run twice, and only its last run counts.

use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::tx::Tx;
use crate::store::StoreError;

/// Most operations committed by one transaction.
const MAX_BATCH: usize = 512;
/// Queued operations before callers wait (backpressure).
const QUEUE: usize = 8192;
/// How long the writer waits for more operations before committing a small
/// batch while callers are concurrent, when commits do not wait on the disk.
/// A commit costs ~60 µs beyond its jobs (the same ~7 pages logged again:
/// page 1, the counters, the indexes' right edges); under 64 connections
/// batches were ~10 jobs without a wait. The wait was 250 µs below 32 jobs
/// while a job cost the writer ~27 µs; at ~9 µs, the machine sat idle
/// through it (21–23% of its CPU in `qcgate bench`'s write phase against
/// 17–18% with 100 µs below 16), and 100 µs below 16 reached a higher
/// ratio to the ceiling in each of seven alternating pairs.
/// A commit that syncs (`durability = "full"`) already gathers ~25 while it
/// waits, and the wait only added to the workers' CPU per job there.
pub const LINGER: Duration = Duration::from_micros(100);
/// A batch this large already spreads its commit thin: no wait.
const LINGER_BELOW: usize = 16;

trait WriteOp: Send {
    /// Runs inside the open transaction, keeping the outcome for [`finish`];
    /// returns whether it succeeded. May be called again after a rollback.
    ///
    /// [`finish`]: WriteOp::finish
    fn apply(&mut self, tx: &Tx<'_>) -> bool;
    /// Answers the caller with the last outcome, once the commit's is known.
    fn finish(self: Box<Self>, commit: Result<(), StoreError>);
}

struct Op<F, R> {
    f: F,
    outcome: Option<Result<R, StoreError>>,
    /// Hands `f` back with the outcome: what it owns was allocated by the
    /// caller's thread and is freed faster there (dropping closures was ~3%
    /// of the writer's samples, nearly all of it cross-thread frees).
    reply: oneshot::Sender<(Result<R, StoreError>, F)>,
}

impl<F, R> WriteOp for Op<F, R>
where
    F: FnMut(&Tx<'_>) -> Result<R, StoreError> + Send + 'static,
    R: Send + 'static,
{
    fn apply(&mut self, tx: &Tx<'_>) -> bool {
        let outcome = (self.f)(tx);
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn finish(self: Box<Self>, commit: Result<(), StoreError>) {
        let Op { f, outcome, reply } = *self;
        let outcome = match (commit, outcome) {
            (Err(e), _) => Err(e),
            (Ok(()), Some(outcome)) => outcome,
            (Ok(()), None) => Err(StoreError::Commit("the operation never ran".into())),
        };
        let _ = reply.send((outcome, f));
    }
}

/// Told how each operation and each batch ended, for state kept beside the
/// database that must follow its transactions (the replay index, job views).
pub trait CommitListener: Send + Sync {
    fn op_started(&self);
    /// The operation failed and its savepoint was rolled back.
    fn op_failed(&self);
    /// Every operation has run; the batch is about to commit.
    fn before_commit(&self, _conn: &Connection) {}
    /// The batch committed (`true`) or was rolled back.
    fn batch_done(&self, committed: bool);
}

/// Listeners, told in order.
type Listeners = [Arc<dyn CommitListener>];

#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Box<dyn WriteOp>>,
}

impl Writer {
    /// `linger`: see [`LINGER`]; zero commits whatever is queued at once.
    pub fn spawn(
        conn: Connection,
        listeners: Vec<Arc<dyn CommitListener>>,
        linger: Duration,
    ) -> (Writer, std::thread::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let handle = std::thread::Builder::new()
            .name("qcgate-writer".into())
            .spawn(move || run(conn, rx, &listeners, linger))
            .unwrap_or_else(|e| panic!("cannot start the writer thread: {e}"));
        (Writer { tx }, handle)
    }

    /// Runs `f` in the next group transaction; resolves after the commit.
    /// `f` may run twice (see the module's note); only its last run counts.
    pub async fn write<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnMut(&Tx<'_>) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Box::new(Op {
                f,
                outcome: None,
                reply,
            }))
            .await
            .map_err(|_| StoreError::Closed)?;
        let (outcome, _f) = rx.await.map_err(|_| StoreError::Closed)?;
        outcome
    }

    /// Blocking variant for threads outside the runtime.
    pub fn write_blocking<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnMut(&Tx<'_>) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        self.tx
            .blocking_send(Box::new(Op {
                f,
                outcome: None,
                reply,
            }))
            .map_err(|_| StoreError::Closed)?;
        let (outcome, _f) = rx.blocking_recv().map_err(|_| StoreError::Closed)?;
        outcome
    }
}

fn run(
    conn: Connection,
    mut rx: mpsc::Receiver<Box<dyn WriteOp>>,
    listeners: &Listeners,
    linger: Duration,
) {
    let tx = Tx::new(&conn);
    let mut batch: Vec<Box<dyn WriteOp>> = Vec::with_capacity(MAX_BATCH);
    let mut last_batch = 0;
    // Returns None once every sender is gone and the queue is drained.
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        drain(&mut rx, &mut batch);
        // A lone caller (the last batch held one operation) is not kept
        // waiting: only concurrent ones, whose next operations are on their way.
        if !linger.is_zero() && last_batch > 1 && batch.len() < LINGER_BELOW {
            std::thread::sleep(linger);
            drain(&mut rx, &mut batch);
        }
        last_batch = batch.len();
        commit_batch(&tx, &mut batch, listeners);
    }
    tracing::debug!("writer stopped");
}

/// Moves what is queued into the batch, up to its limit.
fn drain(rx: &mut mpsc::Receiver<Box<dyn WriteOp>>, batch: &mut Vec<Box<dyn WriteOp>>) {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(op) => batch.push(op),
            Err(_) => break,
        }
    }
}

/// Runs a fixed statement, prepared once.
fn exec(tx: &Tx<'_>, sql: &'static str) -> rusqlite::Result<()> {
    tx.cached(sql)?.execute([]).map(|_| ())
}

fn commit_batch(tx: &Tx<'_>, batch: &mut Vec<Box<dyn WriteOp>>, listeners: &Listeners) {
    let mut ran = begin(tx).and_then(|()| {
        if run_plain(tx, batch, listeners) {
            return Ok(());
        }
        rollback(tx, listeners);
        begin(tx)?;
        run_in_savepoints(tx, batch, listeners);
        Ok(())
    });
    if ran.is_ok() {
        listeners.iter().for_each(|l| l.before_commit(tx));
        ran = exec(tx, "COMMIT").map_err(|e| e.to_string());
        if ran.is_err() {
            let _ = exec(tx, "ROLLBACK");
        }
        listeners.iter().for_each(|l| l.batch_done(ran.is_ok()));
    }
    for op in batch.drain(..) {
        op.finish(ran.clone().map_err(StoreError::Commit));
    }
}

fn begin(tx: &Tx<'_>) -> Result<(), String> {
    exec(tx, "BEGIN IMMEDIATE").map_err(|e| e.to_string())
}

fn rollback(tx: &Tx<'_>, listeners: &Listeners) {
    if let Err(e) = exec(tx, "ROLLBACK") {
        // A failed statement may already have ended the transaction.
        tracing::debug!(error = %e, "rollback");
    }
    listeners.iter().for_each(|l| l.batch_done(false));
}

/// Runs every operation; stops at the first that fails.
fn run_plain(tx: &Tx<'_>, batch: &mut [Box<dyn WriteOp>], listeners: &Listeners) -> bool {
    batch.iter_mut().all(|op| {
        listeners.iter().for_each(|l| l.op_started());
        op.apply(tx)
    })
}

/// Runs every operation in its own savepoint, rolling back those that fail.
fn run_in_savepoints(tx: &Tx<'_>, batch: &mut [Box<dyn WriteOp>], listeners: &Listeners) {
    for op in batch.iter_mut() {
        let sp = exec(tx, "SAVEPOINT op");
        listeners.iter().for_each(|l| l.op_started());
        let ok = op.apply(tx);
        if !ok {
            listeners.iter().for_each(|l| l.op_failed());
        }
        if sp.is_ok() {
            let end = if ok {
                exec(tx, "RELEASE op")
            } else {
                exec(tx, "ROLLBACK TO op").and_then(|()| exec(tx, "RELEASE op"))
            };
            if let Err(e) = end {
                tracing::error!(error = %e, "savepoint");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn count(conn: &Connection, x: &str) -> i64 {
        conn.query_row("SELECT COUNT(*) FROM t WHERE x = ?1", [x], |r| r.get(0))
            .expect("count")
    }

    /// Records the thread that drops it.
    struct DropsOn(Arc<std::sync::Mutex<Option<std::thread::ThreadId>>>);

    impl Drop for DropsOn {
        fn drop(&mut self) {
            *self.0.lock().expect("lock") = Some(std::thread::current().id());
        }
    }

    /// Counts committed batches.
    #[derive(Default)]
    struct Batches(AtomicUsize);

    impl CommitListener for Batches {
        fn op_started(&self) {}
        fn op_failed(&self) {}
        fn batch_done(&self, committed: bool) {
            if committed {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    #[test]
    fn concurrent_callers_share_commits_and_a_lone_one_is_not_kept_waiting() {
        let conn = Connection::open_in_memory().expect("open");
        conn.execute_batch("CREATE TABLE t (x TEXT)")
            .expect("schema");
        let batches = Arc::new(Batches::default());
        let (writer, _) = Writer::spawn(conn, vec![batches.clone()], LINGER);
        // Each caller takes a moment between operations, as a connection
        // does to answer its client and read the next request. The best of
        // three runs: a scheduling stall on a busy machine spreads one run's
        // operations out, while a writer that does not wait fails all three.
        let (callers, each) = (8, 50);
        let mut fewest = usize::MAX;
        for _ in 0..3 {
            let before = batches.0.load(Ordering::SeqCst);
            let threads: Vec<_> = (0..callers)
                .map(|_| {
                    let w = writer.clone();
                    std::thread::spawn(move || {
                        for _ in 0..each {
                            w.write_blocking(|c| Ok(c.execute("INSERT INTO t VALUES ('a')", [])?))
                                .expect("write");
                            std::thread::sleep(Duration::from_micros(200));
                        }
                    })
                })
                .collect();
            threads.into_iter().for_each(|t| t.join().expect("caller"));
            fewest = fewest.min(batches.0.load(Ordering::SeqCst) - before);
        }
        let commits = fewest;
        // ~52 commits here; without the wait, 136–173: operations arrive
        // one by one, mostly while the writer is idle.
        assert!(
            commits * 4 <= callers * each,
            "{commits} commits for {} operations",
            callers * each
        );

        // One caller at a time is never kept waiting: were each of these
        // held for the wait, they would take at least 40 × LINGER.
        let (before, started) = (batches.0.load(Ordering::SeqCst), std::time::Instant::now());
        for _ in 0..40 {
            writer
                .write_blocking(|c| Ok(c.execute("INSERT INTO t VALUES ('b')", [])?))
                .expect("write");
        }
        assert!(started.elapsed() < 40 * LINGER, "{:?}", started.elapsed());
        assert_eq!(batches.0.load(Ordering::SeqCst) - before, 40);
    }

    #[test]
    fn an_operation_is_dropped_by_its_caller_not_the_writer() {
        let conn = Connection::open_in_memory().expect("open");
        let (writer, _) = Writer::spawn(conn, Vec::new(), LINGER);
        let dropped_on = Arc::new(std::sync::Mutex::new(None));
        let guard = DropsOn(dropped_on.clone());
        let ran_on = writer
            .write_blocking(move |_| {
                let _keep = &guard;
                Ok(std::thread::current().id())
            })
            .expect("write");
        let me = std::thread::current().id();
        assert_ne!(ran_on, me, "the operation ran on the caller's thread");
        assert_eq!(*dropped_on.lock().expect("lock"), Some(me));
    }

    #[test]
    fn a_failing_operation_is_undone_alone_and_the_others_commit_once() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("w.db");
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x TEXT)")
            .expect("schema");
        let (writer, _) = Writer::spawn(conn, Vec::new(), LINGER);

        // Holds the writer while the next three queue up behind it, so they
        // share one batch.
        let w = writer.clone();
        let blocker = std::thread::spawn(move || {
            w.write_blocking(|_| {
                std::thread::sleep(Duration::from_millis(300));
                Ok(())
            })
        });
        std::thread::sleep(Duration::from_millis(50));
        let runs = Arc::new(AtomicUsize::new(0));
        let op = |x: &'static str, fail: bool| {
            let (w, runs) = (writer.clone(), runs.clone());
            std::thread::spawn(move || {
                w.write_blocking(move |c| {
                    let run = runs.fetch_add(1, Ordering::SeqCst);
                    c.execute("INSERT INTO t (x) VALUES (?1)", [x])?;
                    if fail {
                        return Err(StoreError::Closed);
                    }
                    Ok(run)
                })
            })
        };
        let a = op("a", false);
        std::thread::sleep(Duration::from_millis(20));
        let b = op("b", true);
        std::thread::sleep(Duration::from_millis(20));
        let c = op("c", false);
        blocker.join().expect("join").expect("blocker");
        let (a, b, c) = (
            a.join().expect("a"),
            b.join().expect("b"),
            c.join().expect("c"),
        );
        assert!(b.is_err(), "the failing operation reported success");
        // The batch ran without savepoints (a, b), then again with them (a, b, c).
        assert_eq!(runs.load(Ordering::SeqCst), 5);
        assert_eq!(a.expect("a committed"), 2, "a answered with its first run");
        assert_eq!(c.expect("c committed"), 4);

        let check = Connection::open(&path).expect("reader");
        assert_eq!(count(&check, "a"), 1, "a was committed twice or not at all");
        assert_eq!(count(&check, "b"), 0, "the failed operation left a row");
        assert_eq!(count(&check, "c"), 1);
    }
}
