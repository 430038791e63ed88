//! A few read-only connections, reused. In WAL mode readers see the last
//! committed state and never block on the writer.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::StoreError;
use super::job_ids::JobIds;

pub struct ReadPool {
    path: PathBuf,
    max_idle: usize,
    idle: Mutex<Vec<Connection>>,
    job_ids: JobIds,
}

impl ReadPool {
    pub fn new(path: PathBuf, max_idle: usize, job_ids: JobIds) -> Self {
        ReadPool {
            path,
            max_idle,
            idle: Mutex::new(Vec::new()),
            job_ids,
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
        Ok(conn)
    }
}
