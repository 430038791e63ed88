//! DR tasks, their logs and their comparisons (seed 002).

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::Value;

use crate::clock::{now_millis, now_unix};
use crate::sealing::MasterKey;
use crate::secret::Secret;
use crate::store::StoreError;
pub use crate::store::types::{Compare, DrTask, LogLine, TaskFilter};

const COLUMNS: &str = "id, owner, zone, name, description, direction, standby_cluster, source_cluster, \
    source_endpoint, source_user, source_secret, sync_way, objects, flow_control, migrate_definer, status, \
    status_time, create_time, last_error, precheck, precheck_time, start_at, progress";

fn json(text: Option<String>) -> Option<Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<DrTask> {
    Ok(DrTask {
        id: r.get(0)?,
        owner: r.get(1)?,
        zone: r.get(2)?,
        name: r.get(3)?,
        description: r.get(4)?,
        direction: r.get(5)?,
        standby_cluster: r.get(6)?,
        source_cluster: r.get(7)?,
        source_endpoint: r.get(8)?,
        source_user: r.get(9)?,
        source_secret: r.get(10)?,
        sync_way: r.get(11)?,
        objects: json(r.get(12)?).unwrap_or(Value::Null),
        flow_control: json(r.get(13)?).unwrap_or(Value::Null),
        migrate_definer: r.get(14)?,
        status: r.get(15)?,
        status_time: r.get(16)?,
        create_time: r.get(17)?,
        last_error: r.get(18)?,
        precheck: json(r.get(19)?),
        precheck_time: r.get(20)?,
        start_at: r.get(21)?,
        progress: json(r.get(22)?),
    })
}

fn aad(id: &str) -> String {
    format!("dr_task_source:{id}")
}

/// Seals an external source's password for task `id`.
pub fn seal_source_password(master: &MasterKey, id: &str, password: &Secret) -> String {
    master.seal(password.expose().as_bytes(), &aad(id))
}

pub fn open_source_password(master: &MasterKey, t: &DrTask) -> Result<Option<Secret>, StoreError> {
    t.source_secret
        .as_deref()
        .map(|s| master.open(s, &aad(&t.id)))
        .transpose()
        .map_err(StoreError::from)
}

/// Inserts a new task (status `configuration`); false if the id is taken.
pub fn insert(conn: &Connection, t: &DrTask) -> Result<bool, StoreError> {
    let n = conn.execute(
        "INSERT INTO dr_tasks (id, owner, zone, name, description, direction, standby_cluster, source_cluster,
             source_endpoint, source_user, source_secret, sync_way, objects, flow_control, migrate_definer,
             status, status_time, create_time)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?17)
         ON CONFLICT(id) DO NOTHING",
        params![
            t.id,
            t.owner,
            t.zone,
            t.name,
            t.description,
            t.direction,
            t.standby_cluster,
            t.source_cluster,
            t.source_endpoint,
            t.source_user,
            t.source_secret,
            t.sync_way,
            t.objects.to_string(),
            t.flow_control.to_string(),
            t.migrate_definer,
            t.status,
            now_unix()
        ],
    )?;
    Ok(n == 1)
}

pub fn get(conn: &Connection, id: &str) -> Result<Option<DrTask>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM dr_tasks WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()?)
}

/// A task of `owner`; another owner's is simply not found.
pub fn get_owned(conn: &Connection, owner: &str, id: &str) -> Result<Option<DrTask>, StoreError> {
    Ok(get(conn, id)?.filter(|t| t.owner == owner && t.status != "deleted"))
}

/// Newest first; the total counts every match before paging.
pub fn list(conn: &Connection, f: &TaskFilter) -> Result<(Vec<DrTask>, u64), StoreError> {
    let mut w = super::filter::Where::new("owner", &f.owner);
    if f.statuses.is_empty() {
        w.and("status <> 'deleted'");
    }
    w.any_of("id", &f.ids).any_of("status", &f.statuses).search(
        "id",
        "name",
        f.search_word.as_ref(),
    );
    let super::filter::Where { clause, mut args } = w;
    let total: i64 = conn
        .prepare(&format!("SELECT COUNT(*) FROM dr_tasks WHERE {clause}"))?
        .query_row(rusqlite::params_from_iter(args.iter()), |r| r.get(0))?;
    args.push(SqlValue::Integer(f.limit.min(i64::MAX as u64) as i64));
    args.push(SqlValue::Integer(f.offset.min(i64::MAX as u64) as i64));
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM dr_tasks WHERE {clause} ORDER BY create_time DESC, id LIMIT ? OFFSET ?"
    ))?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), from_row)?;
    Ok((rows.collect::<Result<_, _>>()?, total as u64))
}

/// The live tasks a cluster takes part in, as standby or as source.
pub fn of_cluster(conn: &Connection, cluster_id: &str) -> Result<Vec<DrTask>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM dr_tasks WHERE (standby_cluster = ?1 OR source_cluster = ?1)
         AND status NOT IN ('deleted') ORDER BY create_time"
    ))?;
    let rows = stmt.query_map([cluster_id], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Tasks whose replication the sampler watches.
pub fn sampled(conn: &Connection) -> Result<Vec<DrTask>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM dr_tasks WHERE status IN ('syncing', 'sync_failed')"
    ))?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Moves a task to `status`; returns the status it had (`None`: no task).
pub fn set_status(
    conn: &Connection,
    id: &str,
    status: &str,
    last_error: Option<&str>,
) -> Result<Option<String>, StoreError> {
    let before: Option<String> = conn
        .query_row("SELECT status FROM dr_tasks WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?;
    conn.execute(
        "UPDATE dr_tasks SET status = ?2, status_time = ?3, last_error = COALESCE(?4, last_error) WHERE id = ?1",
        params![id, status, now_unix(), last_error],
    )?;
    Ok(before)
}

/// Points a task at other clusters (a switchover swapped its two sides).
pub fn set_sides(
    conn: &Connection,
    id: &str,
    standby: &str,
    source: Option<&str>,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE dr_tasks SET standby_cluster = ?2, source_cluster = ?3 WHERE id = ?1",
        params![id, standby, source],
    )?;
    Ok(())
}

pub fn set_precheck(conn: &Connection, id: &str, result: &Value) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE dr_tasks SET precheck = ?2, precheck_time = ?3 WHERE id = ?1",
        params![id, result.to_string(), now_unix()],
    )?;
    Ok(())
}

pub fn set_start_at(conn: &Connection, id: &str, at: Option<i64>) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE dr_tasks SET start_at = ?2 WHERE id = ?1",
        params![id, at],
    )?;
    Ok(())
}

pub fn set_progress(conn: &Connection, id: &str, progress: &Value) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE dr_tasks SET progress = ?2 WHERE id = ?1",
        params![id, progress.to_string()],
    )?;
    Ok(())
}

pub fn log(
    conn: &Connection,
    task_id: &str,
    level: &str,
    code: &str,
    job_id: &str,
    message: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO dr_task_logs (task_id, n, time_ms, level, code, job_id, message)
         VALUES (?1, (SELECT ifnull(max(n), 0) + 1 FROM dr_task_logs WHERE task_id = ?1), ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![task_id, now_millis(), level, code, job_id, message])?;
    Ok(())
}

/// Oldest first; the total counts every match before paging.
pub fn logs(
    conn: &Connection,
    task_id: &str,
    levels: &[String],
    offset: u64,
    limit: u64,
) -> Result<(Vec<LogLine>, u64), StoreError> {
    let all = levels.is_empty();
    let mut stmt = conn.prepare_cached(
        "SELECT time_ms, level, code, job_id, message FROM dr_task_logs WHERE task_id = ?1 ORDER BY n",
    )?;
    let rows = stmt.query_map([task_id], |r| {
        Ok(LogLine {
            time: crate::clock::format_ts(r.get::<_, i64>(0)? / 1000),
            level: r.get(1)?,
            code: r.get(2)?,
            job_id: r.get(3)?,
            message: r.get(4)?,
        })
    })?;
    let matching: Vec<LogLine> = rows
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|l| all || levels.contains(&l.level))
        .collect();
    let total = matching.len() as u64;
    let page = matching
        .into_iter()
        .skip(offset.min(usize::MAX as u64) as usize)
        .take(limit as usize)
        .collect();
    Ok((page, total))
}

fn compare_row(r: &Row<'_>) -> rusqlite::Result<Compare> {
    Ok(Compare {
        id: r.get(0)?,
        task_id: r.get(1)?,
        types: json(r.get(2)?).unwrap_or(Value::Null),
        status: r.get(3)?,
        at_gtid: r.get(4)?,
        create_time: r.get(5)?,
        finish_time: r.get(6)?,
        result: json(r.get(7)?).unwrap_or(Value::Null),
        error: r.get(8)?,
    })
}

const COMPARE_COLUMNS: &str =
    "id, task_id, types, status, at_gtid, create_time, finish_time, result, error";

pub fn insert_compare(
    conn: &Connection,
    id: &str,
    task_id: &str,
    types: &Value,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO dr_compares (id, task_id, types, status, create_time) VALUES (?1, ?2, ?3, 'WAITING_FOR_RUNNING', ?4)",
        params![id, task_id, types.to_string(), now_unix()],
    )?;
    Ok(())
}

pub fn compare_running(conn: &Connection, id: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE dr_compares SET status = 'RUNNING' WHERE id = ?1",
        [id],
    )?;
    Ok(())
}

pub fn finish_compare(
    conn: &Connection,
    id: &str,
    at_gtid: &str,
    result: Result<&Value, &str>,
) -> Result<(), StoreError> {
    let (status, result, error) = Compare::ending(result);
    conn.execute(
        "UPDATE dr_compares SET status = ?2, at_gtid = ?3, result = ?4, error = ?5, finish_time = ?6 WHERE id = ?1",
        params![id, status, at_gtid, result, error, now_unix()],
    )?;
    Ok(())
}

pub fn compares(conn: &Connection, task_id: &str) -> Result<Vec<Compare>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COMPARE_COLUMNS} FROM dr_compares WHERE task_id = ?1 ORDER BY create_time DESC, id"
    ))?;
    let rows = stmt.query_map([task_id], compare_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn compare(conn: &Connection, task_id: &str, id: &str) -> Result<Option<Compare>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COMPARE_COLUMNS} FROM dr_compares WHERE task_id = ?1 AND id = ?2"
        ))?
        .query_row([task_id, id], compare_row)
        .optional()?)
}

/// Tasks that still follow a replication relationship.
pub fn live(conn: &Connection) -> Result<Vec<DrTask>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM dr_tasks WHERE status IN ('syncing', 'sync_failed', 'paused', 'initializing')"
    ))?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn owners(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare("SELECT DISTINCT owner FROM dr_tasks ORDER BY owner")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
