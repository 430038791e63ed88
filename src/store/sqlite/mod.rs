//! Durable state in one SQLite file (WAL), for one gateway.
//!
//! Writes go through a single writer thread that commits concurrent requests
//! together (group commit); reads use a small pool of read-only connections and
//! never wait for the writer. The table modules here implement the store's
//! interfaces (`model.rs`, `queue.rs`).

pub mod accounts;
pub mod announced;
mod checkpointer;
pub mod clusters;
pub mod dr_tasks;
mod filter;
mod job_rows;
pub mod jobs;
pub mod keys;
mod model;
pub mod next_seq;
pub mod nodes;
mod packed;
mod queue;
mod read_pool;
pub mod replays;
mod schema;
mod seq_ring;
pub mod servers;
pub mod steps;
mod tx;
pub mod views;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::Notify;

use crate::auth::KeyRecord;
use crate::sealing::MasterKey;
use crate::store::{Durability, StoreError, job_ids};

use announced::Announced;
pub use queue::{apply, rescue};
pub use read_pool::ReadPool;
pub use schema::{DB_FILE, db_path, open_rw, with_tx};
pub use tx::Tx;
use writer::CommitListener;
pub use writer::Writer;

/// The SQLite store (the embedded default). Its parts stay inside `store/`.
#[derive(Clone)]
pub struct Sqlite {
    pub(in crate::store) writer: Writer,
    /// Opens and seals secrets at rest.
    pub master: Arc<MasterKey>,
    pub(in crate::store) readers: Arc<ReadPool>,
    /// Wakes an idle worker when a job is committed.
    pub(in crate::store) job_ready: Arc<Notify>,
    /// Access keys, unsealed, for the request path.
    pub(in crate::store) keys: Arc<Announced<KeyRecord>>,
    /// Clusters as the request path checks them (see [`Sqlite::cluster`]).
    pub(in crate::store) clusters: Arc<Announced<clusters::Cluster>>,
    /// Signed requests that already stored their jobs.
    pub(in crate::store) replays: Arc<replays::Replays>,
    /// Recent jobs as `DescribeJobs` shows them.
    pub(in crate::store) views: Arc<views::JobViews>,
    /// The next job's seq, for the writer's inserts.
    pub(in crate::store) next_seq: Arc<next_seq::NextSeq>,
}

impl Sqlite {
    /// `replay_window_secs`: the longest a signed request stays valid;
    /// `views_bytes`: the job views' budget.
    pub fn open(
        data_dir: &Path,
        durability: Durability,
        master: Arc<MasterKey>,
        replay_window_secs: i64,
        views_bytes: usize,
    ) -> Result<(Sqlite, std::thread::JoinHandle<()>), StoreError> {
        let path = db_path(data_dir);
        let mut conn = open_rw(&path)?;
        let job_ids = job_ids::JobIds::load_or_create(&conn)?;
        let (synchronous, checkpoints, linger) = match durability {
            Durability::Normal => ("NORMAL", checkpointer::Thresholds::DEFAULT, writer::LINGER),
            Durability::Full => ("FULL", checkpointer::Thresholds::FULL, Duration::ZERO),
        };
        conn.pragma_update(None, "synchronous", synchronous)?;
        // Every insert now lands at the right edge of its b-trees, so the
        // writer's working set is small: 4 MiB wrote as fast as 16 MiB in
        // `qcgate bench` and kept 12 MiB less resident.
        conn.pragma_update(None, "cache_size", -4096)?;
        let commits = Arc::new(AtomicU64::new(0));
        let readers = Arc::new(ReadPool::new(
            path.clone(),
            8,
            job_ids.clone(),
            Some(commits.clone()),
        ));
        let let_go = {
            let readers = readers.clone();
            move |all| readers.let_go(all)
        };
        checkpointer::attach(&mut conn, &path, checkpoints, commits, let_go)?;
        let keys = Arc::new(Announced::open(data_dir, keys::CHANGES_FILE)?);
        let clusters = Arc::new(Announced::open(data_dir, clusters::CHANGES_FILE)?);
        let replays = Arc::new(replays::Replays::load(&conn, replay_window_secs)?);
        let views = Arc::new(views::JobViews::new(job_ids.clone(), views_bytes));
        let next_seq = Arc::new(next_seq::NextSeq::new(job_ids.clone()));
        watch_rows(&mut conn, views.clone(), clusters.clone())?;
        // The clusters' counter moves before the views show a job's effect.
        let listeners: Vec<Arc<dyn CommitListener>> =
            vec![clusters.clone(), replays.clone(), views.clone()];
        let (writer, handle) = Writer::spawn(conn, listeners, linger);
        let store = Sqlite {
            writer,
            master,
            readers,
            job_ready: Arc::new(Notify::new()),
            keys,
            clusters,
            replays,
            views,
            next_seq,
        };
        Ok((store, handle))
    }

    /// A cluster visible to `owner`, from memory unless it changed since it
    /// was last read (the write path checks one on every request).
    pub fn cluster(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<Option<Arc<clusters::Cluster>>, StoreError> {
        let found = self
            .clusters
            .get(id, || self.readers.with(|c| clusters::get(c, id)))?;
        Ok(found.filter(|c| c.owner == owner))
    }
}

impl Sqlite {
    /// An access key, unsealed, from memory unless keys changed since it
    /// was last read (every signed request looks one up).
    pub fn access_key(&self, id: &str) -> Result<Option<Arc<KeyRecord>>, StoreError> {
        self.keys.get(id, || {
            self.readers.with(|c| keys::lookup(c, &self.master, id))
        })
    }

    /// A new access key for `owner`; its secret is shown once, by the caller.
    pub async fn create_key(&self, owner: &str) -> Result<keys::NewKey, StoreError> {
        let (master, owner) = (self.master.clone(), owner.to_string());
        self.writer
            .write(move |c| keys::create(c, &master, &owner))
            .await
    }

    /// Reads the model (a snapshot; never waits for writes).
    pub fn read<R>(
        &self,
        f: impl FnOnce(&dyn crate::store::model::Model) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.readers.with(|c| f(c))
    }

    /// Changes the model in one transaction, committed with others'.
    pub async fn change<R, F>(&self, mut f: F) -> Result<R, StoreError>
    where
        F: FnMut(&dyn crate::store::model::Model) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        self.writer.write(move |c| f(&**c)).await
    }
}

/// One update hook (SQLite keeps one per connection) for the state kept in
/// memory beside the writer's tables.
pub(crate) fn watch_rows(
    conn: &mut Connection,
    views: Arc<views::JobViews>,
    clusters: Arc<Announced<clusters::Cluster>>,
) -> rusqlite::Result<()> {
    conn.update_hook(Some(
        move |action, _db: &str, table: &str, row| match table {
            "jobs" => views.touched(action, row),
            "clusters" => clusters.touched(),
            _ => {}
        },
    ))
}
