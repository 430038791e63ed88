//! Access keys. Managed only from the local command line.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use crate::auth::KeyRecord;
use crate::clock::now_unix;
use crate::ids;
use crate::sealing::MasterKey;
use crate::secret::Secret;
use crate::store::StoreError;

/// Binds a sealed secret to its key id.
pub(in crate::store) fn aad(id: &str) -> String {
    format!("access_key:{id}")
}

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

/// Creates a key; its secret is stored sealed under the master key.
pub fn create(conn: &Connection, master: &MasterKey, owner: &str) -> Result<NewKey, StoreError> {
    let key = NewKey {
        access_key_id: ids::access_key_id(),
        secret_access_key: ids::secret_access_key(),
        owner: owner.to_string(),
    };
    conn.execute(
        "INSERT INTO access_keys (id, secret, owner, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![
            key.access_key_id,
            master.seal(key.secret_access_key.as_bytes(), &aad(&key.access_key_id)),
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

/// Announces changes to keys made by another process: running gateways keep
/// keys in memory (see [`super::announced`]).
pub const CHANGES_FILE: &str = "keys.changed";

/// Revokes a key in the data dir and tells running gateways. False when no
/// active key has that id.
pub fn revoke(data_dir: &Path, id: &str) -> Result<bool, StoreError> {
    let mut conn = super::open_rw(&super::db_path(data_dir))?;
    let revoked = super::with_tx(&mut conn, |c| {
        let n = c.execute(
            "UPDATE access_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, now_unix()],
        )?;
        Ok(n == 1)
    })?;
    if revoked {
        super::announced::announce(data_dir, CHANGES_FILE)?;
    }
    Ok(revoked)
}

/// The secret of an active key.
pub fn lookup(
    conn: &Connection,
    master: &MasterKey,
    id: &str,
) -> Result<Option<KeyRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT secret, owner FROM access_keys WHERE id = ?1 AND revoked_at IS NULL",
    )?;
    let row = stmt
        .query_row([id], |r| {
            Ok((Secret::new(r.get::<_, String>(0)?), r.get::<_, String>(1)?))
        })
        .optional()?;
    match row {
        None => Ok(None),
        Some((sealed, owner)) => Ok(Some(KeyRecord::new(
            &master.open(sealed.expose(), &aad(id))?,
            owner,
        ))),
    }
}

/// Seals secrets stored in plain text by versions before sealing existed.
pub fn seal_legacy(conn: &Connection, master: &MasterKey) -> Result<usize, StoreError> {
    let plain: Vec<(String, Secret)> = conn
        .prepare("SELECT id, secret FROM access_keys WHERE secret NOT LIKE 'v1.%'")?
        .query_map([], |r| Ok((r.get(0)?, Secret::new(r.get::<_, String>(1)?))))?
        .collect::<Result<_, _>>()?;
    for (id, secret) in &plain {
        conn.execute(
            "UPDATE access_keys SET secret = ?2 WHERE id = ?1",
            params![id, master.seal(secret.expose().as_bytes(), &aad(id))],
        )?;
    }
    Ok(plain.len())
}
