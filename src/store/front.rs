//! The store as the rest of the gateway holds it: one of two backends
//! behind the same use cases. SQLite (a file in the data dir, one gateway)
//! is the default; PostgreSQL lets several gateways share one database.

use std::sync::Arc;

use tokio::sync::Notify;

use super::model::Model;
use super::postgres::Pg;
use super::queue::{
    Claimed, Creator, Described, Enqueued, JobFilter, NewJob, Once, Outcome, Queue, Rescuer,
};
use super::{Sqlite, StoreError, clusters, keys};
use crate::BoxFuture;
use crate::auth::KeyRecord;
use crate::sealing::MasterKey;

#[derive(Clone)]
pub struct Store {
    /// Opens and seals secrets at rest.
    pub master: Arc<MasterKey>,
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Sqlite(Sqlite),
    Postgres(Pg),
}

/// Calls the same method on whichever backend this is.
macro_rules! each {
    ($self:expr, $b:ident => $e:expr) => {
        match &$self.backend {
            Backend::Sqlite($b) => $e,
            Backend::Postgres($b) => $e,
        }
    };
}

impl From<Sqlite> for Store {
    fn from(s: Sqlite) -> Store {
        Store {
            master: s.master.clone(),
            backend: Backend::Sqlite(s),
        }
    }
}

impl From<Pg> for Store {
    fn from(p: Pg) -> Store {
        Store {
            master: p.master().clone(),
            backend: Backend::Postgres(p),
        }
    }
}

impl Store {
    /// Whether other gateways may share this store's data.
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// A cluster visible to `owner` (the write path checks one per request).
    pub fn cluster(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<Option<Arc<clusters::Cluster>>, StoreError> {
        each!(self, b => b.cluster(owner, id))
    }

    /// An active access key, unsealed (every signed request looks one up).
    pub fn access_key(&self, id: &str) -> Result<Option<Arc<KeyRecord>>, StoreError> {
        each!(self, b => b.access_key(id))
    }

    /// A new access key for `owner`; its secret is shown once, by the caller.
    pub async fn create_key(&self, owner: &str) -> Result<keys::NewKey, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.create_key(owner).await,
            Backend::Postgres(p) => {
                let owner = owner.to_string();
                p.blocking(move |p| super::postgres::keys::create(p, &owner))
                    .await
            }
        }
    }

    /// The first access key, unless the store has one: gateways starting
    /// together on a shared store make one between them.
    pub async fn create_first_key(&self, owner: &str) -> Result<Option<keys::NewKey>, StoreError> {
        match &self.backend {
            // One gateway per data dir (its lock file): it found no key.
            Backend::Sqlite(s) => s.create_key(owner).await.map(Some),
            Backend::Postgres(p) => {
                let owner = owner.to_string();
                p.blocking(move |p| super::postgres::keys::create_first(p, &owner))
                    .await
            }
        }
    }

    /// Whether this gateway samples DR tasks: always on SQLite (one
    /// gateway); on PostgreSQL, the one holding the sampling lock.
    pub async fn leads_sampling(&self) -> bool {
        match &self.backend {
            Backend::Sqlite(_) => true,
            Backend::Postgres(p) => p.leads_sampling().await,
        }
    }

    /// Reads the model.
    pub fn read<R>(
        &self,
        f: impl FnOnce(&dyn Model) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        each!(self, b => b.read(f))
    }

    /// Changes the model in one transaction.
    pub async fn change<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnMut(&dyn Model) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        each!(self, b => b.change(f).await)
    }
}

impl Queue for Store {
    fn submit(
        &self,
        items: Vec<(NewJob, Once)>,
        max_open: u64,
        create: Option<Creator>,
    ) -> BoxFuture<'_, Result<Vec<Enqueued>, StoreError>> {
        each!(self, b => b.submit(items, max_open, create))
    }
    fn replayed(&self, once: &Once) -> Result<Option<String>, StoreError> {
        each!(self, b => b.replayed(once))
    }
    fn open_jobs(&self) -> Result<Vec<(String, i64)>, StoreError> {
        each!(self, b => b.open_jobs())
    }
    fn describe<'a>(
        &'a self,
        filter: &'a JobFilter,
    ) -> BoxFuture<'a, Result<Described, StoreError>> {
        each!(self, b => b.describe(filter))
    }
    fn claim(
        &self,
        worker: &str,
        lease_secs: i64,
    ) -> BoxFuture<'_, Result<Option<Claimed>, StoreError>> {
        each!(self, b => b.claim(worker, lease_secs))
    }
    fn heartbeat(
        &self,
        seq: i64,
        worker: &str,
        lease_secs: i64,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        each!(self, b => b.heartbeat(seq, worker, lease_secs))
    }
    fn record(&self, outcome: Outcome) -> BoxFuture<'_, Result<Option<&'static str>, StoreError>> {
        each!(self, b => b.record(outcome))
    }
    fn rescue(
        &self,
        expired_before: i64,
        decide: Rescuer,
    ) -> BoxFuture<'_, Result<usize, StoreError>> {
        each!(self, b => b.rescue(expired_before, decide))
    }
    fn prune(&self, before: i64, batch: usize) -> BoxFuture<'_, Result<usize, StoreError>> {
        each!(self, b => b.prune(before, batch))
    }
    fn job_ready(&self) -> &Notify {
        each!(self, b => Queue::job_ready(b))
    }
}
