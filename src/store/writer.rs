//! Group commit: one thread owns the write connection. Requests hand it
//! closures; it runs everything that is queued in one transaction (each closure
//! in its own savepoint, so one failure does not undo the others), commits, and
//! only then answers each caller.

use std::sync::Arc;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::StoreError;

/// Most operations committed by one transaction.
const MAX_BATCH: usize = 512;
/// Queued operations before callers wait (backpressure).
const QUEUE: usize = 8192;

/// Answers a caller once the commit's outcome is known.
type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

trait WriteOp: Send {
    /// Runs inside the open transaction; returns whether it succeeded and how
    /// to answer once the commit's outcome is known.
    fn apply(self: Box<Self>, conn: &Connection) -> (bool, Completion);
    fn abort(self: Box<Self>, err: StoreError);
}

struct Op<F, R> {
    f: F,
    reply: oneshot::Sender<Result<R, StoreError>>,
}

impl<F, R> WriteOp for Op<F, R>
where
    F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    R: Send + 'static,
{
    fn apply(self: Box<Self>, conn: &Connection) -> (bool, Completion) {
        let Op { f, reply } = *self;
        let result = f(conn);
        let ok = result.is_ok();
        (
            ok,
            Box::new(move |commit| {
                let _ = reply.send(commit.and(result));
            }),
        )
    }

    fn abort(self: Box<Self>, err: StoreError) {
        let _ = self.reply.send(Err(err));
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
    pub fn spawn(
        conn: Connection,
        listeners: Vec<Arc<dyn CommitListener>>,
    ) -> (Writer, std::thread::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let handle = std::thread::Builder::new()
            .name("qcgate-writer".into())
            .spawn(move || run(conn, rx, &listeners))
            .unwrap_or_else(|e| panic!("cannot start the writer thread: {e}"));
        (Writer { tx }, handle)
    }

    /// Runs `f` in the next group transaction; resolves after the commit.
    pub async fn write<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Box::new(Op { f, reply }))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Blocking variant for threads outside the runtime.
    pub fn write_blocking<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        self.tx
            .blocking_send(Box::new(Op { f, reply }))
            .map_err(|_| StoreError::Closed)?;
        rx.blocking_recv().map_err(|_| StoreError::Closed)?
    }
}

fn run(conn: Connection, mut rx: mpsc::Receiver<Box<dyn WriteOp>>, listeners: &Listeners) {
    let mut batch: Vec<Box<dyn WriteOp>> = Vec::with_capacity(MAX_BATCH);
    // Returns None once every sender is gone and the queue is drained.
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        commit_batch(&conn, &mut batch, listeners);
    }
    tracing::debug!("writer stopped");
}

/// Runs a fixed statement from the statement cache (no re-parse per operation).
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn commit_batch(conn: &Connection, batch: &mut Vec<Box<dyn WriteOp>>, listeners: &Listeners) {
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        let msg = e.to_string();
        for op in batch.drain(..) {
            op.abort(StoreError::Commit(msg.clone()));
        }
        return;
    }
    let mut done = Vec::with_capacity(batch.len());
    for op in batch.drain(..) {
        let sp = exec(conn, "SAVEPOINT op");
        listeners.iter().for_each(|l| l.op_started());
        let (ok, complete) = op.apply(conn);
        if !ok {
            listeners.iter().for_each(|l| l.op_failed());
        }
        if sp.is_ok() {
            let end = if ok {
                exec(conn, "RELEASE op")
            } else {
                exec(conn, "ROLLBACK TO op").and_then(|()| exec(conn, "RELEASE op"))
            };
            if let Err(e) = end {
                tracing::error!(error = %e, "savepoint");
            }
        }
        done.push(complete);
    }
    listeners.iter().for_each(|l| l.before_commit(conn));
    let commit = exec(conn, "COMMIT").map_err(|e| e.to_string());
    if commit.is_err() {
        let _ = exec(conn, "ROLLBACK");
    }
    listeners.iter().for_each(|l| l.batch_done(commit.is_ok()));
    for complete in done {
        complete(commit.clone().map_err(StoreError::Commit));
    }
}
