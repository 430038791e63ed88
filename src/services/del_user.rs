//! `del_user` (MySQL Plus `delete_user.md`): delete a MySQL account at each
//! of the given hosts.

use serde_json::{Value, json};

use super::account_rules::{self, MYSQL_RESERVED, denied, missing_refusal, refused};
use super::schema::Fields;
use super::{PrepareCx, Prepared, Service, current};
use crate::error::ApiError;
use crate::store::effect::{Effect, EffectError};

pub struct DelUser;

impl Service for DelUser {
    fn name(&self) -> &'static str {
        "del_user"
    }

    fn roles(&self) -> &'static [&'static str] {
        &["maininstance"]
    }

    // Deleting what is gone is refused, not repeated: safe to retry.
    fn idempotent(&self) -> bool {
        true
    }

    fn prepare(&self, cx: &PrepareCx<'_>, mut f: Fields) -> Result<Prepared, ApiError> {
        let hosts = f.hosts("host", "%")?;
        let user = account_rules::user(&mut f, &MYSQL_RESERVED)?;
        f.finish()?;
        for host in &hosts {
            denied(missing_refusal(
                cx.model,
                &cx.cluster.cluster_id,
                "mysql",
                &user,
                Some(host),
            )?)?;
        }
        Ok(Prepared {
            params: json!({ "host": hosts.join(";"), "user": user }),
            secrets: Vec::new(),
        })
    }

    fn model(&self, cluster_id: &str, params: &Value) -> Effect {
        let cluster_id = cluster_id.to_string();
        let user = params["user"].as_str().unwrap_or_default().to_string();
        let hosts = params["host"].as_str().unwrap_or_default().to_string();
        Box::new(move |conn| {
            current(conn, &cluster_id)?;
            for host in hosts.split(';') {
                refused(missing_refusal(
                    conn,
                    &cluster_id,
                    "mysql",
                    &user,
                    Some(host),
                ))?;
                conn.delete_account(&cluster_id, "mysql", &user, Some(host))
                    .map_err(EffectError::Store)?;
            }
            Ok(())
        })
    }
}
