//! `del_ck_user` (MySQL Plus `delete_ck_user.md`): delete a ClickHouse account.

use serde_json::{Value, json};

use super::account_rules::{self, CLICKHOUSE_RESERVED, denied, missing_refusal, refused};
use super::schema::Fields;
use super::{PrepareCx, Prepared, Service, current};
use crate::error::ApiError;
use crate::store::effect::{Effect, EffectError};

pub struct DelCkUser;

impl Service for DelCkUser {
    fn name(&self) -> &'static str {
        "del_ck_user"
    }

    fn roles(&self) -> &'static [&'static str] {
        &["analysis"]
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn prepare(&self, cx: &PrepareCx<'_>, mut f: Fields) -> Result<Prepared, ApiError> {
        let user = account_rules::user(&mut f, &CLICKHOUSE_RESERVED)?;
        f.finish()?;
        denied(missing_refusal(
            cx.model,
            &cx.cluster.cluster_id,
            "clickhouse",
            &user,
            None,
        )?)?;
        Ok(Prepared {
            params: json!({ "user": user }),
            secrets: Vec::new(),
        })
    }

    fn model(&self, cluster_id: &str, params: &Value) -> Effect {
        let cluster_id = cluster_id.to_string();
        let user = params["user"].as_str().unwrap_or_default().to_string();
        Box::new(move |conn| {
            current(conn, &cluster_id)?;
            refused(missing_refusal(
                conn,
                &cluster_id,
                "clickhouse",
                &user,
                None,
            ))?;
            conn.delete_account(&cluster_id, "clickhouse", &user, None)
                .map(drop)
                .map_err(EffectError::Store)
        })
    }
}
