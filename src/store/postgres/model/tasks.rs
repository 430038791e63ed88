//! DR tasks' listing, logs and insert.

use crate::store::postgres::Conn;

use super::{PgModel, TASK, Where, task};
use crate::clock::now_unix;
use crate::store::StoreError;
use crate::store::types::{DrTask, LogLine, TaskFilter};

pub fn list<C: Conn>(m: &PgModel<'_, C>, f: &TaskFilter) -> Result<(Vec<DrTask>, u64), StoreError> {
    let mut w = Where::new("owner", &f.owner);
    if f.statuses.is_empty() {
        w.and("status <> 'deleted'");
    }
    w.any_of("id", &f.ids).any_of("status", &f.statuses).search(
        "id",
        "name",
        f.search_word.as_ref(),
    );
    let total = m.count("dr_tasks", &w)?;
    let paged = w.page(f.limit, f.offset);
    let rows = m.rows(
        &format!(
            "SELECT {TASK} FROM dr_tasks WHERE {} ORDER BY create_time DESC, id {paged}",
            w.clause
        ),
        &w.params(),
    )?;
    Ok((rows.iter().map(task).collect(), total))
}

pub fn logs<C: Conn>(
    m: &PgModel<'_, C>,
    id: &str,
    levels: &[String],
    offset: u64,
    limit: u64,
) -> Result<(Vec<LogLine>, u64), StoreError> {
    let rows = m.rows(
        "SELECT time_ms, level, code, job_id, message FROM dr_task_logs WHERE task_id = $1 ORDER BY n",
        &[&id],
    )?;
    let matching: Vec<LogLine> = rows
        .iter()
        .map(|r| LogLine {
            time: crate::clock::format_ts(r.get::<_, i64>(0) / 1000),
            level: r.get(1),
            code: r.get(2),
            job_id: r.get(3),
            message: r.get(4),
        })
        .filter(|l| levels.is_empty() || levels.contains(&l.level))
        .collect();
    let total = matching.len() as u64;
    let page = matching
        .into_iter()
        .skip(offset.min(usize::MAX as u64) as usize)
        .take(limit.min(usize::MAX as u64) as usize)
        .collect();
    Ok((page, total))
}

pub fn insert<C: Conn>(m: &PgModel<'_, C>, t: &DrTask) -> Result<bool, StoreError> {
    Ok(m.exec(
        "INSERT INTO dr_tasks (id, owner, zone, name, description, direction, standby_cluster, source_cluster,
             source_endpoint, source_user, source_secret, sync_way, objects, flow_control, migrate_definer,
             status, status_time, create_time)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17)
         ON CONFLICT (id) DO NOTHING",
        &[
            &t.id,
            &t.owner,
            &t.zone,
            &t.name,
            &t.description,
            &t.direction,
            &t.standby_cluster,
            &t.source_cluster,
            &t.source_endpoint,
            &t.source_user,
            &t.source_secret,
            &t.sync_way,
            &t.objects.to_string(),
            &t.flow_control.to_string(),
            &t.migrate_definer,
            &t.status,
            &now_unix(),
        ],
    )? == 1)
}
