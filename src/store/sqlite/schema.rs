//! The SQLite file: opened with its schema in place, migrated from older
//! versions, and written in one immediate transaction by the local commands.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

use super::Tx;
use crate::store::StoreError;
use crate::store::job_ids;

pub const DB_FILE: &str = "qcgate.db";

pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join(DB_FILE)
}

/// A read-write connection with the schema in place. Used by the writer and by
/// the local CLI commands, which may run while `serve` does.
pub fn open_rw(path: &Path) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    // Only takes effect when the file is created. The checkpointer's
    // thresholds count pages of this size.
    conn.pragma_update(None, "page_size", 4096)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.execute_batch(include_str!("schema.sql"))?;
    migrate(&conn)?;
    job_ids::JobIds::load_or_create(&conn)?.register(&conn)?;
    Ok(conn)
}

/// The status check as the first schemas wrote it, and as it is now.
const OLD_STATUS_CHECK: &str = "CHECK (status IN ('pending', 'working', 'successful', 'failed'))";
const STATUS_CHECK: &str = "CHECK (status = 'pending' OR status = 'working' OR status = 'successful' OR status = 'failed')";

/// Replaces the old status check, which built a temporary b-tree for its IN
/// list on every insert and status change (~3% of a job's insert), by the
/// same condition written with OR. Both accept exactly the same rows, so the
/// schema text is edited in place, as SQLite documents for changing a CHECK
/// constraint (lang_altertable.html#otheralter), rather than copying the table.
fn rewrite_status_check(conn: &Connection) -> Result<(), StoreError> {
    let old: bool = conn
        .prepare(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'jobs' AND instr(sql, ?1) > 0",
        )?
        .exists([OLD_STATUS_CHECK])?;
    if !old {
        return Ok(());
    }
    let tx = conn.unchecked_transaction()?;
    let version: i64 = tx.query_row("PRAGMA schema_version", [], |r| r.get(0))?;
    tx.pragma_update(None, "writable_schema", true)?;
    let edited = tx.execute(
        "UPDATE sqlite_schema SET sql = replace(sql, ?1, ?2) WHERE type = 'table' AND name = 'jobs'",
        [OLD_STATUS_CHECK, STATUS_CHECK],
    );
    // Off again whatever happened, before the transaction ends.
    tx.pragma_update(None, "writable_schema", false)?;
    edited?;
    tx.pragma_update(None, "schema_version", version + 1)?;
    tx.commit()?;
    Ok(())
}

/// Columns added after the first schema, for data dirs created before them.
fn migrate(conn: &Connection) -> Result<(), StoreError> {
    // Jobs stored before ids came from seq keep their random ids.
    if job_ids::JobIds::load(conn)?.is_none() {
        conn.execute_batch(
            "INSERT OR IGNORE INTO legacy_job_ids (id, seq) SELECT id, seq FROM jobs",
        )?;
    }
    // replays was keyed by digest alone before it was keyed by expiry first.
    let old_replays: bool = conn
        .prepare("SELECT 1 FROM pragma_table_info('replays') WHERE name = 'digest' AND pk = 1")?
        .exists([])?;
    if old_replays {
        conn.execute_batch(
            "ALTER TABLE replays RENAME TO replays_old;
             CREATE TABLE replays (expires INTEGER NOT NULL, digest TEXT NOT NULL, job_id TEXT NOT NULL,
                                   PRIMARY KEY (expires, digest)) WITHOUT ROWID;
             INSERT INTO replays SELECT expires, digest, job_id FROM replays_old;
             DROP TABLE replays_old;",
        )?;
    }
    rewrite_status_check(conn)?;
    for (table, column, decl) in [
        ("jobs", "secrets", "TEXT"),
        ("jobs", "output", "TEXT NOT NULL DEFAULT ''"),
        ("jobs", "replay_digest", "TEXT"),
        ("jobs", "replay_expires", "INTEGER"),
        ("jobs", "lane_prev", "INTEGER"),
        ("lanes", "head", "INTEGER"),
        ("lanes", "tail", "INTEGER"),
        ("lanes", "ready_at", "INTEGER NOT NULL DEFAULT 0"),
        ("clusters", "settings", "TEXT NOT NULL DEFAULT '{}'"),
        ("nodes", "restart_time", "INTEGER"),
        ("nodes", "rebuild_time", "INTEGER"),
        ("clusters", "backend", "TEXT NOT NULL DEFAULT 'model'"),
    ] {
        let has: bool = conn
            .prepare("SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2")?
            .exists([table, column])?;
        if !has {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl}"))?;
        }
    }
    // Lanes queued through an index on (lane, seq) before their open jobs
    // were linked: link them, then drop that index.
    let lane_index: bool = conn
        .prepare("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'jobs_lane_pending'")?
        .exists([])?;
    if lane_index {
        conn.execute_batch(
            "UPDATE jobs SET lane_prev = (
                 SELECT max(p.seq) FROM jobs p WHERE p.lane = jobs.lane AND p.seq < jobs.seq
                   AND p.status IN ('pending', 'working'))
             WHERE status IN ('pending', 'working');
             UPDATE lanes SET
                 head = (SELECT min(seq) FROM jobs WHERE lane = lanes.lane AND status IN ('pending', 'working')),
                 tail = (SELECT max(seq) FROM jobs WHERE lane = lanes.lane AND status IN ('pending', 'working'));
             DROP INDEX jobs_lane_pending;",
        )?;
    }
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS jobs_lane_next ON jobs(lane_prev) WHERE lane_prev IS NOT NULL",
    )?;
    // Claimable lanes were indexed on `pending > 0`, so every enqueue on a
    // waiting lane rewrote that index (a page a commit); `head` changes only
    // when a lane starts or ends a run. A lane counted as pending without a
    // head (drift) gets one first, so it stays claimable.
    let pending_index: bool = conn
        .prepare("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'lanes_ready'")?
        .exists([])?;
    if pending_index {
        conn.execute_batch(
            "UPDATE lanes SET
                 head = (SELECT min(seq) FROM jobs WHERE lane = lanes.lane AND status IN ('pending', 'working')),
                 tail = (SELECT max(seq) FROM jobs WHERE lane = lanes.lane AND status IN ('pending', 'working'))
             WHERE head IS NULL AND pending > 0;
             DROP INDEX lanes_ready;",
        )?;
    }
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS lanes_claimable ON lanes(lane) WHERE busy = 0 AND head IS NOT NULL",
    )?;
    // Clusters registered before nodes existed get their HA pair.
    conn.execute_batch(
        "INSERT INTO nodes (id, cluster_id, role, is_primary, create_time)
         SELECT 'cln-' || lower(hex(randomblob(4))), c.id, 'maininstance', p.is_primary, c.create_time
         FROM clusters c, (SELECT 1 AS is_primary UNION ALL SELECT 0) p
         WHERE NOT EXISTS (SELECT 1 FROM nodes n WHERE n.cluster_id = c.id)",
    )?;
    // owner_open arrived after jobs: count open jobs once.
    let counted: bool = conn
        .prepare("SELECT 1 FROM owner_open LIMIT 1")?
        .exists([])?;
    if !counted {
        conn.execute_batch(
            "INSERT INTO owner_open (owner, open)
             SELECT owner, COUNT(*) FROM jobs WHERE status IN ('pending', 'working') GROUP BY owner",
        )?;
    }
    Ok(())
}

/// Runs `f` in one immediate transaction on a direct connection (CLI commands).
pub fn with_tx<R>(
    conn: &mut Connection,
    f: impl FnOnce(&Tx<'_>) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let r = f(&Tx::new(&tx))?;
    tx.commit()?;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::{ReadPool, jobs, replays, views};

    #[test]
    fn an_old_replays_table_is_rekeyed_by_expiry_and_keeps_its_rows() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = db_path(dir.path());
        {
            let conn = Connection::open(&path).expect("open");
            conn.execute_batch(
                "CREATE TABLE replays (digest TEXT PRIMARY KEY, job_id TEXT NOT NULL, expires INTEGER NOT NULL) WITHOUT ROWID;
                 INSERT INTO replays VALUES ('d1', 'j-aaaaaaaaaaa', 4000000000);",
            )
            .expect("old schema");
        }
        let conn = open_rw(&path).expect("migrates");
        let once = jobs::Once {
            digest: "d1".into(),
            expires: 4_000_000_000,
        };
        assert_eq!(
            replays::Replays::load(&conn, 3600)
                .expect("load")
                .committed(&conn, &once)
                .expect("query")
                .as_deref(),
            Some("j-aaaaaaaaaaa")
        );
        let pk: i64 = conn
            .query_row(
                "SELECT pk FROM pragma_table_info('replays') WHERE name = 'expires'",
                [],
                |r| r.get(0),
            )
            .expect("pk");
        assert_eq!(pk, 1);
    }

    /// A pending job at seq 7 of lane `cl-a`, written as an older version would.
    fn insert_old_job(conn: &Connection, id: &str) {
        conn.execute(
            "INSERT INTO jobs (seq, id, owner, zone, action, status, lane, resource_ids, directive,
                               task, create_time, status_time, enqueued_ms)
             VALUES (7, ?1, 'usr-TEST0001', 'sh1a', 'RunClusterCustomService',
                     'pending', 'cl-a', 'cl-a', '{}', '{}', 1, 1, 1)",
            [id],
        )
        .expect("old job");
    }

    fn plan_of(conn: &Connection, sql: &str) -> Vec<String> {
        let mut stmt = conn.prepare(&format!("EXPLAIN {sql}")).expect("explain");
        stmt.query_map([], |r| r.get::<_, String>(1))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("opcodes")
    }

    #[test]
    fn the_old_status_check_is_rewritten_in_place_and_still_refuses_unknown_statuses() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = db_path(dir.path());
        {
            let conn = Connection::open(&path).expect("open");
            let old = include_str!("schema.sql").replace(STATUS_CHECK, OLD_STATUS_CHECK);
            assert_ne!(
                old,
                include_str!("schema.sql"),
                "schema.sql has STATUS_CHECK"
            );
            conn.execute_batch(&old).expect("old schema");
            insert_old_job(&conn, "j-old");
        }
        let insert =
            "INSERT INTO jobs (id, owner, zone, action, status, lane, resource_ids, directive,
                                        task, create_time, status_time, enqueued_ms)
                      VALUES ('j-x', 'o', 'z', 'a', 'pending', 'l', 'l', '{}', '{}', 1, 1, 1)";
        {
            let conn = Connection::open(&path).expect("open");
            assert!(plan_of(&conn, insert).contains(&"OpenEphemeral".to_string()));
        }
        let conn = open_rw(&path).expect("migrates");
        assert!(
            !plan_of(&conn, insert).contains(&"OpenEphemeral".to_string()),
            "an insert still builds a temporary b-tree for the status check"
        );
        let sql: String = conn
            .query_row(
                "SELECT sql FROM sqlite_schema WHERE name = 'jobs'",
                [],
                |r| r.get(0),
            )
            .expect("sql");
        assert!(sql.contains(STATUS_CHECK) && !sql.contains(OLD_STATUS_CHECK));
        let status: String = conn
            .query_row("SELECT status FROM jobs WHERE seq = 7", [], |r| r.get(0))
            .expect("the old job is kept");
        assert_eq!(status, "pending");
        conn.execute("UPDATE jobs SET status = 'working' WHERE seq = 7", [])
            .expect("a known status");
        let refused = conn.execute("UPDATE jobs SET status = 'done' WHERE seq = 7", []);
        assert!(refused.is_err(), "an unknown status was stored");
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("integrity");
        assert_eq!(check, "ok");
        drop(conn);
        // Opening again finds nothing to rewrite.
        open_rw(&path).expect("reopens");
    }

    fn job(lane: &str) -> jobs::NewJob {
        jobs::NewJob::for_test(lane)
    }

    /// Stores a pending job in each lane named, in order; returns their ids.
    fn queue(conn: &Connection, lanes: &[&str]) -> Vec<String> {
        let tx = Tx::new(conn);
        lanes
            .iter()
            .map(|l| jobs::insert(&tx, &job(l)).expect("insert"))
            .collect()
    }

    fn by_id(conn: &Connection, id: &str) -> Option<String> {
        let filter = jobs::JobFilter {
            owner: "usr-TEST0001".into(),
            ids: vec![id.into()],
            limit: 10,
            ..Default::default()
        };
        let ids = job_ids::JobIds::load_or_create(conn).expect("ids");
        let readers = ReadPool::new(conn.path().expect("a file").into(), 1, ids.clone(), None);
        let views = views::JobViews::new(ids, 0);
        match jobs::describe(&readers, &views, &filter).expect("describe") {
            jobs::Described::Page(page, _) => page.first().map(|v| v.id.clone()),
            jobs::Described::Missing(_) => None,
        }
    }

    #[test]
    fn jobs_stored_with_random_ids_are_still_found_by_them() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = db_path(dir.path());
        {
            // The jobs table as it was, with one job under a random id.
            let conn = Connection::open(&path).expect("open");
            let old = include_str!("schema.sql").replace(
                "id             TEXT NOT NULL,",
                "id             TEXT NOT NULL UNIQUE,",
            );
            conn.execute_batch(&old).expect("old schema");
            conn.execute_batch("DROP TABLE meta; DROP TABLE legacy_job_ids;")
                .expect("drop");
            insert_old_job(&conn, "j-oldrandom01");
        }
        let conn = open_rw(&path).expect("migrates");
        assert_eq!(
            by_id(&conn, "j-oldrandom01").as_deref(),
            Some("j-oldrandom01")
        );
        assert_eq!(
            jobs::lane_of(&conn, "j-oldrandom01").expect("q").as_deref(),
            Some("cl-a")
        );
        let new = queue(&conn, &["cl-b"]).remove(0);
        assert_ne!(new, "j-oldrandom01");
        assert_eq!(by_id(&conn, &new), Some(new.clone()));
        assert_eq!(
            jobs::lane_of(&conn, &new).expect("q").as_deref(),
            Some("cl-b")
        );
        // A reopen does not take new ids for legacy ones.
        drop(conn);
        let conn = open_rw(&path).expect("reopen");
        let legacy: i64 = conn
            .query_row("SELECT COUNT(*) FROM legacy_job_ids", [], |r| r.get(0))
            .expect("count");
        assert_eq!(legacy, 1);
        assert_eq!(by_id(&conn, &new), Some(new));
    }

    #[test]
    fn a_pruned_newest_job_never_lends_its_id_to_the_next() {
        let dir = tempfile::tempdir().expect("tmp");
        let conn = open_rw(&db_path(dir.path())).expect("db");
        let replays = replays::Replays::load(&conn, 3600).expect("replays");
        let first = queue(&conn, &["cl-a"]).remove(0);
        conn.execute("UPDATE jobs SET status = 'successful', status_time = 1", [])
            .expect("finish");
        assert_eq!(jobs::prune(&conn, &replays, 100, 10).expect("prune"), 1);
        // A second prune with nothing left keeps the floor.
        assert_eq!(jobs::prune(&conn, &replays, 100, 10).expect("prune"), 0);
        let next = queue(&conn, &["cl-a"]).remove(0);
        assert_ne!(next, first);
        assert_eq!(by_id(&conn, &first), None);
        assert_eq!(by_id(&conn, &next), Some(next.clone()));
        // Ids that are well formed but name no job, or are not ours, find nothing.
        assert_eq!(by_id(&conn, "j-zzzzzzzzzzz"), None);
        assert_eq!(by_id(&conn, "j-short"), None);
    }

    /// Claims and ends jobs, returning the ids in the order they were claimed.
    fn run_all(conn: &Connection, ending: impl Fn(usize) -> jobs::Ending) -> Vec<String> {
        let mut order = Vec::new();
        while let Some(c) = jobs::claim(conn, "w1", 60).expect("claim") {
            // One job per lane at a time.
            assert!(
                jobs::claim(conn, "w2", 60)
                    .expect("claim")
                    .is_none_or(|o| o.lane != c.lane),
                "a second job of {} ran at once",
                c.lane
            );
            conn.execute(
                "UPDATE jobs SET status = 'pending' WHERE status = 'working' AND seq <> ?1",
                [c.seq],
            )
            .expect("undo the probe");
            conn.execute(
                "UPDATE lanes SET busy = 0, pending = pending + 1 WHERE busy = 1 AND lane <> ?1",
                [&c.lane],
            )
            .expect("undo the probe");
            jobs::finish(conn, c.seq, &c.lane, &ending(order.len())).expect("finish");
            order.push(c.job_id);
        }
        order
    }

    #[test]
    fn a_lane_runs_its_jobs_in_order_through_requeues_and_refills() {
        let dir = tempfile::tempdir().expect("tmp");
        let conn = open_rw(&db_path(dir.path())).expect("db");
        let a = queue(&conn, &["cl-a"; 3]);
        // Every other claim is requeued: the same job comes back first.
        let requeue_odd = |n: usize| {
            if n.is_multiple_of(2) {
                jobs::Ending::Requeued
            } else {
                jobs::Ending::Successful
            }
        };
        let order = run_all(&conn, requeue_odd);
        let expect: Vec<&String> = a.iter().flat_map(|id| [id, id]).collect();
        assert_eq!(order.iter().collect::<Vec<_>>(), expect);
        // The lane emptied; new jobs start a new list.
        let b = queue(&conn, &["cl-a"; 2]);
        assert_eq!(run_all(&conn, |_| jobs::Ending::Successful), b);
    }

    #[test]
    fn lanes_queued_by_the_old_index_are_linked_on_open() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = db_path(dir.path());
        let ids: Vec<String> = {
            let conn = open_rw(&path).expect("db");
            let ids = queue(&conn, &["cl-a", "cl-b", "cl-a", "cl-a"]);
            // As a data dir from before the lists: the old index, no links.
            conn.execute_batch(
                "UPDATE jobs SET lane_prev = NULL; UPDATE lanes SET head = NULL, tail = NULL;
                 DROP INDEX jobs_lane_next;
                 CREATE INDEX jobs_lane_pending ON jobs(lane, seq) WHERE status = 'pending';",
            )
            .expect("old state");
            ids
        };
        let conn = open_rw(&path).expect("migrates");
        let seq = |id: &str| -> i64 {
            conn.query_row("SELECT seq FROM jobs WHERE id = ?1", [id], |r| r.get(0))
                .expect("seq")
        };
        let ends: (i64, i64) = conn
            .query_row(
                "SELECT head, tail FROM lanes WHERE lane = 'cl-a'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("lane");
        assert_eq!(ends, (seq(&ids[0]), seq(&ids[3])));
        let linked: Option<i64> = conn
            .query_row("SELECT lane_prev FROM jobs WHERE id = ?1", [&ids[3]], |r| {
                r.get(0)
            })
            .expect("link");
        assert_eq!(linked, Some(seq(&ids[2])));
        let order = run_all(&conn, |_| jobs::Ending::Successful);
        let lane_a: Vec<&String> = order.iter().filter(|id| **id != ids[1]).collect();
        assert_eq!(lane_a, [&ids[0], &ids[2], &ids[3]]);
        assert!(order.contains(&ids[1]));
        let old: bool = conn
            .prepare("SELECT 1 FROM sqlite_master WHERE name = 'jobs_lane_pending'")
            .expect("q")
            .exists([])
            .expect("q");
        assert!(!old);
    }

    #[test]
    fn a_drifted_lane_is_repaired_instead_of_stranding_its_jobs() {
        let dir = tempfile::tempdir().expect("tmp");
        let conn = open_rw(&db_path(dir.path())).expect("db");
        let a = queue(&conn, &["cl-a"; 2]);
        conn.execute("UPDATE lanes SET head = 999", [])
            .expect("drift");
        assert!(jobs::claim(&conn, "w1", 60).expect("claim").is_none());
        assert_eq!(run_all(&conn, |_| jobs::Ending::Successful), a);
    }

    #[test]
    fn lanes_indexed_by_their_pending_count_are_reindexed_by_head_on_open() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = db_path(dir.path());
        let queued: Vec<String> = {
            let conn = open_rw(&path).expect("db");
            let queued = queue(&conn, &["cl-a"; 2]);
            // The index as it was, and a lane counted as pending without
            // its list (as if written before lanes had heads).
            conn.execute_batch(
                "DROP INDEX lanes_claimable;
                 CREATE INDEX lanes_ready ON lanes(lane) WHERE busy = 0 AND pending > 0;
                 UPDATE lanes SET head = NULL, tail = NULL;",
            )
            .expect("old index");
            queued
        };
        let conn = open_rw(&path).expect("migrates");
        let index = |name: &str| {
            conn.prepare("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?1")
                .expect("q")
                .exists([name])
                .expect("exists")
        };
        assert!(!index("lanes_ready") && index("lanes_claimable"));
        // The next enqueue appends to the repaired list, after both.
        let third = queue(&conn, &["cl-a"]).remove(0);
        let mut all = queued;
        all.push(third);
        assert_eq!(run_all(&conn, |_| jobs::Ending::Successful), all);
    }

    #[test]
    fn a_lane_waiting_with_jobs_stays_claimable_as_more_are_queued() {
        let dir = tempfile::tempdir().expect("tmp");
        let conn = open_rw(&db_path(dir.path())).expect("db");
        let a = queue(&conn, &["cl-a"; 3]);
        let claimable: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM lanes INDEXED BY lanes_claimable
                 WHERE busy = 0 AND head IS NOT NULL AND pending = 3",
                [],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(claimable, 1);
        assert_eq!(run_all(&conn, |_| jobs::Ending::Successful), a);
        let empty: (i64, Option<i64>) = conn
            .query_row(
                "SELECT pending, head FROM lanes WHERE lane = 'cl-a'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("lane");
        assert_eq!(empty, (0, None));
    }
}
