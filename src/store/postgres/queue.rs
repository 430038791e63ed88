//! [`Queue`] on PostgreSQL, shared by every gateway on the database: a job
//! is claimed by one of them (`FOR UPDATE SKIP LOCKED`), a lane runs one
//! job at a time whoever claims it, leases are on the database's clock, and
//! a signed request's replay key is unique in the database.

use tokio::sync::Notify;

use super::model::take_wrote;
use super::{Pg, PgModel};
use crate::BoxFuture;
use crate::clock::{now_millis, now_unix};
use crate::store::StoreError;
use crate::store::effect::{Effect, EffectError};
use crate::store::model::Model;
use crate::store::queue::{
    Claimed, Creator, Described, Ending, Enqueued, JobFilter, NewJob, Once, Orphan, Outcome, Queue,
    Rescue, Rescuer,
};

type Tx<'a> = super::Tx<'a, 'a>;

/// The database's clock, in unix seconds: what leases are measured on.
const DB_NOW: &str = "extract(epoch from clock_timestamp())::bigint";

impl Queue for Pg {
    fn submit(
        &self,
        items: Vec<(NewJob, Once)>,
        max_open: u64,
        create: Option<Creator>,
    ) -> BoxFuture<'_, Result<Vec<Enqueued>, StoreError>> {
        Box::pin(super::submit::submit(self, items, max_open, create))
    }

    fn replayed(&self, once: &Once) -> Result<Option<String>, StoreError> {
        self.with_client(|c, pg| {
            let seq: Option<i64> = pg
                .wait(c.query_opt(
                    "SELECT job_seq FROM replays WHERE digest = $1 AND expires >= $2",
                    &[&once.digest, &now_unix()],
                ))?
                .map(|r| r.get(0));
            seq.map(|seq| pg.job_id(seq)).transpose()
        })
    }

    fn open_jobs(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.with_client(|c, pg| {
            let rows = pg.wait(c.query(
                "SELECT status, COUNT(*) FROM jobs WHERE status IN ('pending', 'working') GROUP BY status",
                &[],
            ))?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    fn describe<'a>(
        &'a self,
        filter: &'a JobFilter,
    ) -> BoxFuture<'a, Result<Described, StoreError>> {
        let (pg, f) = (self.clone(), filter.clone());
        Box::pin(self.on_runtime(async move {
            if f.ids.is_empty() {
                super::describe::page(&pg, &f).await
            } else {
                super::describe::ids(&pg, &f).await
            }
        }))
    }

    fn claim(
        &self,
        worker: &str,
        lease_secs: i64,
    ) -> BoxFuture<'_, Result<Option<Claimed>, StoreError>> {
        let worker = worker.to_string();
        Box::pin(self.blocking(move |pg| pg.with_tx(|tx, pg| claim(pg, tx, &worker, lease_secs))))
    }

    fn heartbeat(
        &self,
        seq: i64,
        worker: &str,
        lease_secs: i64,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        let worker = worker.to_string();
        Box::pin(self.blocking(move |pg| {
            pg.with_client(|c, pg| {
                let n = pg.wait(c.execute(
                    &format!(
                        "UPDATE jobs SET lease_expires = {DB_NOW} + $3
                         WHERE seq = $1 AND lease_owner = $2 AND status = 'working'"
                    ),
                    &[&seq, &worker, &lease_secs],
                ))?;
                Ok(n == 1)
            })
        }))
    }

    fn record(&self, mut o: Outcome) -> BoxFuture<'_, Result<Option<&'static str>, StoreError>> {
        Box::pin(async move {
            self.blocking(move |pg| {
                take_wrote();
                let recorded = pg.with_tx(|tx, pg| record(pg, tx, &mut o))?;
                // The lane's next job may run now.
                pg.committed(recorded.is_some(), take_wrote());
                Ok(recorded)
            })
            .await
        })
    }

    fn rescue(
        &self,
        expired_before: i64,
        decide: Rescuer,
    ) -> BoxFuture<'_, Result<usize, StoreError>> {
        Box::pin(
            self.blocking(move |pg| pg.with_tx(|tx, pg| rescue(pg, tx, expired_before, &decide))),
        )
    }

    fn prune(&self, before: i64, batch: usize) -> BoxFuture<'_, Result<usize, StoreError>> {
        Box::pin(self.blocking(move |pg| {
            pg.with_tx(|tx, pg| {
                let batch = i64::try_from(batch).unwrap_or(i64::MAX);
                let doomed: Vec<i64> = pg
                    .wait(tx.query(
                        "SELECT seq FROM jobs WHERE status IN ('successful', 'failed') AND status_time < $1
                         ORDER BY status_time LIMIT $2 FOR UPDATE SKIP LOCKED",
                        &[&before, &batch],
                    ))?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                pg.wait(tx.execute("DELETE FROM job_steps WHERE job_seq = ANY($1)", &[&doomed]))?;
                let n = pg.wait(tx.execute("DELETE FROM jobs WHERE seq = ANY($1)", &[&doomed]))?;
                pg.wait(tx.execute("DELETE FROM replays WHERE expires < $1", &[&now_unix()]))?;
                Ok(n as usize)
            })
        }))
    }

    fn job_ready(&self) -> &Notify {
        Pg::job_ready(self)
    }
}

fn record(pg: &Pg, tx: &Tx<'_>, o: &mut Outcome) -> Result<Option<&'static str>, StoreError> {
    let held = pg.wait(tx.query_opt(
        "SELECT 1 FROM jobs WHERE seq = $1 AND lease_owner = $2 AND status = 'working' FOR UPDATE",
        &[&o.seq, &o.worker],
    ))?;
    if held.is_none() {
        return Ok(None);
    }
    lock_owner_and_lane(pg, tx, o.seq)?;
    let ending = match &mut o.result {
        None => Ending::Requeued,
        Some(Err(ending)) => {
            if let Some(Err(why)) = o
                .on_failure
                .as_mut()
                .map(|e| apply(pg, tx, e))
                .transpose()?
            {
                tracing::warn!(seq = o.seq, %why, "a failed job's model effect was refused");
            }
            ending.clone()
        }
        Some(Ok(effect)) => match apply(pg, tx, effect)? {
            Ok(()) => Ending::Successful,
            Err(message) => Ending::Failed {
                code: 1400,
                message,
            },
        },
    };
    finish(pg, tx, o.seq, &ending)?;
    if !o.output.is_empty() {
        pg.wait(tx.execute(
            "UPDATE jobs SET output = $2 WHERE seq = $1",
            &[&o.seq, &o.output],
        ))?;
    }
    Ok(Some(match ending {
        Ending::Successful => "successful",
        Ending::Failed { .. } => "failed",
        Ending::Requeued => "requeued",
        Ending::Retry { .. } => "retried",
    }))
}

/// Rows are locked in one order everywhere, so that gateways never wait on
/// each other in a circle: a job, its owner's open count, its lane, then the
/// model's rows (a submission: the count, the lanes, the model).
fn lock_owner_and_lane(pg: &Pg, tx: &Tx<'_>, seq: i64) -> Result<(), StoreError> {
    pg.wait(tx.execute(
        "SELECT 1 FROM owner_open o JOIN jobs j ON o.owner = j.owner AND o.shard = j.open_shard
         WHERE j.seq = $1 FOR UPDATE OF o",
        &[&seq],
    ))?;
    pg.wait(tx.execute(
        "SELECT 1 FROM lanes WHERE lane = (SELECT lane FROM jobs WHERE seq = $1) FOR UPDATE",
        &[&seq],
    ))?;
    Ok(())
}

/// An effect in a savepoint: all of it, or nothing and the refusal.
fn apply(pg: &Pg, tx: &Tx<'_>, effect: &mut Effect) -> Result<Result<(), String>, StoreError> {
    pg.wait(tx.batch_execute("SAVEPOINT effect"))?;
    match effect(&PgModel::new(pg, tx) as &dyn Model) {
        Ok(()) => {
            pg.wait(tx.batch_execute("RELEASE SAVEPOINT effect"))?;
            Ok(Ok(()))
        }
        Err(err) => {
            pg.wait(tx.batch_execute("ROLLBACK TO SAVEPOINT effect; RELEASE SAVEPOINT effect"))?;
            match err {
                EffectError::Refused(message) => Ok(Err(message)),
                EffectError::Store(e) => Err(e),
            }
        }
    }
}

fn finish(pg: &Pg, tx: &Tx<'_>, seq: i64, ending: &Ending) -> Result<(), StoreError> {
    let now = now_unix();
    match ending {
        Ending::Successful => pg.wait(tx.execute(
            "UPDATE jobs SET status = 'successful', status_time = $2, lease_owner = NULL, lease_expires = NULL,
                             secrets = NULL, error_codes = '', error_message = '' WHERE seq = $1",
            &[&seq, &now],
        ))?,
        Ending::Failed { code, message } => pg.wait(tx.execute(
            "UPDATE jobs SET status = 'failed', status_time = $2, error_codes = $3, error_message = $4,
                             lease_owner = NULL, lease_expires = NULL, secrets = NULL WHERE seq = $1",
            &[&seq, &now, &code.to_string(), message],
        ))?,
        Ending::Requeued => pg.wait(tx.execute(
            "UPDATE jobs SET status = 'pending', status_time = $2, lease_owner = NULL, lease_expires = NULL
             WHERE seq = $1",
            &[&seq, &now],
        ))?,
        // The last failure stays visible while the job waits.
        Ending::Retry { code, message, .. } => pg.wait(tx.execute(
            "UPDATE jobs SET status = 'pending', status_time = $2, lease_owner = NULL, lease_expires = NULL,
                             error_codes = $3, error_message = $4 WHERE seq = $1",
            &[&seq, &now, &code.to_string(), message],
        ))?,
    };
    // In the order of `lock_owner_and_lane`.
    if !matches!(ending, Ending::Requeued | Ending::Retry { .. }) {
        pg.wait(tx.execute(
            "UPDATE owner_open o SET open = o.open - 1 FROM jobs j
             WHERE j.seq = $1 AND o.owner = j.owner AND o.shard = j.open_shard",
            &[&seq],
        ))?;
    }
    // The lane is free again: for its next job once this one ended, for this
    // one again if it goes back to the queue (after `at`, when backing off).
    let ready_at = match ending {
        Ending::Retry { at, .. } => *at,
        _ => 0,
    };
    pg.wait(tx.execute(
        "UPDATE lanes SET busy = FALSE, ready_at = $2,
                head = (SELECT min(seq) FROM jobs WHERE lane = lanes.lane AND status IN ('pending', 'working'))
         WHERE lane = (SELECT lane FROM jobs WHERE seq = $1)",
        &[&seq, &ready_at],
    ))?;
    Ok(())
}

/// The head of a lane that is not busy, leased to `worker`.
fn claim(
    pg: &Pg,
    tx: &Tx<'_>,
    worker: &str,
    lease_secs: i64,
) -> Result<Option<Claimed>, StoreError> {
    let now = now_unix();
    let Some(lane) = pg.wait(tx.query_opt(
        "SELECT lane, head FROM lanes WHERE NOT busy AND head IS NOT NULL AND ready_at <= $1
         ORDER BY head LIMIT 1 FOR UPDATE SKIP LOCKED",
        &[&now],
    ))?
    else {
        return Ok(None);
    };
    let (lane, head): (String, i64) = (lane.get(0), lane.get(1));
    let started_ms = now_millis();
    let row = pg.wait(tx.query_opt(
        &format!(
            "UPDATE jobs SET status = 'working', status_time = $3, lease_owner = $1,
                    lease_expires = {DB_NOW} + $2, attempts = attempts + 1, started_ms = $4
             WHERE seq = $5 AND status = 'pending'
             RETURNING seq, action, task, attempts, enqueued_ms, owner, zone, secrets"
        ),
        &[&worker, &lease_secs, &now, &started_ms, &head],
    ))?;
    let Some(r) = row else {
        // The lane's row drifted from its jobs (should not happen): set it
        // from them rather than spin or strand its jobs.
        tracing::warn!(lane = %lane, "lane head repaired");
        pg.wait(tx.execute(
            "UPDATE lanes SET
                 head = (SELECT min(seq) FROM jobs WHERE lane = $1 AND status IN ('pending', 'working')),
                 busy = EXISTS (SELECT 1 FROM jobs WHERE lane = $1 AND status = 'working')
             WHERE lane = $1",
            &[&lane],
        ))?;
        return Ok(None);
    };
    pg.wait(tx.execute("UPDATE lanes SET busy = TRUE WHERE lane = $1", &[&lane]))?;
    let seq: i64 = r.try_get(0)?;
    Ok(Some(Claimed {
        seq,
        job_id: pg.job_id(seq)?,
        action: r.try_get(1)?,
        task: r.try_get(2)?,
        attempts: r.try_get(3)?,
        enqueued_ms: r.try_get(4)?,
        owner: r.try_get(5)?,
        zone: r.try_get(6)?,
        secrets: r.try_get(7)?,
        lane,
        started_ms,
    }))
}

fn rescue(
    pg: &Pg,
    tx: &Tx<'_>,
    expired_before: i64,
    decide: &Rescuer,
) -> Result<usize, StoreError> {
    // Only leases run out on the database's clock: another gateway's jobs
    // are running until then, whatever this host's clock says.
    let orphans: Vec<Orphan> = pg
        .wait(tx.query(
            &format!(
                "SELECT seq, lane, task, attempts FROM jobs
                 WHERE status = 'working' AND lease_expires < LEAST($1, {DB_NOW})
                 ORDER BY seq FOR UPDATE SKIP LOCKED"
            ),
            &[&expired_before],
        ))?
        .iter()
        .map(|r| {
            let seq: i64 = r.try_get(0)?;
            Ok(Orphan {
                seq,
                job_id: pg.job_id(seq)?,
                lane: r.try_get(1)?,
                task: r.try_get(2)?,
                attempts: r.try_get(3)?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    let model = PgModel::new(pg, tx);
    for o in &orphans {
        let steps = model.steps_of(o.seq)?;
        let Rescue {
            ending,
            note,
            on_failure,
        } = decide(o, &steps);
        tracing::warn!(job_id = %o.job_id, ?ending, "rescued an orphaned job");
        lock_owner_and_lane(pg, tx, o.seq)?;
        if let Some((step, detail)) = note {
            model.append_step(o.seq, now_millis(), &step, "info", &detail)?;
        }
        if matches!(ending, Ending::Failed { .. })
            && let Some(Err(why)) = on_failure.map(|mut e| apply(pg, tx, &mut e)).transpose()?
        {
            tracing::warn!(job_id = %o.job_id, %why, "a failed job's model effect was refused");
        }
        finish(pg, tx, o.seq, &ending)?;
    }
    Ok(orphans.len())
}
