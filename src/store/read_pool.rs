//! A few read-only connections, reused. In WAL mode readers see the last
//! committed state and never block on the writer.

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::StoreError;
use super::job_ids::JobIds;

pub struct ReadPool {
    path: PathBuf,
    max_idle: usize,
    idle: Mutex<Vec<Connection>>,
    job_ids: JobIds,
    /// Whether some jobs kept the random ids they had before ids came from
    /// seq. Read when the first connection opens: only the migration of
    /// such a database adds them, and it runs before any pool exists.
    legacy_ids: OnceLock<bool>,
}

impl ReadPool {
    pub fn new(path: PathBuf, max_idle: usize, job_ids: JobIds) -> Self {
        ReadPool {
            path,
            max_idle,
            idle: Mutex::new(Vec::new()),
            job_ids,
            legacy_ids: OnceLock::new(),
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

    /// Runs a short query. Queries here are index lookups of a few microseconds,
    /// so they run on the calling thread rather than hopping to a blocking pool.
    pub fn with<R>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let conn = match self.idle.lock().ok().and_then(|mut v| v.pop()) {
            Some(c) => c,
            None => self.open()?,
        };
        let result = f(&conn);
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < self.max_idle
        {
            idle.push(conn);
        }
        result
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
