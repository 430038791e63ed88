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

/// Rows an owner's open-job count is spread over.
const OPEN_SHARDS: u8 = 16;

/// The database's clock, in unix seconds: what leases are measured on.
const DB_NOW: &str = "extract(epoch from clock_timestamp())::bigint";

impl Queue for Pg {
    fn submit(
        &self,
        items: Vec<(NewJob, Once)>,
        max_open: u64,
        mut create: Creator,
    ) -> BoxFuture<'_, Result<Vec<Enqueued>, StoreError>> {
        Box::pin(self.blocking(move |pg| {
            // A second try only when the same signed request was stored by
            // another gateway meanwhile: it then answers with that job.
            for _ in 0..3 {
                take_wrote();
                let stored = pg.with_tx(|tx, pg| submit(pg, tx, &items, max_open, &mut create))?;
                if let Some(out) = stored {
                    let new = out.iter().any(|o| matches!(o, Enqueued::New(_)));
                    pg.committed(new, take_wrote());
                    return Ok(out);
                }
            }
            Err(StoreError::Conflict("a signed request raced itself".into()))
        }))
    }

    fn replayed(&self, once: &Once) -> Result<Option<String>, StoreError> {
        self.with_client(|c, pg| {
            Ok(pg
                .wait(c.query_opt(
                    "SELECT job_id FROM replays WHERE digest = $1 AND expires >= $2",
                    &[&once.digest, &now_unix()],
                ))?
                .map(|r| r.get(0)))
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

    fn describe(&self, filter: &JobFilter) -> Result<Described, StoreError> {
        if filter.ids.is_empty() {
            super::describe::page(self, filter)
        } else {
            super::describe::ids(self, filter)
        }
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

/// `None`: the same signed request is being stored by another gateway; try again.
fn submit(
    pg: &Pg,
    tx: &Tx<'_>,
    items: &[(NewJob, Once)],
    max_open: u64,
    create: &mut Creator,
) -> Result<Option<Vec<Enqueued>>, StoreError> {
    let now = now_unix();
    let mut seen = Vec::with_capacity(items.len());
    for (_, once) in items {
        let id: Option<String> = pg
            .wait(tx.query_opt(
                "SELECT job_id FROM replays WHERE digest = $1 AND expires >= $2",
                &[&once.digest, &now],
            ))?
            .map(|r| r.get(0));
        seen.push(id);
    }
    let new = seen.iter().filter(|s| s.is_none()).count() as i64;
    // The owner's open jobs are counted in shards, so that an owner's
    // submissions do not queue behind each other's commits on one row; the
    // count read is the committed one, so submissions in flight at once may
    // pass the quota by as many jobs as they store.
    let shard = i16::from(rand::random::<u8>() % OPEN_SHARDS);
    if let (Some((job, _)), true) = (items.first(), new > 0) {
        let max = i64::try_from(max_open).unwrap_or(i64::MAX);
        let took = new <= max
            && pg.wait(tx.execute(
                "INSERT INTO owner_open (owner, shard, open)
                 SELECT $1::text, $2::smallint, $3::bigint
                 WHERE (SELECT COALESCE(sum(open), 0) FROM owner_open WHERE owner = $1::text) + $3::bigint
                       <= $4::bigint
                 ON CONFLICT (owner, shard) DO UPDATE SET open = owner_open.open + excluded.open",
                &[&job.owner, &shard, &new, &max],
            ))? == 1;
        if !took {
            return Ok(Some(vec![Enqueued::OverQuota(max_open); items.len()]));
        }
    }
    // The lanes' rows, locked in one order (two submissions never wait on
    // each other's), before any seq is drawn.
    let mut lanes: Vec<&str> = items
        .iter()
        .zip(&seen)
        .filter(|(_, s)| s.is_none())
        .map(|((j, _), _)| j.lane.as_str())
        .collect();
    lanes.sort_unstable();
    lanes.dedup();
    for lane in lanes {
        pg.wait(tx.execute(
            "INSERT INTO lanes (lane) VALUES ($1) ON CONFLICT (lane) DO UPDATE SET lane = excluded.lane",
            &[&lane],
        ))?;
    }
    let mut out = Vec::with_capacity(items.len());
    for ((job, once), seen) in items.iter().zip(seen) {
        if let Some(id) = seen {
            out.push(Enqueued::Replayed(id));
            continue;
        }
        // The seq, and the lane's head if it has none (its row is locked).
        let seq: i64 = pg
            .wait(tx.query_one(
                "UPDATE lanes SET head = COALESCE(head, s.seq) FROM (SELECT nextval('job_seq') AS seq) s
                 WHERE lane = $1 RETURNING s.seq",
                &[&job.lane],
            ))?
            .get(0);
        let id = pg
            .ids()
            .encode(seq)
            .ok_or_else(|| StoreError::Commit(format!("no job id for seq {seq}")))?;
        pg.wait(tx.execute(
            "INSERT INTO jobs (seq, id, owner, zone, action, status, lane, resource_ids, directive, task,
                               create_time, status_time, enqueued_ms, secrets, open_shard)
             VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $8, $9, $10, $10, $11, $12, $13)",
            &[
                &seq,
                &id,
                &job.owner,
                &job.zone,
                &job.action,
                &job.lane,
                &job.resource_ids.join(" "),
                &job.directive,
                &job.task,
                &now,
                &now_millis(),
                &job.secrets,
                &shard,
            ],
        ))?;
        // Unique: a request stored by another gateway since the check above
        // blocks here until that one commits, then finds its row.
        let kept = pg.wait(tx.execute(
            "INSERT INTO replays (digest, job_id, expires) VALUES ($1, $2, $3)
             ON CONFLICT (digest) DO UPDATE SET job_id = excluded.job_id, expires = excluded.expires
             WHERE replays.expires < $4",
            &[&once.digest, &id, &once.expires, &now],
        ))?;
        if kept == 0 {
            return Ok(None);
        }
        out.push(Enqueued::New(id));
    }
    if out.iter().all(|o| matches!(o, Enqueued::New(_))) {
        create(&PgModel::new(pg, tx))?;
    }
    Ok(Some(out))
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
             RETURNING seq, id, action, task, attempts, enqueued_ms, owner, zone, secrets"
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
    Ok(Some(Claimed {
        seq: r.get(0),
        job_id: r.get(1),
        action: r.get(2),
        task: r.get(3),
        attempts: r.get(4),
        enqueued_ms: r.get(5),
        owner: r.get(6),
        zone: r.get(7),
        secrets: r.get(8),
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
                "SELECT seq, id, lane, task, attempts FROM jobs
                 WHERE status = 'working' AND lease_expires < LEAST($1, {DB_NOW})
                 ORDER BY seq FOR UPDATE SKIP LOCKED"
            ),
            &[&expired_before],
        ))?
        .iter()
        .map(|r| Orphan {
            seq: r.get(0),
            job_id: r.get(1),
            lane: r.get(2),
            task: r.get(3),
            attempts: r.get(4),
        })
        .collect();
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
