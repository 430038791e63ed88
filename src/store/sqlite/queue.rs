//! [`Queue`] on the SQLite store: every write through its one writer thread
//! (group commit), `DescribeJobs` from the in-memory views when it can.

use rusqlite::Connection;
use tokio::sync::Notify;

use crate::BoxFuture;
use crate::store::effect::{Effect, EffectError};
use crate::store::jobs::{self, Claimed, Described, Ending, Enqueued, JobFilter, NewJob, Once};
use crate::store::queue::{Creator, Outcome, Queue, Rescue, Rescuer};
use crate::store::steps;
use crate::store::{Sqlite, StoreError};

impl Queue for Sqlite {
    fn submit(
        &self,
        items: Vec<(NewJob, Once)>,
        max_open: u64,
        mut create: Option<Creator>,
    ) -> BoxFuture<'_, Result<Vec<Enqueued>, StoreError>> {
        let replays = self.replays.clone();
        let views = self.views.clone();
        let next_seq = self.next_seq.clone();
        let ready = self.job_ready.clone();
        Box::pin(self.writer.write(move |c| {
            let outcome = jobs::enqueue(
                c,
                &replays,
                Some(&views),
                Some(&next_seq),
                Some(&ready),
                &items,
                max_open,
            )?;
            if let Some(create) = create.as_mut()
                && outcome.iter().all(|o| matches!(o, Enqueued::New(_)))
            {
                create(&**c)?;
            }
            Ok(outcome)
        }))
    }

    fn replayed(&self, once: &Once) -> Result<Option<String>, StoreError> {
        self.readers.with(|c| self.replays.committed(c, once))
    }

    fn open_jobs(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.readers.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT status, COUNT(*) FROM jobs WHERE status IN ('pending', 'working') GROUP BY status",
            )?;
            let counts = stmt
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<Result<_, _>>()?;
            Ok(counts)
        })
    }

    fn describe<'a>(
        &'a self,
        filter: &'a JobFilter,
    ) -> BoxFuture<'a, Result<Described, StoreError>> {
        // From memory, or one short read: done before the future is polled.
        Box::pin(std::future::ready(jobs::describe(
            &self.readers,
            &self.views,
            filter,
        )))
    }

    fn claim(
        &self,
        worker: &str,
        lease_secs: i64,
    ) -> BoxFuture<'_, Result<Option<Claimed>, StoreError>> {
        let worker = worker.to_string();
        Box::pin(
            self.writer
                .write(move |c| jobs::claim(c, &worker, lease_secs)),
        )
    }

    fn heartbeat(
        &self,
        seq: i64,
        worker: &str,
        lease_secs: i64,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        let worker = worker.to_string();
        Box::pin(
            self.writer
                .write(move |c| jobs::heartbeat(c, seq, &worker, lease_secs)),
        )
    }

    fn record(&self, mut o: Outcome) -> BoxFuture<'_, Result<Option<&'static str>, StoreError>> {
        Box::pin(self.writer.write(move |c| {
            let recorded = record(c, &mut o)?;
            if recorded.is_some() && !o.output.is_empty() {
                jobs::set_output(c, o.seq, &o.output)?;
            }
            Ok(recorded)
        }))
    }

    fn rescue(
        &self,
        expired_before: i64,
        decide: Rescuer,
    ) -> BoxFuture<'_, Result<usize, StoreError>> {
        Box::pin(
            self.writer
                .write(move |c| rescue(c, expired_before, &decide)),
        )
    }

    fn prune(&self, before: i64, batch: usize) -> BoxFuture<'_, Result<usize, StoreError>> {
        let replays = self.replays.clone();
        Box::pin(async move {
            let n = self
                .writer
                .write(move |c| jobs::prune(c, &replays, before, batch))
                .await?;
            if n < batch {
                // Then expired replay records, a bounded batch per writer
                // operation so that requests are never held up behind them.
                loop {
                    let replays = self.replays.clone();
                    let dropped = self
                        .writer
                        .write(move |c| replays.drop_expired_spill(c, SPILL_BATCH))
                        .await?;
                    if dropped < SPILL_BATCH {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
            }
            Ok(n)
        })
    }

    fn job_ready(&self) -> &Notify {
        &self.job_ready
    }
}

/// Expired rows of `replay_spill` deleted by one writer operation (~1 ms).
const SPILL_BATCH: usize = 4000;

fn record(conn: &Connection, o: &mut Outcome) -> Result<Option<&'static str>, StoreError> {
    if !jobs::holds_lease(conn, o.seq, &o.worker)? {
        return Ok(None);
    }
    let ending = match &mut o.result {
        None => Ending::Requeued,
        Some(Err(ending)) => {
            if let Some(Err(why)) = o.on_failure.as_mut().map(|e| apply(conn, e)).transpose()? {
                tracing::warn!(seq = o.seq, %why, "a failed job's model effect was refused");
            }
            ending.clone()
        }
        Some(Ok(effect)) => match apply(conn, effect)? {
            Ok(()) => Ending::Successful,
            Err(message) => Ending::Failed {
                code: 1400,
                message,
            },
        },
    };
    jobs::finish(conn, o.seq, &o.lane, &ending)?;
    Ok(Some(match ending {
        Ending::Successful => "successful",
        Ending::Failed { .. } => "failed",
        Ending::Requeued => "requeued",
        Ending::Retry { .. } => "retried",
    }))
}

/// Applies an effect in a savepoint: all of it, or nothing and the refusal.
pub fn apply(conn: &Connection, effect: &mut Effect) -> Result<Result<(), String>, StoreError> {
    conn.execute_batch("SAVEPOINT effect")?;
    match effect(conn) {
        Ok(()) => {
            conn.execute_batch("RELEASE effect")?;
            Ok(Ok(()))
        }
        Err(err) => {
            conn.execute_batch("ROLLBACK TO effect; RELEASE effect")?;
            match err {
                EffectError::Refused(message) => Ok(Err(message)),
                EffectError::Store(e) => Err(e),
            }
        }
    }
}

/// [`Queue::rescue`] on a connection: also run at start-up, before the
/// writer owns the file.
pub fn rescue(
    conn: &Connection,
    expired_before: i64,
    decide: &Rescuer,
) -> Result<usize, StoreError> {
    let orphans = jobs::orphans(conn, expired_before)?;
    for o in &orphans {
        let steps = steps::of_job(conn, o.seq)?;
        let Rescue {
            ending,
            note,
            on_failure,
        } = decide(o, &steps);
        tracing::warn!(job_id = %o.job_id, ?ending, "rescued an orphaned job");
        if let Some((step, detail)) = note {
            steps::append(
                conn,
                o.seq,
                crate::clock::now_millis(),
                &step,
                "info",
                &detail,
            )?;
        }
        if matches!(ending, Ending::Failed { .. })
            && let Some(Err(why)) = on_failure.map(|mut e| apply(conn, &mut e)).transpose()?
        {
            tracing::warn!(job_id = %o.job_id, %why, "a failed job's model effect was refused");
        }
        jobs::finish(conn, o.seq, &o.lane, &ending)?;
    }
    Ok(orphans.len())
}
