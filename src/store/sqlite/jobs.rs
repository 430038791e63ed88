//! Jobs: enqueue, describe, and the worker side (claim, heartbeat, finish, rescue).

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use tokio::sync::Notify;

use super::job_rows::{JobEntry, entry_row, view_columns};
pub use super::job_rows::{JobView, VIEW_COLUMNS, entry_by_seq};
use super::next_seq::{self, NextSeq};
use super::read_pool::ReadPool;
pub use super::replays::Once;
use super::replays::{self, Replays};
use super::tx::Tx;
use super::views::JobViews;
use crate::clock::{now_millis, now_unix};
use crate::sealing::MasterKey;
use crate::secret::Secret;
use crate::store::StoreError;
pub use crate::store::queue::{Claimed, Described, Ending, Enqueued, JobFilter, NewJob, Orphan};
use crate::written;

pub const STATUSES: [&str; 4] = ["pending", "working", "successful", "failed"];

fn secrets_aad(owner: &str, lane: &str) -> String {
    format!("job_secrets:{owner}:{lane}")
}

/// Seals a job's secret fields as one JSON object; `None` when there are none.
pub fn seal_secrets(
    master: &MasterKey,
    owner: &str,
    lane: &str,
    secrets: &[(&str, Secret)],
) -> Option<String> {
    if secrets.is_empty() {
        return None;
    }
    // Sized so that escaping never moves the text (and leaves a copy behind).
    let room: usize = secrets
        .iter()
        .map(|(k, v)| 6 * (k.len() + v.expose().len()) + 80)
        .sum();
    let mut o = written::Object::with_capacity(room);
    for (k, v) in secrets {
        o.str(k, v.expose());
    }
    let plain = Secret::new(o.finish());
    Some(master.seal(plain.expose().as_bytes(), &secrets_aad(owner, lane)))
}

/// Opens what [`seal_secrets`] sealed: the secret fields as a JSON object.
pub fn open_secrets(
    master: &MasterKey,
    owner: &str,
    lane: &str,
    sealed: &str,
) -> Result<Secret, StoreError> {
    Ok(master.open(sealed, &secrets_aad(owner, lane))?)
}

/// The row a job id names, as a condition on `jobs` with the id as `?1`:
/// ids are derived from seq, but for jobs stored before they were.
macro_rules! by_id {
    () => {
        "seq = ifnull((SELECT seq FROM legacy_job_ids WHERE id = ?1), job_seq(?1)) AND id = ?1"
    };
}

/// The lane (cluster) of a job, by id.
pub fn lane_of(conn: &Connection, job_id: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached(concat!("SELECT lane FROM jobs WHERE ", by_id!()))?
        .query_row([job_id], |r| r.get(0))
        .optional()?)
}

/// Inserts a pending job and returns its id; durable once the writer commits.
pub fn insert(conn: &Tx<'_>, job: &NewJob) -> Result<String, StoreError> {
    let (id, _, _) = insert_queued(conn, job, None, None, None)?;
    conn.cached(
        "INSERT INTO owner_open (owner, open) VALUES (?1, 1)
         ON CONFLICT(owner) DO UPDATE SET open = open + 1",
    )?
    .execute([&job.owner])?;
    Ok(id)
}

/// The job row and its lane's count; the owner's open count is the caller's.
/// Returns the job's id and seq, and whether it can be claimed at once (it
/// heads its lane) rather than waiting behind its lane's open jobs.
fn insert_queued(
    conn: &Tx<'_>,
    job: &NewJob,
    once: Option<&Once>,
    views: Option<&JobViews>,
    seqs: Option<&NextSeq>,
) -> Result<(String, i64, bool), StoreError> {
    let now = now_unix();
    // The id is computed here rather than read by `INSERT … RETURNING`, which
    // builds a temporary b-tree for its result (a third of the writer's time
    // per job in a profile).
    let (seq, id) = match seqs {
        Some(seqs) => seqs.peek(conn)?,
        None => next_seq::from_sql(conn)?,
    };
    let inserted = conn
        .cached(
            "INSERT INTO jobs (seq, id, owner, zone, action, status, lane, resource_ids, directive, task,
                           create_time, status_time, enqueued_ms, secrets, replay_digest, replay_expires,
                           lane_prev)
         VALUES (?1, ?14, ?2, ?3, ?4, 'pending', ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11, ?12, ?13,
                 (SELECT tail FROM lanes WHERE lane = ?5))",
        )?
        .execute(params![
        seq,
        job.owner,
        job.zone,
        job.action,
        job.lane,
        job.resource_ids.join(" "),
        job.directive,
        job.task,
        now,
        now_millis(),
        job.secrets,
        once.map(|o| &o.digest),
        once.map(|o| o.expires),
        id,
    ]);
    if let Some(seqs) = seqs {
        seqs.inserted(seq, inserted.is_ok());
    }
    inserted?;
    // A lane with open jobs only counts one more: setting neither `busy` nor
    // `head` leaves its claimable index entry alone.
    let queued = conn
        .cached("UPDATE lanes SET pending = pending + 1, tail = ?2 WHERE lane = ?1 AND head IS NOT NULL")?
        .execute(params![job.lane, seq])?;
    let heads = queued == 0;
    if heads {
        conn.cached(
            "INSERT INTO lanes (lane, pending, head, tail) VALUES (?1, 1, ?2, ?2)
             ON CONFLICT(lane) DO UPDATE SET pending = pending + 1, head = excluded.head,
                                             tail = excluded.tail",
        )?
        .execute(params![job.lane, seq])?;
    }
    if let Some(views) = views {
        // Spares the writer reading the row back (and decoding it) per job.
        views.provide(inserted_entry(seq, &id, job, now));
    }
    Ok((id, seq, heads))
}

#[cfg(test)]
impl NewJob {
    /// A job of the tests' owner in `lane` (one cluster's).
    pub fn for_test(lane: &str) -> NewJob {
        NewJob {
            owner: "usr-TEST0001".into(),
            zone: "sh1a".into(),
            action: "RunClusterCustomService".into(),
            lane: lane.into(),
            resource_ids: vec![lane.into()],
            directive: "{}".into(),
            task: "{}".into(),
            secrets: None,
        }
    }
}

/// Stores jobs unless the same signed request already did (per job), or the
/// owner's queue has no room for all of them: all or nothing, inside one
/// writer transaction. All jobs belong to one owner.
/// `views`, when given, get the new jobs' entries without reading them back;
/// `seqs`, when given, spares reading the next seq from SQL (the writer's).
/// `ready` is told when a new job heads its lane: only then is there
/// something a waiting worker can claim (the claim, a writer operation too,
/// runs after this one's batch commits). A job queued behind its lane's
/// open jobs is claimed by the worker that ends the one before it.
pub fn enqueue(
    conn: &Tx<'_>,
    replays: &Replays,
    views: Option<&JobViews>,
    seqs: Option<&NextSeq>,
    ready: Option<&Notify>,
    items: &[(NewJob, Once)],
    max_open: u64,
) -> Result<Vec<Enqueued>, StoreError> {
    let keys: Vec<replays::Key> = items.iter().map(|(_, o)| replays::key(&o.digest)).collect();
    let mut seen = Vec::with_capacity(items.len());
    for ((_, once), k) in items.iter().zip(&keys) {
        seen.push(replays.in_writer(conn, once, k)?);
    }
    let new = seen.iter().filter(|s| s.is_none()).count() as u64;
    if let (Some((job, _)), true) = (items.first(), new > 0) {
        // Checks the quota and takes the room in one statement: nothing is
        // changed when the owner's open jobs plus these would pass it.
        let took = new <= max_open
            && conn
                .cached(
                    "INSERT INTO owner_open (owner, open) VALUES (?1, ?2)
                     ON CONFLICT(owner) DO UPDATE SET open = open + excluded.open
                     WHERE MAX(open, 0) + excluded.open <= ?3",
                )?
                .execute(params![job.owner, new as i64, max_open as i64])?
                == 1;
        if !took {
            return Ok(vec![Enqueued::OverQuota(max_open); items.len()]);
        }
    }
    let mut out = Vec::with_capacity(items.len());
    for (((job, once), seen), k) in items.iter().zip(seen).zip(keys) {
        if let Some(id) = seen {
            out.push(Enqueued::Replayed(id));
            continue;
        }
        let (id, seq, heads) = insert_queued(conn, job, Some(once), views, seqs)?;
        replays.record(conn, once, k, seq, &id)?;
        if heads && let Some(ready) = ready {
            ready.notify_one();
        }
        out.push(Enqueued::New(id));
    }
    Ok(out)
}

/// Deletes up to `batch` jobs that ended before `before`; returns how many.
pub fn prune(
    conn: &Connection,
    replays: &Replays,
    before: i64,
    batch: usize,
) -> Result<usize, StoreError> {
    const DOOMED: &str = "SELECT seq FROM jobs WHERE status IN ('successful', 'failed')
                          AND status_time < ?2 ORDER BY status_time LIMIT ?3";
    let now = now_unix();
    let args = params![now, before, batch as i64];
    // A job whose request is still valid leaves its replay record behind,
    // so that request sent again still answers with the job's id.
    let moved = conn
        .prepare_cached(&format!(
            "INSERT OR REPLACE INTO replays (expires, digest, job_id)
             SELECT replay_expires, replay_digest, id FROM jobs
             WHERE seq IN ({DOOMED}) AND replay_expires >= ?1 AND replay_digest IS NOT NULL"
        ))?
        .execute(args)?;
    if moved > 0 {
        replays.table_in_use();
    }
    // The newest job may go: the next one must still not reuse its seq.
    conn.prepare_cached(
        "INSERT INTO meta (name, value) SELECT 'job_seq_floor', max(seq) FROM jobs WHERE true HAVING max(seq) IS NOT NULL
         ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)",
    )?
    .execute([])?;
    conn.prepare_cached(&format!(
        "DELETE FROM job_steps WHERE job_seq IN ({DOOMED})"
    ))?
    .execute(args)?;
    let n = conn
        .prepare_cached(&format!("DELETE FROM jobs WHERE seq IN ({DOOMED})"))?
        .execute(args)?;
    conn.prepare_cached("DELETE FROM replays WHERE expires < ?1")?
        .execute([now])?;
    // Once the table holds no live record, lookups that miss memory need not
    // look there: after a burst that filled the index, writes cost what
    // they did before it. Only expired rows were deleted, so readers' view
    // holds no live row either.
    let live = conn
        .prepare_cached("SELECT 1 FROM replays WHERE expires >= ?1 LIMIT 1")?
        .exists([now])?;
    if !live {
        replays.table_unused();
    }
    Ok(n)
}

impl JobFilter {
    fn where_clause(&self) -> (String, Vec<SqlValue>) {
        let mut sql = String::from("owner = ?");
        let mut args = vec![SqlValue::Text(self.owner.clone())];
        if let Some(zone) = &self.zone {
            sql.push_str(" AND zone = ?");
            args.push(SqlValue::Text(zone.clone()));
        }
        let mut any_of = |col: &str, values: &[String]| {
            if !values.is_empty() {
                sql.push_str(&format!(
                    " AND {col} IN ({})",
                    vec!["?"; values.len()].join(",")
                ));
                args.extend(values.iter().cloned().map(SqlValue::Text));
            }
        };
        any_of("status", &self.statuses);
        if let Some(action) = &self.action {
            sql.push_str(" AND action = ?");
            args.push(SqlValue::Text(action.clone()));
        }
        if let Some(lane) = &self.lane {
            sql.push_str(" AND lane = ?");
            args.push(SqlValue::Text(lane.clone()));
        }
        (sql, args)
    }
}

/// A new job's entry, from the values its row was just inserted with: what
/// [`entry_row`] would read back (a test holds the two together).
fn inserted_entry(seq: i64, id: &str, job: &NewJob, now: i64) -> JobEntry {
    let created = crate::clock::format_ts(now);
    let view = JobView {
        status_time: created.clone(),
        create_time: created,
        directive: job.directive.clone(),
        error_codes: String::new(),
        error_message: String::new(),
        job_action: job.action.clone(),
        job_id: id.to_string(),
        output: String::new(),
        owner: job.owner.clone(),
        resource_ids: job.resource_ids.join(" "),
        status: "pending".into(),
    };
    JobEntry::new(seq, job.zone.clone(), view)
}

/// Newest first; `total` counts every match before paging. Jobs named by id
/// are taken from `views` when there: polling a recent job reads no SQL and
/// takes no reader connection.
pub fn describe(
    readers: &ReadPool,
    views: &JobViews,
    filter: &JobFilter,
) -> Result<Described, StoreError> {
    if !filter.ids.is_empty() {
        return describe_ids(readers, views, filter);
    }
    readers.with(|conn| {
        let (clause, mut args) = filter.where_clause();
        let total: i64 = conn
            .prepare_cached(&format!("SELECT COUNT(*) FROM jobs WHERE {clause}"))?
            .query_row(params_from_iter(args.iter()), |r| r.get(0))?;
        args.push(SqlValue::Integer(filter.limit as i64));
        args.push(SqlValue::Integer(filter.offset as i64));
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {VIEW_COLUMNS} FROM jobs WHERE {clause} ORDER BY seq DESC LIMIT ? OFFSET ?"
        ))?;
        let rows = stmt.query_map(params_from_iter(args.iter()), entry_row)?;
        let page = rows.collect::<Result<_, _>>()?;
        Ok(Described::Page(page, total as u64))
    })
}

/// With `jobs.n`: one lookup per id (in memory, else indexed), then the other
/// filters and paging in memory (at most a few hundred ids).
fn describe_ids(
    readers: &ReadPool,
    views: &JobViews,
    filter: &JobFilter,
) -> Result<Described, StoreError> {
    let mut found = Vec::with_capacity(filter.ids.len());
    for id in &filter.ids {
        let entry = match views.get(id) {
            Some(e) => (e.owner == filter.owner).then_some(e),
            None => readers.with_snapshot(|conn| {
                let row = match readers.seq_of(id) {
                    Some(seq) => conn
                        .prepare_cached(concat!(
                            "SELECT ",
                            view_columns!(),
                            " FROM jobs WHERE seq = ?1 AND id = ?2 AND owner = ?3"
                        ))?
                        .query_row(params![seq, id, filter.owner], entry_row),
                    None => conn
                        .prepare_cached(concat!(
                            "SELECT ",
                            view_columns!(),
                            " FROM jobs WHERE ",
                            by_id!(),
                            " AND owner = ?2"
                        ))?
                        .query_row(params![id, filter.owner], entry_row),
                };
                Ok(row.optional()?)
            })?,
        };
        match entry {
            Some(e) if filter.zone.as_ref().is_none_or(|z| *z == e.zone) => found.push(e),
            _ => return Ok(Described::Missing(id.clone())),
        }
    }
    Ok(crate::store::queue::by_ids_page(found, filter))
}

/// Takes the oldest pending job of a lane that has nothing running.
pub fn claim(
    conn: &Connection,
    worker: &str,
    lease_secs: i64,
) -> Result<Option<Claimed>, StoreError> {
    let lane: Option<(String, Option<i64>)> = conn
        .prepare_cached(
            "SELECT lane, head FROM lanes
             WHERE busy = 0 AND head IS NOT NULL AND pending > 0 AND ready_at <= ?1 LIMIT 1",
        )?
        .query_row([now_unix()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((lane, head)) = lane else {
        return Ok(None);
    };
    let row = conn
        .prepare_cached(
            "SELECT seq, id, action, task, attempts, enqueued_ms, owner, zone, secrets FROM jobs
             WHERE seq = ?1 AND status = 'pending'",
        )?
        .query_row([head], |r| {
            Ok(Claimed {
                seq: r.get(0)?,
                job_id: r.get(1)?,
                action: r.get(2)?,
                task: r.get(3)?,
                attempts: r.get::<_, i64>(4)? + 1,
                enqueued_ms: r.get(5)?,
                owner: r.get(6)?,
                zone: r.get(7)?,
                secrets: r.get(8)?,
                lane: String::new(),
                started_ms: 0,
            })
        })
        .optional()?;
    let Some(mut claimed) = row else {
        // The lane's row drifted from its jobs (should not happen): rebuild it
        // from them, with a scan, rather than spin or strand its jobs.
        tracing::warn!(lane = %lane, "lane head repaired");
        repair_lane(conn, &lane)?;
        return Ok(None);
    };
    let now = now_unix();
    let started_ms = now_millis();
    conn.prepare_cached(
        "UPDATE jobs SET status = 'working', status_time = ?2, lease_owner = ?3, lease_expires = ?4,
                         attempts = attempts + 1, started_ms = ?5
         WHERE seq = ?1",
    )?
    .execute(params![claimed.seq, now, worker, now + lease_secs, started_ms])?;
    conn.prepare_cached("UPDATE lanes SET busy = 1, pending = pending - 1 WHERE lane = ?1")?
        .execute([&lane])?;
    claimed.lane = lane;
    claimed.started_ms = started_ms;
    Ok(Some(claimed))
}

/// Extends a lease; false if the worker no longer holds it.
pub fn heartbeat(
    conn: &Connection,
    seq: i64,
    worker: &str,
    lease_secs: i64,
) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE jobs SET lease_expires = ?3 WHERE seq = ?1 AND lease_owner = ?2 AND status = 'working'",
        )?
        .execute(params![seq, worker, now_unix() + lease_secs])?;
    Ok(n == 1)
}

/// Whether `worker` still holds the lease on job `seq`.
pub fn holds_lease(conn: &Connection, seq: i64, worker: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM jobs WHERE seq = ?1 AND lease_owner = ?2 AND status = 'working'",
        )?
        .query_row(params![seq, worker], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Records the end of a job and frees its lane.
pub fn finish(conn: &Connection, seq: i64, lane: &str, ending: &Ending) -> Result<(), StoreError> {
    let now = now_unix();
    match ending {
        Ending::Successful => {
            conn.prepare_cached(
                "UPDATE jobs SET status = 'successful', status_time = ?2, lease_owner = NULL, lease_expires = NULL,
                                 secrets = NULL, error_codes = '', error_message = ''
                 WHERE seq = ?1",
            )?
            .execute(params![seq, now])?;
        }
        Ending::Failed { code, message } => {
            conn.prepare_cached(
                "UPDATE jobs SET status = 'failed', status_time = ?2, error_codes = ?3, error_message = ?4,
                                 lease_owner = NULL, lease_expires = NULL, secrets = NULL
                 WHERE seq = ?1",
            )?
            .execute(params![seq, now, code.to_string(), message])?;
        }
        Ending::Requeued => {
            conn.prepare_cached(
                "UPDATE jobs SET status = 'pending', status_time = ?2, lease_owner = NULL, lease_expires = NULL
                 WHERE seq = ?1",
            )?
            .execute(params![seq, now])?;
            conn.prepare_cached("UPDATE lanes SET pending = pending + 1 WHERE lane = ?1")?
                .execute([lane])?;
        }
        Ending::Retry { at, code, message } => {
            // The last failure stays visible while the job waits.
            conn.prepare_cached(
                "UPDATE jobs SET status = 'pending', status_time = ?2, lease_owner = NULL, lease_expires = NULL,
                                 error_codes = ?3, error_message = ?4
                 WHERE seq = ?1",
            )?
            .execute(params![seq, now, code.to_string(), message])?;
            conn.prepare_cached(
                "UPDATE lanes SET pending = pending + 1, ready_at = ?2 WHERE lane = ?1",
            )?
            .execute(params![lane, at])?;
        }
    }
    if !matches!(ending, Ending::Requeued | Ending::Retry { .. }) {
        conn.prepare_cached(
            "UPDATE owner_open SET open = open - 1 WHERE owner = (SELECT owner FROM jobs WHERE seq = ?1)",
        )?
        .execute([seq])?;
    }
    // A job that ended hands the lane to the job queued after it (the lane's
    // list of open jobs runs through lane_prev); a requeued one stays first.
    conn.prepare_cached(
        "UPDATE lanes SET busy = 0,
             head = CASE WHEN head = ?2 AND ?3 THEN (SELECT seq FROM jobs WHERE lane_prev = ?2 AND lane = ?1)
                         ELSE head END,
             tail = CASE WHEN head = ?2 AND tail = ?2 AND ?3 THEN NULL ELSE tail END
         WHERE lane = ?1",
    )?
    .execute(params![lane, seq, !matches!(ending, Ending::Requeued | Ending::Retry { .. })])?;
    Ok(())
}

/// Rebuilds a lane's counts and list ends from its jobs.
fn repair_lane(conn: &Connection, lane: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE lanes SET
             pending = (SELECT COUNT(*) FROM jobs WHERE lane = ?1 AND status = 'pending'),
             busy = EXISTS (SELECT 1 FROM jobs WHERE lane = ?1 AND status = 'working'),
             head = (SELECT min(seq) FROM jobs WHERE lane = ?1 AND status IN ('pending', 'working')),
             tail = (SELECT max(seq) FROM jobs WHERE lane = ?1 AND status IN ('pending', 'working'))
         WHERE lane = ?1",
        [lane],
    )?;
    Ok(())
}

/// Keeps what the job's executor printed (secrets already removed).
pub fn set_output(conn: &Connection, seq: i64, output: &str) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE jobs SET output = ?2 WHERE seq = ?1")?
        .execute(params![seq, output])?;
    Ok(())
}

pub fn orphans(conn: &Connection, expired_before: i64) -> Result<Vec<Orphan>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, id, lane, task, attempts FROM jobs WHERE status = 'working' AND lease_expires < ?1",
    )?;
    let rows = stmt.query_map([expired_before], |r| {
        Ok(Orphan {
            seq: r.get(0)?,
            job_id: r.get(1)?,
            lane: r.get(2)?,
            task: r.get(3)?,
            attempts: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::writer::CommitListener;

    #[test]
    fn only_a_job_that_heads_its_lane_wakes_a_worker() {
        let dir = tempfile::tempdir().expect("tmp");
        let conn = crate::store::open_rw(&crate::store::db_path(dir.path())).expect("db");
        let replays = Replays::load(&conn, 3600).expect("replays");
        let ready = Notify::new();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        // A wake-up given while no worker waits is kept for the next one.
        let woken = || {
            rt.block_on(async {
                let wait = std::time::Duration::from_millis(20);
                tokio::time::timeout(wait, ready.notified()).await.is_ok()
            })
        };
        let mut n = 0;
        let mut enqueue = |lane: &str| {
            n += 1;
            let job = NewJob::for_test(lane);
            let once = Once {
                digest: format!("d-{n}"),
                expires: now_unix() + 600,
            };
            replays.op_started();
            let out = enqueue(
                &Tx::new(&conn),
                &replays,
                None,
                None,
                Some(&ready),
                &[(job, once)],
                100,
            )
            .expect("enqueue");
            replays.batch_done(true);
            assert!(matches!(out.as_slice(), [Enqueued::New(_)]), "{out:?}");
        };
        enqueue("cl-lane0001");
        assert!(woken(), "the lane's first job can run at once");
        enqueue("cl-lane0001");
        assert!(!woken(), "the second waits behind the first");
        enqueue("cl-lane0002");
        assert!(woken(), "another lane's first job");

        // Once the lane's jobs have all ended, its next job heads it again.
        conn.execute_batch("UPDATE lanes SET pending = 0, head = NULL, tail = NULL")
            .expect("end the lanes");
        enqueue("cl-lane0001");
        assert!(woken());
    }

    #[test]
    fn an_entry_is_written_as_serde_json_writes_its_view() {
        let mut view = JobView {
            create_time: "2026-11-23T10:00:00Z".into(),
            directive:
                r#"{"action":"RunClusterCustomService","service_params":"{\"a\":\"b\\\\c\"}"}"#
                    .into(),
            error_codes: String::new(),
            error_message: String::new(),
            job_action: "RunClusterCustomService".into(),
            job_id: "j-0123456789a".into(),
            output: String::new(),
            owner: "usr-ABCDEFGH".into(),
            resource_ids: "cl-a cl-b".into(),
            status: "pending".into(),
            status_time: "2026-11-23T10:00:01Z".into(),
        };
        let same = |v: &JobView| {
            let want = serde_json::to_string(v).expect("json");
            assert_eq!(v.written().get(), want);
        };
        same(&view);
        view.error_codes = "5000".into();
        view.error_message = "line one\nline \"two\"\t\u{1}".into();
        view.output = "out\u{7f}é".into();
        same(&view);
    }

    #[test]
    fn sealed_secrets_open_to_the_fields_as_a_json_object() {
        use base64::Engine;
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let master = MasterKey::from_base64(&key).expect("key");
        let secrets = [
            ("password", Secret::new("Pass\"w\\d@123".to_string())),
            ("repl_password", Secret::new("é\n".to_string())),
        ];
        assert_eq!(seal_secrets(&master, "usr-a", "cl-a", &[]), None);
        let sealed = seal_secrets(&master, "usr-a", "cl-a", &secrets).expect("sealed");
        assert!(!sealed.contains("Pass"));
        assert!(
            open_secrets(&master, "usr-b", "cl-a", &sealed).is_err(),
            "bound to its owner"
        );
        let opened = open_secrets(&master, "usr-a", "cl-a", &sealed).expect("opened");
        let fields: serde_json::Value = serde_json::from_str(opened.expose()).expect("json");
        assert_eq!(
            fields,
            serde_json::json!({"password": "Pass\"w\\d@123", "repl_password": "é\n"})
        );
    }
}
