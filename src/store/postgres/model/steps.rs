//! The steps a job recorded as it ran, numbered per job.

use super::PgModel;
use crate::store::StoreError;
use crate::store::postgres::Conn;
use crate::store::types::Step;

pub fn append<C: Conn>(
    m: &PgModel<'_, C>,
    seq: i64,
    at_ms: i64,
    step: &str,
    outcome: &str,
    detail: &str,
) -> Result<(), StoreError> {
    m.exec(
        "INSERT INTO job_steps (job_seq, n, at_ms, step, outcome, detail)
         VALUES ($1, (SELECT COALESCE(max(n), 0) + 1 FROM job_steps WHERE job_seq = $1), $2, $3, $4, $5)",
        &[&seq, &at_ms, &step, &outcome, &detail],
    )?;
    Ok(())
}

pub fn of_job<C: Conn>(m: &PgModel<'_, C>, seq: i64) -> Result<Vec<Step>, StoreError> {
    let rows = m.rows(
        "SELECT at_ms, step, outcome, detail FROM job_steps WHERE job_seq = $1 ORDER BY n",
        &[&seq],
    )?;
    Ok(rows
        .iter()
        .map(|r| Step {
            at_ms: r.get(0),
            step: r.get(1),
            outcome: r.get(2),
            detail: r.get(3),
        })
        .collect())
}
