//! The steps of a job that acts on servers: each one recorded as it begins
//! and as it ends, in the order they ran.

use rusqlite::{Connection, params};

use crate::store::StoreError;
pub use crate::store::types::Step;

pub fn append(
    conn: &Connection,
    job_seq: i64,
    at_ms: i64,
    step: &str,
    outcome: &str,
    detail: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO job_steps (job_seq, n, at_ms, step, outcome, detail)
         VALUES (?1, (SELECT ifnull(max(n), 0) + 1 FROM job_steps WHERE job_seq = ?1), ?2, ?3, ?4, ?5)",
    )?
    .execute(params![job_seq, at_ms, step, outcome, detail])?;
    Ok(())
}

pub fn of_job(conn: &Connection, job_seq: i64) -> Result<Vec<Step>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT at_ms, step, outcome, detail FROM job_steps WHERE job_seq = ?1 ORDER BY n",
    )?;
    let rows = stmt.query_map([job_seq], |r| {
        Ok(Step {
            at_ms: r.get(0)?,
            step: r.get(1)?,
            outcome: r.get(2)?,
            detail: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whether a job recorded any step (it started acting on servers).
pub fn any(conn: &Connection, job_seq: i64) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM job_steps WHERE job_seq = ?1 LIMIT 1")?
        .exists([job_seq])?)
}
