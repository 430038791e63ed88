//! `migrate_data` (MySQL Plus `enable_migration.md`): import a remote
//! database, by mysqldump from a host or by xtrabackup from another cluster.
//! Runs until `stop_migrate`.

use serde_json::{Value, json};

use super::features::Feature;
use super::schema::{Fields, is_db_user, is_host};
use super::{PrepareCx, Prepared, Service};
use crate::error::ApiError;
use crate::ids::is_cluster_id;
use crate::store::effect::Effect;

pub const MIGRATION: Feature = Feature {
    what: "a data migration",
    setting: "migration",
    stop_service: "stop_migrate",
};

pub struct MigrateData;

/// Fields that belong to one mode only.
const DUMP_ONLY: [&str; 2] = ["host", "port"];
const XTRABACKUP_ONLY: [&str; 1] = ["cluster_id"];

impl Service for MigrateData {
    fn name(&self) -> &'static str {
        "migrate_data"
    }

    fn roles(&self) -> &'static [&'static str] {
        &["maininstance"]
    }

    // An import that ran partly would import twice.
    fn idempotent(&self) -> bool {
        false
    }

    fn blocked_on_standby(&self) -> Option<&'static str> {
        Some("writes into the database its source replicates to")
    }

    fn dial_targets(&self, params: &Value) -> Vec<String> {
        params["host"]
            .as_str()
            .map(str::to_string)
            .into_iter()
            .collect()
    }

    fn prepare(&self, cx: &PrepareCx<'_>, mut f: Fields) -> Result<Prepared, ApiError> {
        let xtrabackup = f.opt_switch("xtrabackup", false)?;
        let (mode, other_mode) = if xtrabackup {
            (("xtrabackup=YES", &XTRABACKUP_ONLY[..]), &DUMP_ONLY[..])
        } else {
            (("xtrabackup=NO", &DUMP_ONLY[..]), &XTRABACKUP_ONLY[..])
        };
        if let Some(stray) = other_mode.iter().find(|k| f.has(k)) {
            return Err(ApiError::invalid(
                &format!("service_params.{stray}"),
                format!("is not a field of {} migrations", mode.0),
            ));
        }
        let passwd = f.secret(&["passwd"], 128)?;
        let user = f.checked(
            "user",
            "a database account name (1-32 of A-Z a-z 0-9 _ . -)",
            is_db_user,
        )?;
        let mut params =
            json!({ "xtrabackup": if xtrabackup { "YES" } else { "NO" }, "user": user });
        if xtrabackup {
            let source = f.checked(
                "cluster_id",
                "a cluster id such as cl-9np7ig3g",
                is_cluster_id,
            )?;
            if source == cx.cluster.cluster_id {
                return Err(ApiError::invalid(
                    "service_params.cluster_id",
                    "must name the remote cluster, not the cluster itself",
                ));
            }
            params["cluster_id"] = json!(source);
        } else {
            params["host"] = json!(f.checked("host", "an IP address or host name", is_host)?);
            params["port"] = json!(f.int("port", 1, 65535)?);
        }
        f.finish()?;
        MIGRATION.refuse_running(cx.cluster)?;
        Ok(Prepared {
            params,
            secrets: vec![("passwd", passwd)],
        })
    }

    fn model(&self, cluster_id: &str, params: &Value) -> Effect {
        MIGRATION.start(cluster_id, params.clone())
    }
}
