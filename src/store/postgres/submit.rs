//! Submissions on PostgreSQL. Plain ones (no `Creator`) are group-committed:
//! a few tasks take whatever requests arrived meanwhile and store them with
//! one call of `qcgate_submit` (schema.sql), one round trip and one commit
//! for the lot. A replay key that another gateway is storing at that
//! moment is waited for, then answered with its job. A submission that
//! creates model rows, or that the batch could not settle (it repeats a
//! key of the batch, its key was taken back meanwhile, an error), is
//! stored alone in a transaction of its own; the replay key makes that
//! safe whatever the batch did.

use std::sync::{Arc, Weak};

use tokio::sync::{mpsc, oneshot};

use super::model::take_wrote;
use super::{Inner, Pg, PgModel, Tx};
use crate::clock::{now_millis, now_unix};
use crate::store::StoreError;
use crate::store::queue::{Creator, Enqueued, NewJob, Once};

/// Rows an owner's open-job count is spread over.
const OPEN_SHARDS: u8 = 16;
/// Batches in flight at once per gateway; a submission goes to the one its
/// lane hashes to (a batch holds its lanes' rows until it commits, so two
/// batches sharing lanes would run one after the other anyway). One: on
/// two cores, bigger batches beat batches in parallel (`bench shared`).
const BATCHERS: usize = 1;
/// Jobs in one batch at most.
const MAX_BATCH: usize = 512;

type Reply = oneshot::Sender<Result<Vec<Enqueued>, StoreError>>;

pub(super) struct Pending {
    items: Vec<(NewJob, Once)>,
    max_open: u64,
    reply: Reply,
}

/// The batching tasks' inboxes.
pub(super) struct Queue(Vec<mpsc::UnboundedSender<Pending>>);

type Inbox = mpsc::UnboundedReceiver<Pending>;

pub(super) fn channel() -> (Queue, Vec<Inbox>) {
    let (tx, rx) = (0..BATCHERS).map(|_| mpsc::unbounded_channel()).unzip();
    (Queue(tx), rx)
}

impl Queue {
    fn send(&self, p: Pending) -> Result<(), mpsc::error::SendError<Pending>> {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let lane = p.items.first().map(|(job, _)| job.lane.as_str());
        let hash = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .hash_one(lane);
        let k = usize::try_from(hash % self.0.len() as u64).unwrap_or(0);
        match self.0.get(k) {
            Some(tx) => tx.send(p),
            None => Err(mpsc::error::SendError(p)),
        }
    }
}

pub(super) async fn submit(
    pg: &Pg,
    items: Vec<(NewJob, Once)>,
    max_open: u64,
    create: Option<Creator>,
) -> Result<Vec<Enqueued>, StoreError> {
    if create.is_none() {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            items,
            max_open,
            reply,
        };
        match pg.inner.submits.send(pending) {
            Ok(()) => {
                return answer
                    .await
                    .map_err(|_| StoreError::Commit("the store is closing".into()))?;
            }
            Err(mpsc::error::SendError(p)) => return alone(pg, p.items, max_open, None).await,
        }
    }
    alone(pg, items, max_open, create).await
}

/// Starts the batching tasks; they end when the store is dropped.
pub(super) fn spawn(pg: &Pg, inboxes: Vec<Inbox>) {
    for mut rx in inboxes {
        let weak = Arc::downgrade(&pg.inner);
        pg.inner.rt.handle().spawn(async move {
            while let Some(batch) = gather(&mut rx).await {
                run(&weak, batch).await;
            }
        });
    }
}

/// The next batch: waits for one submission, then takes what else is queued.
async fn gather(rx: &mut Inbox) -> Option<Vec<Pending>> {
    let first = rx.recv().await?;
    let mut size = first.items.len();
    let mut batch = vec![first];
    while size < MAX_BATCH {
        match rx.try_recv() {
            Ok(p) => {
                size += p.items.len();
                batch.push(p);
            }
            Err(_) => break,
        }
    }
    Some(batch)
}

async fn run(weak: &Weak<Inner>, batch: Vec<Pending>) {
    let Some(inner) = weak.upgrade() else {
        for p in batch {
            let _ = p
                .reply
                .send(Err(StoreError::Commit("the store is closing".into())));
        }
        return;
    };
    let pg = Pg { inner };
    let settled = match stored(&pg, &batch).await {
        Ok(s) => s,
        Err(e) => {
            // The batch may or may not have committed: each submission is
            // tried alone, and finds its jobs by their replay keys if it did.
            tracing::warn!(error = %e, jobs = batch.len(), "a batch of submissions failed; storing them one by one");
            batch.iter().map(|_| Settled::Again).collect()
        }
    };
    if settled.iter().any(
        |s| matches!(s, Settled::Done(out) if out.iter().any(|o| matches!(o, Enqueued::New(_)))),
    ) {
        pg.committed(true, false);
    }
    for (p, s) in batch.into_iter().zip(settled) {
        match s {
            Settled::Done(out) => {
                let _ = p.reply.send(Ok(out));
            }
            Settled::Again => {
                let pg = pg.clone();
                tokio::spawn(async move {
                    let _ = p.reply.send(alone(&pg, p.items, p.max_open, None).await);
                });
            }
        }
    }
}

enum Settled {
    Done(Vec<Enqueued>),
    /// To be stored alone.
    Again,
}

/// A batch as `qcgate_submit` takes it: one array per column, a row per job.
#[derive(Default)]
struct Columns<'a> {
    sub: Vec<i32>,
    max_open: Vec<i64>,
    owners: Vec<&'a str>,
    zones: Vec<&'a str>,
    actions: Vec<&'a str>,
    lanes: Vec<&'a str>,
    resources: Vec<String>,
    directives: Vec<&'a str>,
    tasks: Vec<&'a str>,
    sealed: Vec<Option<&'a str>>,
    digests: Vec<&'a str>,
    valid_until: Vec<i64>,
}

/// One call of `qcgate_submit` for the whole batch; what became of each
/// submission. One that repeats a replay key of an earlier one is stored
/// alone afterwards, where it finds the first.
async fn stored(pg: &Pg, batch: &[Pending]) -> Result<Vec<Settled>, StoreError> {
    let mut keys = std::collections::HashSet::new();
    let sent: Vec<bool> = batch
        .iter()
        .map(|p| {
            p.items
                .iter()
                .all(|(_, once)| keys.insert(once.digest.as_str()))
        })
        .collect();
    let mut c = Columns::default();
    for (k, p) in batch.iter().enumerate().filter(|(k, _)| sent[*k]) {
        let max = i64::try_from(p.max_open).unwrap_or(i64::MAX);
        for (job, once) in &p.items {
            c.sub.push(i32::try_from(k).unwrap_or(i32::MAX));
            c.max_open.push(max);
            c.owners.push(&job.owner);
            c.zones.push(&job.zone);
            c.actions.push(&job.action);
            c.lanes.push(&job.lane);
            c.resources.push(job.resource_ids.join(" "));
            c.directives.push(&job.directive);
            c.tasks.push(&job.task);
            c.sealed.push(job.secrets.as_deref());
            c.digests.push(&once.digest);
            c.valid_until.push(once.expires);
        }
    }
    let n = c.sub.len();
    let (owner_set, lane_set) = (each_once(&c.owners), each_once(&c.lanes));
    let shard = i16::from(rand::random::<u8>() % OPEN_SHARDS);
    let client = pg.inner.pool.get().await?;
    let st = client
        .prepare_cached(
            "SELECT out_item, out_kind, out_seq FROM qcgate_submit(
                 $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        )
        .await?;
    let rows = client
        .query(
            &st,
            &[
                &c.sub,
                &c.max_open,
                &c.owners,
                &c.zones,
                &c.actions,
                &c.lanes,
                &c.resources,
                &c.directives,
                &c.tasks,
                &c.sealed,
                &c.digests,
                &c.valid_until,
                &owner_set,
                &lane_set,
                &now_unix(),
                &now_millis(),
                &shard,
            ],
        )
        .await?;
    if rows.len() != n {
        return Err(StoreError::Commit(format!(
            "{} answers for {n} jobs",
            rows.len()
        )));
    }
    let mut rows = rows.iter();
    let mut settled = Vec::with_capacity(batch.len());
    for (p, sent) in batch.iter().zip(sent) {
        if !sent {
            settled.push(Settled::Again);
            continue;
        }
        let mut out = Vec::with_capacity(p.items.len());
        let mut again = false;
        for r in rows.by_ref().take(p.items.len()) {
            let kind: &str = r.try_get(1)?;
            let seq: Option<i64> = r.try_get(2)?;
            match (kind, seq) {
                ("new", Some(seq)) => out.push(Enqueued::New(pg.job_id(seq)?)),
                ("replayed", Some(seq)) => out.push(Enqueued::Replayed(pg.job_id(seq)?)),
                ("over", _) => out.push(Enqueued::OverQuota(p.max_open)),
                ("raced", _) => again = true,
                _ => return Err(StoreError::Commit(format!("a submission answered {kind}"))),
            }
        }
        settled.push(if again {
            Settled::Again
        } else {
            Settled::Done(out)
        });
    }
    Ok(settled)
}

/// The values of `v`, sorted, each once.
fn each_once<'a>(v: &[&'a str]) -> Vec<&'a str> {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}

/// One submission in a transaction of its own, with `create`.
async fn alone(
    pg: &Pg,
    items: Vec<(NewJob, Once)>,
    max_open: u64,
    mut create: Option<Creator>,
) -> Result<Vec<Enqueued>, StoreError> {
    pg.blocking(move |pg| {
        // A second try only when the same signed request was stored by
        // another gateway meanwhile: it then answers with that job.
        for _ in 0..3 {
            take_wrote();
            let stored = pg.with_tx(|tx, pg| in_tx(pg, tx, &items, max_open, &mut create))?;
            if let Some(out) = stored {
                let new = out.iter().any(|o| matches!(o, Enqueued::New(_)));
                pg.committed(new, take_wrote());
                return Ok(out);
            }
        }
        Err(StoreError::Conflict("a signed request raced itself".into()))
    })
    .await
}

/// `None`: the same signed request is being stored by another gateway; try again.
fn in_tx(
    pg: &Pg,
    tx: &Tx<'_, '_>,
    items: &[(NewJob, Once)],
    max_open: u64,
    create: &mut Option<Creator>,
) -> Result<Option<Vec<Enqueued>>, StoreError> {
    let now = now_unix();
    let mut seen = Vec::with_capacity(items.len());
    for (_, once) in items {
        let id: Option<i64> = pg
            .wait(tx.query_opt(
                "SELECT job_seq FROM replays WHERE digest = $1 AND expires >= $2",
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
        if let Some(seq) = seen {
            out.push(Enqueued::Replayed(pg.job_id(seq)?));
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
        pg.wait(tx.execute(
            "INSERT INTO jobs (seq, owner, zone, action, status, lane, resource_ids, directive, task,
                               create_time, status_time, enqueued_ms, secrets, open_shard)
             VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, $9, $9, $10, $11, $12)",
            &[
                &seq,
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
            "INSERT INTO replays (digest, job_seq, expires) VALUES ($1, $2, $3)
             ON CONFLICT (digest) DO UPDATE SET job_seq = excluded.job_seq, expires = excluded.expires
             WHERE replays.expires < $4",
            &[&once.digest, &seq, &once.expires, &now],
        ))?;
        if kept == 0 {
            return Ok(None);
        }
        out.push(Enqueued::New(pg.job_id(seq)?));
    }
    if let Some(create) = create.as_mut()
        && out.iter().all(|o| matches!(o, Enqueued::New(_)))
    {
        create(&PgModel::new(pg, tx))?;
    }
    Ok(Some(out))
}
