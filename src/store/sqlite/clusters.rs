//! The cluster model: what the gateway knows of the clusters it fronts.

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::clock::now_unix;
use crate::store::StoreError;
pub use crate::store::types::{Cluster, ClusterFilter, ClusterView, Layout};

/// Announces changes to clusters made by another process: running gateways
/// keep the clusters they check in memory (see [`super::announced`]).
pub const CHANGES_FILE: &str = "clusters.changed";

/// Tells running gateways that clusters changed outside them. Adding a
/// cluster needs no announcement: absent clusters are never kept.
pub fn announce_change(data_dir: &std::path::Path) -> Result<(), StoreError> {
    super::announced::announce(data_dir, CHANGES_FILE)
}

/// The columns [`from_row`] reads, as a macro so fixed statements can be
/// `concat!`ed rather than formatted on every request.
macro_rules! columns {
    () => {
        "id, owner, zone, name, status, dr_role, standby_of, sync_way, sync_status, create_time, status_time, settings, backend"
    };
}
const COLUMNS: &str = columns!();

fn from_row(r: &Row<'_>) -> rusqlite::Result<Cluster> {
    Ok(Cluster {
        cluster_id: r.get(0)?,
        owner: r.get(1)?,
        zone: r.get(2)?,
        name: r.get(3)?,
        status: r.get(4)?,
        dr_role: r.get(5)?,
        standby_of: r.get(6)?,
        sync_way: r.get(7)?,
        sync_status: r.get(8)?,
        create_time: r.get(9)?,
        status_time: r.get(10)?,
        settings: serde_json::from_str(&r.get::<_, String>(11)?).unwrap_or_default(),
        backend: r.get(12)?,
    })
}

/// Registers a cluster with its nodes; false if the id is taken.
pub fn add(
    conn: &Connection,
    id: &str,
    zone: &str,
    owner: &str,
    name: &str,
    layout: &Layout,
) -> Result<bool, StoreError> {
    create(conn, id, zone, owner, name, &layout.nodes(), "active")
}

/// Inserts a cluster in `status` with `nodes` (id, role; the first is the
/// primary); false if the id is taken.
pub fn create(
    conn: &Connection,
    id: &str,
    zone: &str,
    owner: &str,
    name: &str,
    nodes: &[(String, &str)],
    status: &str,
) -> Result<bool, StoreError> {
    let now = now_unix();
    let n = conn.execute(
        "INSERT INTO clusters (id, owner, zone, name, status, create_time, status_time) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
         ON CONFLICT(id) DO NOTHING",
        params![id, owner, zone, name, status, now],
    )?;
    if n == 0 {
        return Ok(false);
    }
    for (i, (node, role)) in nodes.iter().enumerate() {
        conn.execute(
            "INSERT INTO nodes (id, cluster_id, role, is_primary, status, create_time) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![node, id, role, i == 0, status, now],
        )?;
    }
    Ok(true)
}

pub fn list(conn: &Connection) -> Result<Vec<Cluster>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM clusters ORDER BY owner, id"
    ))?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A cluster visible to `owner`; another owner's cluster is simply not found.
pub fn get_owned(conn: &Connection, owner: &str, id: &str) -> Result<Option<Cluster>, StoreError> {
    let mut stmt = conn.prepare_cached(concat!(
        "SELECT ",
        columns!(),
        " FROM clusters WHERE id = ?1 AND owner = ?2"
    ))?;
    Ok(stmt.query_row(params![id, owner], from_row).optional()?)
}

/// Forgets a cluster, its nodes and accounts, and frees its servers;
/// `Err` says why not (a job of it is pending or running).
pub fn remove(conn: &Connection, id: &str) -> Result<Result<(), String>, StoreError> {
    let open: i64 = conn.query_row(
        "SELECT COUNT(*) FROM jobs WHERE lane = ?1 AND status IN ('pending', 'working')",
        [id],
        |r| r.get(0),
    )?;
    if open > 0 {
        return Ok(Err(format!(
            "{open} job(s) of {id} are pending or running; wait for them"
        )));
    }
    conn.execute("DELETE FROM accounts WHERE cluster_id = ?1", [id])?;
    conn.execute("DELETE FROM nodes WHERE cluster_id = ?1", [id])?;
    super::servers::release(conn, id)?;
    conn.execute("DELETE FROM clusters WHERE id = ?1", [id])?;
    Ok(Ok(()))
}

/// Marks a cluster as run on its servers.
pub fn set_backend(conn: &Connection, id: &str, backend: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE clusters SET backend = ?2 WHERE id = ?1",
        params![id, backend],
    )?;
    Ok(())
}

/// Records a standby's sync status as last observed on its servers.
pub fn set_sync_status(conn: &Connection, id: &str, status: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE clusters SET sync_status = ?2, status_time = ?3 WHERE id = ?1 AND standby_of IS NOT NULL",
        params![id, status, now_unix()],
    )?;
    Ok(())
}

/// Makes `id` a standby of `source` (the model of `start_standby`).
pub fn set_standby(
    conn: &Connection,
    id: &str,
    source: &str,
    sync_way: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE clusters SET dr_role = 'standby', standby_of = ?2, sync_way = ?3, sync_status = 'NORMAL', status_time = ?4
         WHERE id = ?1",
        params![id, source, sync_way, now_unix()],
    )?;
    Ok(())
}

/// Ends a DR relationship: the cluster is an independent primary again.
pub fn clear_standby(conn: &Connection, id: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE clusters SET dr_role = 'primary', standby_of = NULL, sync_status = NULL, status_time = ?2
         WHERE id = ?1",
        params![id, now_unix()],
    )?;
    Ok(())
}

/// Any cluster by id (the model's own view, owner-blind; callers check owners).
pub fn get(conn: &Connection, id: &str) -> Result<Option<Cluster>, StoreError> {
    let mut stmt = conn.prepare_cached(concat!(
        "SELECT ",
        columns!(),
        " FROM clusters WHERE id = ?1"
    ))?;
    Ok(stmt.query_row([id], from_row).optional()?)
}

/// The direct standbys of `id`, by id.
pub fn standbys_of(conn: &Connection, id: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT id FROM clusters WHERE standby_of = ?1 ORDER BY id")?;
    let rows = stmt.query_map([id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Points `id` at a new primary (`None`: it becomes an independent primary).
pub fn set_primary_of(
    conn: &Connection,
    id: &str,
    primary: Option<&str>,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE clusters SET standby_of = ?2,
                dr_role = CASE WHEN ?2 IS NULL THEN 'primary' ELSE 'standby' END,
                sync_status = CASE WHEN ?2 IS NULL THEN NULL ELSE 'NORMAL' END,
                sync_way = CASE WHEN ?2 IS NULL THEN NULL ELSE COALESCE(sync_way, 'full') END,
                status_time = ?3
         WHERE id = ?1",
        params![id, primary, now_unix()],
    )?;
    Ok(())
}

pub fn set_status(conn: &Connection, id: &str, status: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE clusters SET status = ?2, status_time = ?3 WHERE id = ?1",
        params![id, status, now_unix()],
    )?;
    Ok(())
}

/// QingCloud's `transition_status`: what the cluster is going through now.
fn transition(status: &str, running: Option<String>) -> &'static str {
    match (status, running.as_deref()) {
        ("pending", _) => "creating",
        (_, None) => "",
        (_, Some("DeleteClusters")) => "deleting",
        (_, Some("StartClusters")) => "starting",
        (_, Some("StopClusters")) => "stopping",
        (_, Some("RestartClusterService")) => "restarting",
        (_, Some(_)) => "updating",
    }
}

/// Newest first; `total` counts every match before paging.
pub fn describe(
    conn: &Connection,
    f: &ClusterFilter,
) -> Result<(Vec<ClusterView>, u64), StoreError> {
    use rusqlite::types::Value as SqlValue;
    let mut w = super::filter::Where::new("c.owner", &f.owner);
    w.eq("c.zone", f.zone.as_ref());
    // Destroyed clusters are listed only when asked for by status.
    if f.statuses.is_empty() {
        w.and("c.status <> 'ceased'");
    }
    w.any_of("c.id", &f.ids)
        .any_of("c.status", &f.statuses)
        .search("c.id", "c.name", f.search_word.as_ref());
    let super::filter::Where { clause, mut args } = w;
    let total: i64 = conn
        .prepare_cached(&format!("SELECT COUNT(*) FROM clusters c WHERE {clause}"))?
        .query_row(rusqlite::params_from_iter(args.iter()), |r| r.get(0))?;
    args.push(SqlValue::Integer(f.limit as i64));
    args.push(SqlValue::Integer(f.offset.min(i64::MAX as u64) as i64));
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT c.id, c.name, c.owner, c.zone, c.status,
                (SELECT j.action FROM jobs j WHERE j.status = 'working' AND j.lane = c.id LIMIT 1),
                c.create_time, c.status_time, c.standby_of, c.sync_status, c.sync_way, c.settings,
                c.backend
         FROM clusters c
         WHERE {clause} ORDER BY c.create_time DESC, c.id LIMIT ? OFFSET ?"
    ))?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), |r| {
        let standby_of: Option<String> = r.get(8)?;
        Ok(ClusterView {
            cluster_id: r.get(0)?,
            name: r.get(1)?,
            owner: r.get(2)?,
            zone: r.get(3)?,
            status: r.get(4)?,
            transition_status: transition(&r.get::<_, String>(4)?, r.get(5)?).into(),
            create_time: crate::clock::format_ts(r.get(6)?),
            status_time: crate::clock::format_ts(r.get(7)?),
            dr: serde_json::json!({
                "role": if standby_of.is_some() { "STANDBY" } else { "PRIMARY" },
                "primary": standby_of,
                "sync_status": r.get::<_, Option<String>>(9)?,
                "sync_way": r.get::<_, Option<String>>(10)?,
            }),
            settings: serde_json::from_str(&r.get::<_, String>(11)?).unwrap_or_default(),
            executor: r.get(12)?,
            accounts: Vec::new(),
        })
    })?;
    let mut set: Vec<ClusterView> = rows.collect::<Result<_, _>>()?;
    for c in &mut set {
        c.accounts = super::accounts::list(conn, &c.cluster_id)?;
    }
    Ok((set, total as u64))
}

/// One setting of a cluster, as custom services record it.
pub fn setting(
    conn: &Connection,
    id: &str,
    key: &str,
) -> Result<Option<serde_json::Value>, StoreError> {
    let raw: Option<String> = conn
        .query_row("SELECT settings FROM clusters WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?;
    let settings: serde_json::Value = raw
        .map(|s| serde_json::from_str(&s))
        .transpose()?
        .unwrap_or_default();
    Ok(settings.get(key).cloned())
}

pub fn set_setting(
    conn: &Connection,
    id: &str,
    key: &str,
    value: &serde_json::Value,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE clusters SET settings = json_set(settings, '$.' || ?2, json(?3)), status_time = ?4 WHERE id = ?1",
        params![id, key, value.to_string(), now_unix()],
    )?;
    Ok(())
}

/// Removes a setting (a feature that was stopped).
pub fn clear_setting(conn: &Connection, id: &str, key: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE clusters SET settings = json_remove(settings, '$.' || ?2), status_time = ?3 WHERE id = ?1",
        params![id, key, now_unix()],
    )?;
    Ok(())
}
