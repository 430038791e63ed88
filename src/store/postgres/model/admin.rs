//! What the local commands change (`servers add|remove`, `clusters remove`).

use crate::store::postgres::Conn;

use super::PgModel;
use crate::clock::now_unix;
use crate::sealing::MasterKey;
use crate::store::StoreError;
use crate::store::model::Model;
use crate::store::servers::aad;
use crate::store::types::NewServer;

pub fn add_server<C: Conn>(
    m: &PgModel<'_, C>,
    master: &MasterKey,
    s: &NewServer<'_>,
) -> Result<bool, StoreError> {
    let sealed = master.seal(s.admin_password.expose().as_bytes(), &aad(s.endpoint));
    Ok(m.exec(
        "INSERT INTO servers (endpoint, zone, admin_user, admin_secret, server_id, version, create_time)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (endpoint) DO NOTHING",
        &[
            &s.endpoint,
            &s.zone,
            &s.admin_user,
            &sealed,
            &i64::from(s.server_id),
            &s.version,
            &now_unix(),
        ],
    )? == 1)
}

pub fn remove_server<C: Conn>(
    m: &PgModel<'_, C>,
    endpoint: &str,
) -> Result<Result<bool, String>, StoreError> {
    match m.server(endpoint)? {
        None => Ok(Ok(false)),
        Some(s) => match s.cluster_id {
            Some(c) => Ok(Err(c)),
            None => {
                m.exec("DELETE FROM servers WHERE endpoint = $1", &[&endpoint])?;
                Ok(Ok(true))
            }
        },
    }
}

pub fn remove_cluster<C: Conn>(
    m: &PgModel<'_, C>,
    id: &str,
) -> Result<Result<(), String>, StoreError> {
    let open: i64 = m
        .rows(
            "SELECT COUNT(*) FROM jobs WHERE lane = $1 AND status IN ('pending', 'working')",
            &[&id],
        )?
        .first()
        .map(|r| r.get(0))
        .unwrap_or(0);
    if open > 0 {
        return Ok(Err(format!(
            "{open} job(s) of {id} are pending or running; wait for them"
        )));
    }
    m.exec("DELETE FROM accounts WHERE cluster_id = $1", &[&id])?;
    m.exec("DELETE FROM nodes WHERE cluster_id = $1", &[&id])?;
    m.release_servers(id)?;
    m.exec("DELETE FROM clusters WHERE id = $1", &[&id])?;
    Ok(Ok(()))
}
