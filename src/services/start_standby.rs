//! `start_standby`: make this cluster a DR standby of a source cluster
//! (MySQL Plus `enable_standby.md`, seed 001). Runs on the standby.

use serde_json::{Value, json};

use super::schema::{Fields, is_db_user, is_host};
use super::{PrepareCx, Prepared, Service};
use crate::error::ApiError;
use crate::ids::{is_cluster_id, is_zone};
use crate::store::effect::{Effect, EffectError};

pub struct StartStandby;

impl Service for StartStandby {
    fn name(&self) -> &'static str {
        "start_standby"
    }

    fn roles(&self) -> &'static [&'static str] {
        &["maininstance"]
    }

    // Starting replication twice against a live source is not known to be
    // harmless on a real cluster, so an interrupted run is not repeated.
    fn idempotent(&self) -> bool {
        false
    }

    // An executor connects to the source database to start replication.
    fn dial_targets(&self, params: &Value) -> Vec<String> {
        params["host"]
            .as_str()
            .map(str::to_string)
            .into_iter()
            .collect()
    }

    fn prepare(&self, cx: &PrepareCx<'_>, mut f: Fields) -> Result<Prepared, ApiError> {
        let sync_way = f.one_of("sync_way", &["full", "increment"])?;
        let zone = f.checked("zone", "a lower-case zone id such as sh1a", is_zone)?;
        let host = f.checked("host", "an IP address or host name", is_host)?;
        let source = f.checked(
            "cluster_id",
            "a cluster id such as cl-9np7ig3g",
            is_cluster_id,
        )?;
        let user = f.checked(
            "user",
            "a database account name (1-32 of A-Z a-z 0-9 _ . -)",
            is_db_user,
        )?;
        let password = f.secret(&["passwd", "password"], 128)?;
        let port = f.int("port", 1, 65535)?;
        f.finish()?;

        let c = cx.cluster;
        if source == c.cluster_id {
            return Err(ApiError::invalid(
                "service_params.cluster_id",
                "must name the source cluster, not the cluster itself",
            ));
        }
        refuse_if_standby(&c.cluster_id, c.standby_of.as_deref())?;
        if c.status != "active" {
            return Err(ApiError::PermissionDenied(format!(
                "cluster [{}] is {}, start it before starting a standby",
                c.cluster_id, c.status
            )));
        }
        Ok(Prepared {
            params: json!({
                "sync_way": sync_way,
                "zone": zone,
                "host": host,
                "cluster_id": source,
                "user": user,
                "port": port,
            }),
            secrets: vec![("passwd", password)],
        })
    }

    fn model(&self, cluster_id: &str, params: &Value) -> Effect {
        let cluster_id = cluster_id.to_string();
        let source = params["cluster_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let sync_way = params["sync_way"].as_str().unwrap_or("full").to_string();
        Box::new(move |conn| {
            // Re-checked here: another job on this cluster may have run since.
            let standby_of = conn
                .cluster(&cluster_id)
                .map_err(EffectError::Store)?
                .map(|c| c.standby_of);
            let Some(standby_of) = standby_of else {
                return Err(EffectError::Refused(format!(
                    "cluster [{cluster_id}] no longer exists"
                )));
            };
            refuse_if_standby(&cluster_id, standby_of.as_deref())
                .map_err(|e| EffectError::Refused(e.to_string()))?;
            conn.set_standby(&cluster_id, &source, &sync_way)
                .map_err(EffectError::Store)
        })
    }
}

fn refuse_if_standby(cluster_id: &str, standby_of: Option<&str>) -> Result<(), ApiError> {
    match standby_of {
        Some(src) => Err(ApiError::PermissionDenied(format!(
            "cluster [{cluster_id}] is already a standby of [{src}]; run stop_standby first"
        ))),
        None => Ok(()),
    }
}
