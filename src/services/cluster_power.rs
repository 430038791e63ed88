//! The jobs behind `StartClusters` and `StopClusters`: job kinds, not custom
//! services, so `RunClusterCustomService` cannot name them.

use serde_json::{Value, json};

use super::schema::Fields;
use super::{PrepareCx, Prepared, Service};
use crate::error::ApiError;
use crate::store::clusters;
use crate::store::effect::{Effect, EffectError};

pub struct StartCluster;
pub struct StopCluster;

fn power(cx: &PrepareCx<'_>, f: Fields, to: &str) -> Result<Prepared, ApiError> {
    f.finish()?;
    let c = cx.cluster;
    if c.status == to {
        return Err(ApiError::PermissionDenied(format!(
            "cluster [{}] is already {to}",
            c.cluster_id
        )));
    }
    Ok(Prepared {
        params: json!({}),
        secrets: Vec::new(),
    })
}

fn effect(cluster_id: &str, to: &'static str) -> Effect {
    let cluster_id = cluster_id.to_string();
    Box::new(move |conn| {
        let c = clusters::get(conn, &cluster_id)
            .map_err(EffectError::Store)?
            .ok_or_else(|| {
                EffectError::Refused(format!("cluster [{cluster_id}] no longer exists"))
            })?;
        if c.status == to {
            return Err(EffectError::Refused(format!(
                "PermissionDenied, cluster [{cluster_id}] is already {to}"
            )));
        }
        clusters::set_status(conn, &cluster_id, to).map_err(EffectError::Store)
    })
}

impl Service for StartCluster {
    fn name(&self) -> &'static str {
        "start_cluster"
    }
    fn roles(&self) -> &'static [&'static str] {
        &[""]
    }
    // Starting a started cluster is refused, not repeated: safe to retry.
    fn idempotent(&self) -> bool {
        true
    }
    fn needs_active(&self) -> bool {
        false
    }
    fn prepare(&self, cx: &PrepareCx<'_>, f: Fields) -> Result<Prepared, ApiError> {
        power(cx, f, "active")
    }
    fn model(&self, cluster_id: &str, _params: &Value) -> Effect {
        effect(cluster_id, "active")
    }
}

impl Service for StopCluster {
    fn name(&self) -> &'static str {
        "stop_cluster"
    }
    fn roles(&self) -> &'static [&'static str] {
        &[""]
    }
    fn idempotent(&self) -> bool {
        true
    }
    fn needs_active(&self) -> bool {
        false
    }
    fn prepare(&self, cx: &PrepareCx<'_>, f: Fields) -> Result<Prepared, ApiError> {
        power(cx, f, "stopped")
    }
    fn model(&self, cluster_id: &str, _params: &Value) -> Effect {
        effect(cluster_id, "stopped")
    }
}
