//! Registered MariaDB servers: where they listen, the admin account qcgate
//! uses on them (password sealed), and the cluster node each one is.

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::clock::now_unix;
use crate::sealing::MasterKey;
use crate::secret::Secret;
use crate::store::StoreError;
pub use crate::store::types::{NewServer, Server};

const COLUMNS: &str =
    "endpoint, zone, admin_user, admin_secret, server_id, version, cluster_id, node_id";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Server> {
    Ok(Server {
        endpoint: r.get(0)?,
        zone: r.get(1)?,
        admin_user: r.get(2)?,
        admin_secret: r.get(3)?,
        server_id: r.get(4)?,
        version: r.get(5)?,
        cluster_id: r.get(6)?,
        node_id: r.get(7)?,
    })
}

pub(in crate::store) fn aad(endpoint: &str) -> String {
    format!("server_admin:{endpoint}")
}

/// Registers a server; false if its endpoint is already registered.
pub fn add(conn: &Connection, master: &MasterKey, s: &NewServer<'_>) -> Result<bool, StoreError> {
    let sealed = master.seal(s.admin_password.expose().as_bytes(), &aad(s.endpoint));
    let n = conn.execute(
        "INSERT INTO servers (endpoint, zone, admin_user, admin_secret, server_id, version, create_time)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(endpoint) DO NOTHING",
        params![
            s.endpoint,
            s.zone,
            s.admin_user,
            sealed,
            s.server_id,
            s.version,
            now_unix()
        ],
    )?;
    Ok(n == 1)
}

/// The admin password of a server.
pub fn open_password(master: &MasterKey, s: &Server) -> Result<Secret, StoreError> {
    Ok(master.open(&s.admin_secret, &aad(&s.endpoint))?)
}

pub fn list(conn: &Connection) -> Result<Vec<Server>, StoreError> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM servers ORDER BY endpoint"))?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn get(conn: &Connection, endpoint: &str) -> Result<Option<Server>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM servers WHERE endpoint = ?1"
        ))?
        .query_row([endpoint], from_row)
        .optional()?)
}

/// The servers that are nodes of `cluster_id`, keyed by node.
pub fn of_cluster(conn: &Connection, cluster_id: &str) -> Result<Vec<Server>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM servers WHERE cluster_id = ?1 ORDER BY endpoint"
    ))?;
    let rows = stmt.query_map([cluster_id], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Free servers of a zone, oldest registration first.
pub fn free_in_zone(conn: &Connection, zone: &str) -> Result<Vec<Server>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM servers WHERE zone = ?1 AND cluster_id IS NULL ORDER BY create_time, endpoint"
    ))?;
    let rows = stmt.query_map([zone], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whether a zone has any registered server (its new clusters are built on them).
pub fn zone_has_servers(conn: &Connection, zone: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM servers WHERE zone = ?1 LIMIT 1")?
        .exists([zone])?)
}

/// Makes a server the node `node_id` of `cluster_id`; false if it is not free.
pub fn bind(
    conn: &Connection,
    endpoint: &str,
    cluster_id: &str,
    node_id: &str,
) -> Result<bool, StoreError> {
    let n = conn.execute(
        "UPDATE servers SET cluster_id = ?2, node_id = ?3 WHERE endpoint = ?1 AND cluster_id IS NULL",
        params![endpoint, cluster_id, node_id],
    )?;
    Ok(n == 1)
}

/// Frees the servers of a cluster (it was deleted).
pub fn release(conn: &Connection, cluster_id: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE servers SET cluster_id = NULL, node_id = NULL WHERE cluster_id = ?1",
        [cluster_id],
    )?;
    Ok(())
}

/// Removes a free server; `Err` names the cluster holding it.
pub fn remove(conn: &Connection, endpoint: &str) -> Result<Result<bool, String>, StoreError> {
    match get(conn, endpoint)? {
        None => Ok(Ok(false)),
        Some(Server {
            cluster_id: Some(c),
            ..
        }) => Ok(Err(c)),
        Some(_) => {
            conn.execute("DELETE FROM servers WHERE endpoint = ?1", [endpoint])?;
            Ok(Ok(true))
        }
    }
}

/// The user of the replication account qcgate creates on the servers it
/// links (with `sql_log_bin=0`, so it adds no transaction).
pub const REPL_USER: &str = "qcgate_repl";
pub(in crate::store) const REPL_META: &str = "repl_secret";
pub(in crate::store) const REPL_AAD: &str = "repl_account";

/// The password of [`REPL_USER`], created on first use and sealed.
pub fn repl_password(conn: &Connection, master: &MasterKey) -> Result<Secret, StoreError> {
    let sealed: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE name = ?1", [REPL_META], |r| {
            r.get(0)
        })
        .optional()?;
    if let Some(sealed) = sealed {
        return Ok(master.open(&sealed, REPL_AAD)?);
    }
    // Upper, lower, digit and a symbol, as MySQL Plus's policy asks.
    let fresh = Secret::new(format!("Qr{}7_", crate::ids::secret_access_key()));
    conn.execute(
        "INSERT INTO meta (name, value) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING",
        params![REPL_META, master.seal(fresh.expose().as_bytes(), REPL_AAD)],
    )?;
    let sealed: String =
        conn.query_row("SELECT value FROM meta WHERE name = ?1", [REPL_META], |r| {
            r.get(0)
        })?;
    Ok(master.open(&sealed, REPL_AAD)?)
}
