//! Database accounts made by `add_user` / `add_ck_user`. Passwords are never
//! kept here: they travel sealed with the job and are gone when it ends.

use rusqlite::{Connection, params};

use crate::clock::{format_ts, now_unix};
use crate::store::StoreError;
pub use crate::store::types::{Account, NewAccount};

pub fn list(conn: &Connection, cluster_id: &str) -> Result<Vec<Account>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT engine, user, host, db, priv, ssl, create_time FROM accounts WHERE cluster_id = ?1
         ORDER BY engine DESC, user, host",
    )?;
    let rows = stmt.query_map([cluster_id], |r| {
        Ok(Account {
            engine: r.get(0)?,
            user: r.get(1)?,
            host: r.get(2)?,
            database: r.get(3)?,
            priv_type: r.get(4)?,
            ssl: r.get(5)?,
            create_time: format_ts(r.get(6)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whether `user` exists, at `host` if given (any host otherwise).
pub fn exists(
    conn: &Connection,
    cluster_id: &str,
    engine: &str,
    user: &str,
    host: Option<&str>,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM accounts WHERE cluster_id = ?1 AND engine = ?2 AND user = ?3 AND (?4 IS NULL OR host = ?4)",
        )?
        .exists(params![cluster_id, engine, user, host])?)
}

/// Adds the account; false if it exists.
pub fn add(conn: &Connection, cluster_id: &str, a: &NewAccount<'_>) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "INSERT INTO accounts (cluster_id, engine, user, host, db, priv, ssl, create_time)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING",
        params![
            cluster_id,
            a.engine,
            a.user,
            a.host,
            a.database,
            a.priv_type,
            a.ssl,
            now_unix()
        ],
    )? == 1)
}

/// Deletes `user` at `host` (every host if `None`); returns how many went.
pub fn delete(
    conn: &Connection,
    cluster_id: &str,
    engine: &str,
    user: &str,
    host: Option<&str>,
) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "DELETE FROM accounts WHERE cluster_id = ?1 AND engine = ?2 AND user = ?3 AND (?4 IS NULL OR host = ?4)",
        params![cluster_id, engine, user, host],
    )?)
}
