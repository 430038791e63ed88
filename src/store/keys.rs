//! Access keys. Managed only from the local command line.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use crate::auth::KeyRecord;
use crate::clock::now_unix;
use crate::ids;
use crate::secret::Secret;

#[derive(Debug, Clone, serde::Serialize)]
pub struct NewKey {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub owner: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyInfo {
    pub access_key_id: String,
    pub owner: String,
    pub created_at: i64,
    pub revoked: bool,
}

pub fn create(conn: &Connection, owner: &str) -> Result<NewKey, StoreError> {
    let key = NewKey {
        access_key_id: ids::access_key_id(),
        secret_access_key: ids::secret_access_key(),
        owner: owner.to_string(),
    };
    conn.execute(
        "INSERT INTO access_keys (id, secret, owner, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![
            key.access_key_id,
            key.secret_access_key,
            key.owner,
            now_unix()
        ],
    )?;
    Ok(key)
}

pub fn count(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("SELECT COUNT(*) FROM access_keys", [], |r| r.get(0))?)
}

pub fn list(conn: &Connection) -> Result<Vec<KeyInfo>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, owner, created_at, revoked_at IS NOT NULL FROM access_keys ORDER BY created_at, id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(KeyInfo {
            access_key_id: r.get(0)?,
            owner: r.get(1)?,
            created_at: r.get(2)?,
            revoked: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Returns false when no active key has that id.
pub fn revoke(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    let n = conn.execute(
        "UPDATE access_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        params![id, now_unix()],
    )?;
    Ok(n == 1)
}

/// The secret of an active key.
pub fn lookup(conn: &Connection, id: &str) -> Result<Option<KeyRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT secret, owner FROM access_keys WHERE id = ?1 AND revoked_at IS NULL",
    )?;
    Ok(stmt
        .query_row([id], |r| {
            Ok(KeyRecord {
                secret: Secret::new(r.get::<_, String>(0)?),
                owner: r.get(1)?,
            })
        })
        .optional()?)
}
