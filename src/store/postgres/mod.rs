//! Durable state in a PostgreSQL database that any number of gateways share
//! (`--store postgres://…`).
//!
//! The domain's interfaces (`Model`, parts of `Queue`) are synchronous, as
//! SQLite is; here each statement is a round trip, so the store owns a small
//! runtime for its connections and blocks on it: from a blocking thread of
//! that runtime for writes (`spawn_blocking`), and through `block_in_place`
//! for the few reads the request path makes. Caches live one second at
//! most and are dropped on `NOTIFY`, so a change made through one gateway
//! holds on every gateway almost at once.

mod cache;
mod conn;
mod describe;
pub mod keys;
mod listen;
mod model;
mod queue;
mod submit;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::runtime::{Handle, Runtime, RuntimeFlavor};
use tokio::sync::Notify;
use tokio_postgres::NoTls;

use super::StoreError;
use super::job_ids::{self, JobIds};
use crate::auth::KeyRecord;
use crate::sealing::MasterKey;
use crate::store::types::Cluster;
pub use conn::{Cached, Conn, Tx};
pub use model::PgModel;

/// Channels the gateways tell each other on.
pub(crate) const JOBS_CHANNEL: &str = "qcgate_jobs";
pub(crate) const MODEL_CHANNEL: &str = "qcgate_model";

/// The PostgreSQL store; clones share one pool.
#[derive(Clone)]
pub struct Pg {
    inner: Arc<Inner>,
}

struct Inner {
    rt: OwnRuntime,
    pool: Pool,
    ids: JobIds,
    master: Arc<MasterKey>,
    job_ready: Arc<Notify>,
    keys: cache::Cache<KeyRecord>,
    clusters: cache::Cache<Cluster>,
    teller: Arc<listen::Teller>,
    /// The connection that asks for the sampling lock, and whether it holds it.
    leader: tokio::sync::Mutex<Option<(tokio_postgres::Client, bool)>>,
    config: tokio_postgres::Config,
    /// Plain submissions, to the batching tasks.
    submits: submit::Queue,
}

/// A runtime that may be dropped from async code (the last clone of the
/// store can go anywhere).
struct OwnRuntime(Option<Runtime>);

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl OwnRuntime {
    fn handle(&self) -> &Handle {
        match &self.0 {
            Some(rt) => rt.handle(),
            None => unreachable!("taken only on drop"),
        }
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        // The server's own message: "db error" alone says nothing.
        match e.as_db_error() {
            Some(db) => StoreError::Postgres(format!("{} ({})", db.message(), db.code().code())),
            None => StoreError::Postgres(e.to_string()),
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::Postgres(e.to_string())
    }
}

/// Whether `text` names a PostgreSQL store rather than a SQLite file.
pub fn is_url(text: &str) -> bool {
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

impl Pg {
    /// Connects, creates or migrates the schema, and starts listening for
    /// the other gateways' changes.
    pub fn open(url: &str, master: Arc<MasterKey>) -> Result<Pg, StoreError> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Postgres(format!("the store URL: {e}")))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(64)
            .thread_name("qcgate-pg")
            .enable_all()
            .build()?;
        let manager = deadpool_postgres::Manager::from_config(
            config.clone(),
            NoTls,
            deadpool_postgres::ManagerConfig {
                recycling_method: deadpool_postgres::RecyclingMethod::Fast,
            },
        );
        let pool = {
            let _in = rt.enter();
            Pool::builder(manager)
                .max_size(32)
                .wait_timeout(Some(Duration::from_secs(30)))
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .build()
                .map_err(|e| StoreError::Postgres(e.to_string()))?
        };
        let (submits, submitted) = submit::channel();
        let mut pg = Pg {
            inner: Arc::new(Inner {
                rt: OwnRuntime(Some(rt)),
                pool,
                ids: JobIds::from_hex(&job_ids::JobIds::fresh_hex())
                    .ok_or_else(|| StoreError::Commit("job id key".into()))?,
                master,
                job_ready: Arc::new(Notify::new()),
                keys: cache::Cache::default(),
                clusters: cache::Cache::default(),
                teller: Arc::default(),
                leader: tokio::sync::Mutex::new(None),
                config: config.clone(),
                submits,
            }),
        };
        let ids = pg.migrate()?;
        Arc::get_mut(&mut pg.inner)
            .ok_or_else(|| StoreError::Commit("the store was shared while opening".into()))?
            .ids = ids;
        listen::spawn(pg.clone(), config);
        listen::spawn_teller(&pg);
        submit::spawn(&pg, submitted);
        Ok(pg)
    }

    /// The schema, once per database whatever the number of gateways
    /// starting (an advisory lock), and this database's job id key.
    fn migrate(&self) -> Result<JobIds, StoreError> {
        self.with_tx(|tx, pg| {
            pg.wait(tx.batch_execute("SELECT pg_advisory_xact_lock(7177001)"))?;
            pg.wait(tx.batch_execute(include_str!("schema.sql")))?;
            pg.wait(tx.execute(
                "INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                &[&job_ids::KEY_NAME, &JobIds::fresh_hex()],
            ))?;
            let text: String = pg
                .wait(tx.query_one(
                    "SELECT value FROM meta WHERE name = $1",
                    &[&job_ids::KEY_NAME],
                ))?
                .get(0);
            JobIds::from_hex(&text)
                .ok_or_else(|| StoreError::Commit("the job id key is damaged".into()))
        })
    }

    pub fn master(&self) -> &Arc<MasterKey> {
        &self.inner.master
    }

    pub(crate) fn ids(&self) -> &JobIds {
        &self.inner.ids
    }

    /// The id of the job `seq` (ids are not stored; see job_ids.rs).
    pub(crate) fn job_id(&self, seq: i64) -> Result<String, StoreError> {
        self.inner
            .ids
            .encode(seq)
            .ok_or_else(|| StoreError::Commit(format!("no job id for seq {seq}")))
    }

    /// The seq of the job an id names, if it is one in form.
    pub fn job_seq(&self, id: &str) -> Option<i64> {
        self.inner.ids.decode(id)
    }

    pub(crate) fn job_ready(&self) -> &Notify {
        &self.inner.job_ready
    }

    /// Runs `f` to its end on the store's runtime, from any thread: a
    /// blocking one, an async worker (`block_in_place`), or none.
    pub(crate) fn wait<F>(&self, f: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        let h = self.inner.rt.handle();
        match Handle::try_current() {
            Ok(cur) if cur.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| h.block_on(f))
            }
            // A single-threaded runtime cannot lend its thread: another one waits.
            Ok(_) => std::thread::scope(|s| match s.spawn(|| h.block_on(f)).join() {
                Ok(out) => out,
                Err(panic) => std::panic::resume_unwind(panic),
            }),
            Err(_) => h.block_on(f),
        }
    }

    /// Runs `f` in one transaction, committed when it returns `Ok`.
    pub(crate) fn with_tx<R>(
        &self,
        f: impl FnOnce(&Tx<'_, '_>, &Pg) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let mut client = self.wait(self.inner.pool.get())?;
        let tx = self.wait(client.transaction())?;
        let out = f(&Cached(&tx), self)?;
        self.wait(tx.commit())?;
        Ok(out)
    }

    /// Runs `f` on the store's runtime, where its connections live, and
    /// awaits it from any runtime: no thread blocks on the round trips.
    pub(crate) async fn on_runtime<R: Send + 'static>(
        &self,
        f: impl Future<Output = Result<R, StoreError>> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.inner
            .rt
            .handle()
            .spawn(f)
            .await
            .map_err(|e| StoreError::Commit(format!("a store task ended: {e}")))?
    }

    /// A pooled connection, for code already on the store's runtime.
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        Ok(self.inner.pool.get().await?)
    }

    /// Runs `f` on a pooled connection, outside any transaction.
    pub(crate) fn with_client<R>(
        &self,
        f: impl FnOnce(&Cached<'_, deadpool_postgres::Client>, &Pg) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let client = self.wait(self.inner.pool.get())?;
        f(&Cached(&client), self)
    }

    /// `f` on a blocking thread of the store's runtime, awaited from anywhere.
    pub(crate) async fn blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Pg) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let pg = self.clone();
        self.inner
            .rt
            .handle()
            .spawn_blocking(move || f(&pg))
            .await
            .map_err(|e| StoreError::Commit(format!("a store task ended: {e}")))?
    }

    /// Reads the model on a pooled connection, taken at the first statement
    /// (a service's checks mostly need none): under READ COMMITTED a
    /// transaction would give its statements no common snapshot anyway.
    pub fn read<R>(
        &self,
        f: impl FnOnce(&dyn super::model::Model) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        f(&PgModel::new(self, &conn::Lazy::new(self)))
    }

    /// Changes the model in one transaction and tells the other gateways.
    pub async fn change<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnMut(&dyn super::model::Model) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        self.blocking(move |pg| pg.change_now(f)).await
    }

    /// [`Pg::change`] on this thread (one that may block).
    pub fn change_now<R>(
        &self,
        f: impl FnOnce(&dyn super::model::Model) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let out = self.with_tx(|tx, pg| {
            let out = f(&PgModel::new(pg, tx))?;
            pg.wait(tx.batch_execute(&format!("NOTIFY {MODEL_CHANNEL}")))?;
            Ok(out)
        })?;
        self.model_changed();
        Ok(out)
    }

    /// Whether this gateway holds the sampling lock: a session advisory
    /// lock on a connection of its own, so that it passes to another
    /// gateway when this one (or its connection) dies.
    pub async fn leads_sampling(&self) -> bool {
        let inner = self.inner.clone();
        let held = self.inner.rt.handle().spawn(async move {
            let mut leader = inner.leader.lock().await;
            if leader.as_ref().is_some_and(|(c, _)| c.is_closed()) {
                *leader = None;
            }
            if leader.is_none() {
                let Ok((client, conn)) = inner.config.connect(NoTls).await else {
                    return false;
                };
                tokio::spawn(conn);
                *leader = Some((client, false));
            }
            let Some((client, held)) = leader.as_mut() else {
                return false;
            };
            if !*held {
                *held = client
                    .query_one("SELECT pg_try_advisory_lock(7177003)", &[])
                    .await
                    .map(|r| r.get::<_, bool>(0))
                    .unwrap_or(false);
            }
            *held
        });
        held.await.unwrap_or(false)
    }

    /// After a commit: wakes this gateway's workers and drops its caches at
    /// once, and tells the other gateways soon after.
    pub(crate) fn committed(&self, jobs: bool, model: bool) {
        if jobs {
            self.inner.job_ready.notify_one();
        }
        if model {
            self.model_changed();
        }
        let what =
            if jobs { listen::TELL_JOBS } else { 0 } | if model { listen::TELL_MODEL } else { 0 };
        self.inner.teller.tell(what);
    }

    /// Drops what this gateway keeps of the model.
    pub(crate) fn model_changed(&self) {
        self.inner.clusters.clear();
        self.inner.keys.clear();
    }

    /// A cluster visible to `owner` (kept a second at most).
    pub fn cluster(&self, owner: &str, id: &str) -> Result<Option<Arc<Cluster>>, StoreError> {
        let found = self
            .inner
            .clusters
            .get(id, || self.read(|m| m.cluster(id)))?;
        Ok(found.filter(|c| c.owner == owner))
    }

    /// An active access key, unsealed (kept a second at most).
    pub fn access_key(&self, id: &str) -> Result<Option<Arc<KeyRecord>>, StoreError> {
        self.inner
            .keys
            .get(id, || keys::lookup(self, &self.inner.master, id))
    }
}
