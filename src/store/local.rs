//! The store as the local commands open it (`keys`, `clusters`, `servers`),
//! while gateways may be running on it: the SQLite file of a data dir
//! (changes announced through its files), or a shared PostgreSQL database
//! (changes told with `NOTIFY`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::Connection;

use super::keys::{self, KeyInfo, NewKey};
use super::model::Model;
use super::postgres::{self, Pg};
use super::{StoreError, clusters};
use crate::sealing::MasterKey;

/// Where a command finds the store.
#[derive(Debug, Clone)]
pub struct Location {
    pub data_dir: PathBuf,
    /// `postgres://…`, else the SQLite file in `data_dir`.
    pub store: Option<String>,
    /// The shared store's master key file (else `QCGATE_MASTER_KEY`).
    pub master_key_file: Option<PathBuf>,
}

pub enum Local {
    Sqlite {
        conn: Connection,
        data_dir: PathBuf,
        master: Arc<MasterKey>,
    },
    Postgres(Pg),
}

impl Local {
    pub fn open(at: &Location) -> Result<Local, Box<dyn std::error::Error>> {
        match at.store.as_deref() {
            None => Ok(Local::Sqlite {
                conn: super::open_rw(&super::db_path(&at.data_dir))?,
                data_dir: at.data_dir.clone(),
                master: Arc::new(MasterKey::load_or_create(&at.data_dir)?),
            }),
            Some(url) if postgres::is_url(url) => {
                let master = Arc::new(MasterKey::load_given(at.master_key_file.as_deref())?);
                Ok(Local::Postgres(Pg::open(url, master)?))
            }
            Some(url) => Err(format!(
                "--store must be a postgres://USER@HOST:PORT/DB URL, got {:?}",
                crate::redact::url(url)
            )
            .into()),
        }
    }

    pub fn master(&self) -> Arc<MasterKey> {
        match self {
            Local::Sqlite { master, .. } => master.clone(),
            Local::Postgres(pg) => pg.master().clone(),
        }
    }

    pub fn read<R>(
        &self,
        f: impl FnOnce(&dyn Model) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        match self {
            Local::Sqlite { conn, .. } => f(conn),
            Local::Postgres(pg) => pg.read(f),
        }
    }

    /// One transaction. SQLite: running gateways see a cluster's change
    /// once it is announced ([`Local::announce_clusters`]). PostgreSQL: the
    /// change's NOTIFY tells them, and this returns once they have had time
    /// to receive it.
    pub fn change<R>(
        &mut self,
        f: impl FnOnce(&dyn Model) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        match self {
            Local::Sqlite { conn, .. } => super::with_tx(conn, |tx| f(&**tx)),
            Local::Postgres(pg) => {
                let out = pg.change_now(f)?;
                std::thread::sleep(super::sqlite::announced::ANNOUNCE_WAIT);
                Ok(out)
            }
        }
    }

    /// Tells running gateways that clusters changed; once it returns, every
    /// request they receive sees the change. SQLite: through the data dir's
    /// file. PostgreSQL: [`Local::change`] already did.
    pub fn announce_clusters(&self) -> Result<(), StoreError> {
        match self {
            Local::Sqlite { data_dir, .. } => clusters::announce_change(data_dir),
            Local::Postgres(_) => Ok(()),
        }
    }

    pub fn create_key(&mut self, owner: &str) -> Result<NewKey, StoreError> {
        match self {
            Local::Sqlite { conn, master, .. } => {
                super::with_tx(conn, |c| keys::create(c, master, owner))
            }
            Local::Postgres(pg) => postgres::keys::create(pg, owner),
        }
    }

    pub fn keys(&self) -> Result<Vec<KeyInfo>, StoreError> {
        match self {
            Local::Sqlite { conn, .. } => keys::list(conn),
            Local::Postgres(pg) => postgres::keys::list(pg),
        }
    }

    /// False when no active key has that id.
    pub fn revoke_key(&mut self, id: &str) -> Result<bool, StoreError> {
        match self {
            Local::Sqlite { data_dir, .. } => keys::revoke(data_dir, id),
            // As SQLite's announcement does, it returns once the running
            // gateways have had time to receive the revocation's NOTIFY
            // (their cached keys also expire within a second).
            Local::Postgres(pg) => {
                let revoked = postgres::keys::revoke(pg, id)?;
                std::thread::sleep(super::sqlite::announced::ANNOUNCE_WAIT);
                Ok(revoked)
            }
        }
    }

    /// The data dir of a SQLite store (for what lives beside its file).
    pub fn data_dir(&self) -> Option<&Path> {
        match self {
            Local::Sqlite { data_dir, .. } => Some(data_dir),
            Local::Postgres(_) => None,
        }
    }
}
