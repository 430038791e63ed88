//! A cluster's database accounts.

use super::PgModel;
use crate::clock::{format_ts, now_unix};
use crate::store::StoreError;
use crate::store::postgres::Conn;
use crate::store::types::{Account, NewAccount};

pub fn of_cluster<C: Conn>(m: &PgModel<'_, C>, cluster: &str) -> Result<Vec<Account>, StoreError> {
    let rows = m.rows(
        "SELECT engine, \"user\", host, db, priv, ssl, create_time FROM accounts WHERE cluster_id = $1
         ORDER BY engine DESC, \"user\", host",
        &[&cluster],
    )?;
    Ok(rows
        .iter()
        .map(|r| Account {
            engine: r.get(0),
            user: r.get(1),
            host: r.get(2),
            database: r.get(3),
            priv_type: r.get(4),
            ssl: r.get(5),
            create_time: format_ts(r.get(6)),
        })
        .collect())
}

pub fn exists<C: Conn>(
    m: &PgModel<'_, C>,
    cluster: &str,
    engine: &str,
    user: &str,
    host: Option<&str>,
) -> Result<bool, StoreError> {
    m.exists(
        "SELECT 1 FROM accounts WHERE cluster_id = $1 AND engine = $2 AND \"user\" = $3
         AND ($4::text IS NULL OR host = $4) LIMIT 1",
        &[&cluster, &engine, &user, &host],
    )
}

pub fn add<C: Conn>(
    m: &PgModel<'_, C>,
    cluster: &str,
    a: &NewAccount<'_>,
) -> Result<bool, StoreError> {
    Ok(m.exec(
        "INSERT INTO accounts (cluster_id, engine, \"user\", host, db, priv, ssl, create_time)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        &[
            &cluster,
            &a.engine,
            &a.user,
            &a.host,
            &a.database,
            &a.priv_type,
            &a.ssl,
            &now_unix(),
        ],
    )? == 1)
}

pub fn delete<C: Conn>(
    m: &PgModel<'_, C>,
    cluster: &str,
    engine: &str,
    user: &str,
    host: Option<&str>,
) -> Result<usize, StoreError> {
    Ok(m.exec(
        "DELETE FROM accounts WHERE cluster_id = $1 AND engine = $2 AND \"user\" = $3
         AND ($4::text IS NULL OR host = $4)",
        &[&cluster, &engine, &user, &host],
    )? as usize)
}
