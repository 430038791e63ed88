//! `add_user` (MySQL Plus `add_user.md`): a MySQL account, one per host.

use serde_json::{Value, json};

use super::account_rules::{self, MYSQL_RESERVED, denied, exists_refusal, refused};
use super::schema::Fields;
use super::{PrepareCx, Prepared, Service, current};
use crate::error::ApiError;
use crate::store::accounts::NewAccount;
use crate::store::effect::{Effect, EffectError};

pub struct AddUser;

const PRIVILEGES: [&str; 2] = ["StandardAccount", "SuperuserAccount"];

/// One database name, or `*` for all.
fn is_database(s: &str) -> bool {
    s == "*"
        || ((1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$' | b'-')))
}

impl Service for AddUser {
    fn name(&self) -> &'static str {
        "add_user"
    }

    fn roles(&self) -> &'static [&'static str] {
        &["maininstance"]
    }

    // Creating an account twice fails the second time: never repeated.
    fn idempotent(&self) -> bool {
        false
    }

    fn prepare(&self, cx: &PrepareCx<'_>, mut f: Fields) -> Result<Prepared, ApiError> {
        let database = f.checked("database", "one database name or *", is_database)?;
        let passwd = f.password(&["passwd"])?;
        let ssl = f.opt_switch("ssl", false)?;
        let hosts = f.hosts("host", "%")?;
        let user = account_rules::user(&mut f, &MYSQL_RESERVED)?;
        let privilege = match f.opt_string("priv")? {
            None => PRIVILEGES[0].to_string(),
            Some(p) if PRIVILEGES.contains(&p.as_str()) => p,
            Some(_) => {
                return Err(ApiError::invalid(
                    "service_params.priv",
                    format!("must be one of {}", PRIVILEGES.join(", ")),
                ));
            }
        };
        f.finish()?;
        let c = cx.cluster;
        if ssl && !c.switch_on("ssl") {
            return Err(ApiError::PermissionDenied(format!(
                "an account with ssl YES needs SSL on cluster [{}]; run configuring_SSL first",
                c.cluster_id
            )));
        }
        for host in &hosts {
            denied(exists_refusal(
                cx.model,
                &c.cluster_id,
                "mysql",
                &user,
                Some(host),
            )?)?;
        }
        Ok(Prepared {
            params: json!({
                "database": database,
                "ssl": if ssl { "YES" } else { "NO" },
                "host": hosts.join(";"),
                "user": user,
                "priv": privilege,
            }),
            secrets: vec![("passwd", passwd)],
        })
    }

    fn model(&self, cluster_id: &str, params: &Value) -> Effect {
        let cluster_id = cluster_id.to_string();
        let params = params.clone();
        Box::new(move |conn| {
            current(conn, &cluster_id)?;
            let text = |k: &str| params[k].as_str().unwrap_or_default().to_string();
            let user = text("user");
            for host in text("host").split(';') {
                refused(exists_refusal(
                    conn,
                    &cluster_id,
                    "mysql",
                    &user,
                    Some(host),
                ))?;
                let account = NewAccount {
                    engine: "mysql",
                    user: &user,
                    host,
                    database: &text("database"),
                    priv_type: &text("priv"),
                    ssl: params["ssl"] == "YES",
                };
                conn.add_account(&cluster_id, &account)
                    .map_err(EffectError::Store)?;
            }
            Ok(())
        })
    }
}
