//! The cluster model: what the gateway knows of the clusters it fronts.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::StoreError;
use crate::clock::now_unix;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Cluster {
    pub cluster_id: String,
    pub owner: String,
    pub zone: String,
    pub name: String,
    pub status: String,
    /// `primary` or `standby` in a DR relationship.
    pub dr_role: String,
    pub standby_of: Option<String>,
    pub sync_way: Option<String>,
    pub sync_status: Option<String>,
    pub create_time: i64,
    pub status_time: i64,
}

const COLUMNS: &str = "id, owner, zone, name, status, dr_role, standby_of, sync_way, sync_status, create_time, status_time";

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
    })
}

/// Registers a cluster; false if the id is taken.
pub fn add(
    conn: &Connection,
    id: &str,
    zone: &str,
    owner: &str,
    name: &str,
) -> Result<bool, StoreError> {
    let now = now_unix();
    let n = conn.execute(
        "INSERT INTO clusters (id, owner, zone, name, create_time, status_time) VALUES (?1, ?2, ?3, ?4, ?5, ?5)
         ON CONFLICT(id) DO NOTHING",
        params![id, owner, zone, name, now],
    )?;
    Ok(n == 1)
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
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM clusters WHERE id = ?1 AND owner = ?2"
    ))?;
    Ok(stmt.query_row(params![id, owner], from_row).optional()?)
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
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM clusters WHERE id = ?1"))?;
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
