//! The next job's seq, remembered by the writer between inserts.
//!
//! Reading it from SQL (`max(seq)` and the pruning floor, then `job_id()`)
//! was a statement of its own per job, ~5% of the writer's time. Only the
//! gateway's writer inserts jobs while it runs, so after the first look the
//! next seq is the last one plus one. Gaps are harmless (an insert rolled
//! back leaves one); reuse is not, and cannot happen unnoticed: `seq` is the
//! primary key, so an insert that finds its seq taken fails, and the seq is
//! then read from SQL again.

use std::sync::atomic::{AtomicI64, Ordering};

use rusqlite::Connection;

use crate::store::StoreError;
use crate::store::job_ids::JobIds;

pub struct NextSeq {
    ids: JobIds,
    /// 0: not known (seqs start at 1).
    next: AtomicI64,
}

impl NextSeq {
    pub fn new(ids: JobIds) -> NextSeq {
        NextSeq {
            ids,
            next: AtomicI64::new(0),
        }
    }

    /// The seq the next insert takes, and its id.
    pub fn peek(&self, conn: &Connection) -> Result<(i64, String), StoreError> {
        match self.next.load(Ordering::Relaxed) {
            0 => from_sql(conn),
            seq => {
                let id = self
                    .ids
                    .encode(seq)
                    .ok_or_else(|| StoreError::Commit(format!("no job id for seq {seq}")))?;
                Ok((seq, id))
            }
        }
    }

    /// The insert at `seq` succeeded (`true`) or failed, perhaps because the
    /// seq was taken: then the next one is read from SQL again.
    pub fn inserted(&self, seq: i64, ok: bool) {
        self.next
            .store(if ok { seq + 1 } else { 0 }, Ordering::Relaxed);
    }
}

/// The next seq and its id, read from SQL: never a seq an earlier job had
/// (pruning may have removed the newest, and leaves its seq as
/// `job_seq_floor`), since the id is a function of it.
pub fn from_sql(conn: &Connection) -> Result<(i64, String), StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT seq, job_id(seq) FROM (
               SELECT max(ifnull((SELECT max(seq) FROM jobs), 0),
                          ifnull((SELECT value FROM meta WHERE name = 'job_seq_floor'), 0)) + 1 AS seq)",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Connection, NextSeq) {
        let dir = tempfile::tempdir().expect("tmp");
        let conn = super::super::open_rw(&super::super::db_path(dir.path())).expect("open");
        let ids = JobIds::load_or_create(&conn).expect("ids");
        (dir, conn, NextSeq::new(ids))
    }

    fn add_job(conn: &Connection, seq: i64) {
        conn.execute(
            "INSERT INTO jobs (seq, id, owner, zone, action, status, lane, resource_ids, directive,
                               task, create_time, status_time, enqueued_ms)
             VALUES (?1, 'j-' || ?1, 'o', 'z', 'a', 'pending', 'l', 'l', '{}', '{}', 1, 1, 1)",
            [seq],
        )
        .expect("job");
    }

    #[test]
    fn it_counts_on_from_the_first_look_without_reading_sql_again() {
        let (_dir, conn, next) = setup();
        add_job(&conn, 41);
        let (seq, id) = next.peek(&conn).expect("peek");
        assert_eq!(seq, 42);
        assert_eq!(next.ids.decode(&id), Some(42));
        next.inserted(seq, true);
        // A row written behind its back is not seen: the counter answers.
        add_job(&conn, 90);
        assert_eq!(next.peek(&conn).expect("peek").0, 43);
    }

    #[test]
    fn a_failed_insert_sends_it_back_to_sql_which_respects_the_pruning_floor() {
        let (_dir, conn, next) = setup();
        next.inserted(5, true);
        assert_eq!(next.peek(&conn).expect("peek").0, 6);
        conn.execute(
            "INSERT INTO meta (name, value) VALUES ('job_seq_floor', 70)",
            [],
        )
        .expect("floor");
        next.inserted(6, false);
        assert_eq!(next.peek(&conn).expect("peek").0, 71);
    }
}
