//! `add_ck_user` (MySQL Plus `add_ck_user.md`): a ClickHouse account on the
//! analysis nodes, allowed from a list of networks.

use serde_json::{Value, json};

use super::account_rules::{self, CLICKHOUSE_RESERVED, denied, exists_refusal, refused};
use super::schema::Fields;
use super::{PrepareCx, Prepared, Service, current};
use crate::error::ApiError;
use crate::store::accounts::NewAccount;
use crate::store::effect::{Effect, EffectError};

pub struct AddCkUser;

impl Service for AddCkUser {
    fn name(&self) -> &'static str {
        "add_ck_user"
    }

    fn roles(&self) -> &'static [&'static str] {
        &["analysis"]
    }

    fn idempotent(&self) -> bool {
        false
    }

    fn prepare(&self, cx: &PrepareCx<'_>, mut f: Fields) -> Result<Prepared, ApiError> {
        let passwd = f.password(&["passwd"])?;
        let hosts = f.hosts("host", "::/0")?;
        let user = account_rules::user(&mut f, &CLICKHOUSE_RESERVED)?;
        f.finish()?;
        denied(exists_refusal(
            cx.model,
            &cx.cluster.cluster_id,
            "clickhouse",
            &user,
            None,
        )?)?;
        Ok(Prepared {
            params: json!({ "host": hosts.join(";"), "user": user }),
            secrets: vec![("passwd", passwd)],
        })
    }

    fn model(&self, cluster_id: &str, params: &Value) -> Effect {
        let cluster_id = cluster_id.to_string();
        let user = params["user"].as_str().unwrap_or_default().to_string();
        let host = params["host"].as_str().unwrap_or_default().to_string();
        Box::new(move |conn| {
            current(conn, &cluster_id)?;
            refused(exists_refusal(conn, &cluster_id, "clickhouse", &user, None))?;
            let account = NewAccount {
                engine: "clickhouse",
                user: &user,
                host: &host,
                database: "",
                priv_type: "",
                ssl: false,
            };
            conn.add_account(&cluster_id, &account)
                .map(drop)
                .map_err(EffectError::Store)
        })
    }
}
