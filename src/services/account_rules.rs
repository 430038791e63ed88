//! What the account services share: which names are reserved, and checking
//! the model when the job's effect is applied.

use crate::store::model::Model;

use super::schema::{Fields, is_account_name};
use crate::error::ApiError;
use crate::store::StoreError;
use crate::store::effect::EffectError;

/// MySQL accounts MySQL Plus keeps for itself (`add_user.md`, `delete_user.md`).
pub const MYSQL_RESERVED: [&str; 4] = ["root", "qc_admin", "qc_repl", "qc_check"];
/// ClickHouse's own account (`add_ck_user.md`).
pub const CLICKHOUSE_RESERVED: [&str; 1] = ["default"];

/// `service_params.user`: 2 to 26 of `[A-Za-z0-9_]`, none of `reserved`.
pub fn user(f: &mut Fields, reserved: &[&str]) -> Result<String, ApiError> {
    let user = f.checked(
        "user",
        "2 to 26 characters of A-Z a-z 0-9 _",
        is_account_name,
    )?;
    if reserved.contains(&user.as_str()) {
        return Err(ApiError::invalid(
            "service_params.user",
            format!("is reserved; not one of {}", reserved.join(", ")),
        ));
    }
    Ok(user)
}

/// Why an account may not be added: it exists already. `None`: it may.
pub fn exists_refusal(
    conn: &dyn Model,
    cluster_id: &str,
    engine: &str,
    user: &str,
    host: Option<&str>,
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .account_exists(cluster_id, engine, user, host)?
        .then(|| {
            format!(
                "account [{}] already exists on cluster [{cluster_id}]",
                shown(user, host)
            )
        }))
}

/// Why an account may not be deleted: it does not exist. `None`: it may.
pub fn missing_refusal(
    conn: &dyn Model,
    cluster_id: &str,
    engine: &str,
    user: &str,
    host: Option<&str>,
) -> Result<Option<String>, StoreError> {
    Ok(
        (!conn.account_exists(cluster_id, engine, user, host)?).then(|| {
            format!(
                "account [{}] does not exist on cluster [{cluster_id}]",
                shown(user, host)
            )
        }),
    )
}

fn shown(user: &str, host: Option<&str>) -> String {
    match host {
        Some(h) => format!("{user}@{h}"),
        None => user.to_string(),
    }
}

/// A refusal found at validation.
pub fn denied(why: Option<String>) -> Result<(), ApiError> {
    why.map_or(Ok(()), |w| Err(ApiError::PermissionDenied(w)))
}

/// The same refusal found when the effect is applied (another job ran since).
pub fn refused(why: Result<Option<String>, StoreError>) -> Result<(), EffectError> {
    match why {
        Ok(None) => Ok(()),
        Ok(Some(w)) => Err(EffectError::Refused(
            ApiError::PermissionDenied(w).to_string(),
        )),
        Err(e) => Err(EffectError::Store(e)),
    }
}
