//! Access keys in PostgreSQL: the same rows and sealing as the SQLite
//! store's (`store/keys.rs`); a revocation is told to every gateway.

use super::{MODEL_CHANNEL, Pg};
use crate::auth::KeyRecord;
use crate::clock::now_unix;
use crate::ids;
use crate::sealing::MasterKey;
use crate::secret::Secret;
use crate::store::StoreError;
use crate::store::keys::{KeyInfo, NewKey, aad};

pub fn create(pg: &Pg, owner: &str) -> Result<NewKey, StoreError> {
    let key = NewKey {
        access_key_id: ids::access_key_id(),
        secret_access_key: ids::secret_access_key(),
        owner: owner.to_string(),
    };
    let sealed = pg
        .master()
        .seal(key.secret_access_key.as_bytes(), &aad(&key.access_key_id));
    pg.with_client(|c, pg| {
        pg.wait(c.execute(
            "INSERT INTO access_keys (id, secret, owner, created_at) VALUES ($1, $2, $3, $4)",
            &[&key.access_key_id, &sealed, &key.owner, &now_unix()],
        ))?;
        Ok(())
    })?;
    Ok(key)
}

/// A first key, unless there is one (under a lock, so that gateways
/// starting at once on an empty database make one key, not one each).
pub fn create_first(pg: &Pg, owner: &str) -> Result<Option<NewKey>, StoreError> {
    let key = NewKey {
        access_key_id: ids::access_key_id(),
        secret_access_key: ids::secret_access_key(),
        owner: owner.to_string(),
    };
    let sealed = pg
        .master()
        .seal(key.secret_access_key.as_bytes(), &aad(&key.access_key_id));
    let made = pg.with_tx(|tx, pg| {
        pg.wait(tx.batch_execute("SELECT pg_advisory_xact_lock(7177002)"))?;
        let n = pg.wait(tx.execute(
            "INSERT INTO access_keys (id, secret, owner, created_at)
             SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM access_keys)",
            &[&key.access_key_id, &sealed, &key.owner, &now_unix()],
        ))?;
        Ok(n == 1)
    })?;
    Ok(made.then_some(key))
}

pub fn count(pg: &Pg) -> Result<i64, StoreError> {
    pg.with_client(|c, pg| {
        Ok(pg
            .wait(c.query_one("SELECT COUNT(*) FROM access_keys", &[]))?
            .get(0))
    })
}

pub fn list(pg: &Pg) -> Result<Vec<KeyInfo>, StoreError> {
    pg.with_client(|c, pg| {
        let rows = pg.wait(c.query(
            "SELECT id, owner, created_at, revoked_at IS NOT NULL FROM access_keys ORDER BY created_at, id",
            &[],
        ))?;
        Ok(rows
            .iter()
            .map(|r| KeyInfo {
                access_key_id: r.get(0),
                owner: r.get(1),
                created_at: r.get(2),
                revoked: r.get(3),
            })
            .collect())
    })
}

/// False when no active key has that id. Every gateway drops its cached
/// keys on the notification, committed with the revocation.
pub fn revoke(pg: &Pg, id: &str) -> Result<bool, StoreError> {
    let revoked = pg.with_tx(|tx, pg| {
        let n = pg.wait(tx.execute(
            "UPDATE access_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            &[&id, &now_unix()],
        ))?;
        pg.wait(tx.batch_execute(&format!("NOTIFY {MODEL_CHANNEL}")))?;
        Ok(n == 1)
    })?;
    pg.model_changed();
    Ok(revoked)
}

pub fn lookup(pg: &Pg, master: &MasterKey, id: &str) -> Result<Option<KeyRecord>, StoreError> {
    let row = pg.with_client(|c, pg| {
        Ok(pg.wait(c.query_opt(
            "SELECT secret, owner FROM access_keys WHERE id = $1 AND revoked_at IS NULL",
            &[&id],
        ))?)
    })?;
    match row {
        None => Ok(None),
        Some(r) => {
            let sealed = Secret::new(r.get::<_, String>(0));
            Ok(Some(KeyRecord::new(
                &master.open(sealed.expose(), &aad(id))?,
                r.get(1),
            )))
        }
    }
}
