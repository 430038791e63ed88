//! `start_log_server` (MySQL Plus `enable_log_server.md`): serve the chosen
//! MySQL logs over HTTP (Caddy) behind a user and password.

use serde_json::{Value, json};

use super::features::Feature;
use super::schema::{Fields, is_account_name};
use super::{PrepareCx, Prepared, Service};
use crate::error::ApiError;
use crate::store::effect::Effect;

pub const LOG_SERVER: Feature = Feature {
    what: "the log server",
    setting: "log_server",
    stop_service: "stop_log_server",
};

const LOGS: [&str; 5] = [
    "mysql-error",
    "mysql-slow",
    "mysql-audit",
    "mysql-bin",
    "mysql-cert",
];
const RESERVED_HTTP_USERS: [&str; 4] = ["root", "ubuntu", "http", "mysql"];

pub struct StartLogServer;

impl Service for StartLogServer {
    fn name(&self) -> &'static str {
        "start_log_server"
    }

    // The docs (1.1.0) allow main, read-only and analysis instances.
    fn roles(&self) -> &'static [&'static str] {
        &["maininstance", "readinstance", "analysis"]
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn prepare(&self, cx: &PrepareCx<'_>, mut f: Fields) -> Result<Prepared, ApiError> {
        let logs = f.string("mysql_log")?;
        let mut chosen: Vec<&str> = Vec::new();
        for log in logs.split(',').map(str::trim) {
            let Some(known) = LOGS.iter().find(|l| **l == log) else {
                return Err(ApiError::invalid(
                    "service_params.mysql_log",
                    format!("must be a comma-separated list of {}", LOGS.join(", ")),
                ));
            };
            if !chosen.contains(known) {
                chosen.push(known);
            }
        }
        let password = f.password(&["http_password"])?;
        let user = f.checked(
            "http_user",
            "2 to 26 characters of A-Z a-z 0-9 _",
            is_account_name,
        )?;
        if RESERVED_HTTP_USERS.contains(&user.as_str()) {
            return Err(ApiError::invalid(
                "service_params.http_user",
                format!("is reserved; not one of {}", RESERVED_HTTP_USERS.join(", ")),
            ));
        }
        f.finish()?;
        LOG_SERVER.refuse_running(cx.cluster)?;
        Ok(Prepared {
            params: json!({ "mysql_log": chosen.join(","), "http_user": user }),
            secrets: vec![("http_password", password)],
        })
    }

    fn model(&self, cluster_id: &str, params: &Value) -> Effect {
        LOG_SERVER.start(cluster_id, params.clone())
    }
}
