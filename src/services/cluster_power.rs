//! The jobs behind `StartClusters` and `StopClusters`: job kinds, not custom
//! services, so `RunClusterCustomService` cannot name them.

use serde_json::{Value, json};

use super::schema::Fields;
use super::{PrepareCx, Prepared, Service, current};
use crate::error::ApiError;
use crate::store::effect::{Effect, EffectError};

/// A job that moves a cluster to the status `to`.
pub struct Power {
    name: &'static str,
    to: &'static str,
}

pub const START_CLUSTER: Power = Power {
    name: "start_cluster",
    to: "active",
};
pub const STOP_CLUSTER: Power = Power {
    name: "stop_cluster",
    to: "stopped",
};

impl Service for Power {
    fn name(&self) -> &'static str {
        self.name
    }

    fn roles(&self) -> &'static [&'static str] {
        &[""]
    }

    // Starting a started cluster (or stopping a stopped one) is refused, not
    // repeated: safe to retry.
    fn idempotent(&self) -> bool {
        true
    }

    fn needs_active(&self) -> bool {
        false
    }

    fn prepare(&self, cx: &PrepareCx<'_>, f: Fields) -> Result<Prepared, ApiError> {
        f.finish()?;
        let c = cx.cluster;
        if c.status == self.to {
            return Err(ApiError::PermissionDenied(format!(
                "cluster [{}] is already {}",
                c.cluster_id, self.to
            )));
        }
        Ok(Prepared {
            params: json!({}),
            secrets: Vec::new(),
        })
    }

    fn model(&self, cluster_id: &str, _params: &Value) -> Effect {
        let (cluster_id, to) = (cluster_id.to_string(), self.to);
        Box::new(move |conn| {
            if current(conn, &cluster_id)?.status == to {
                return Err(EffectError::Refused(format!(
                    "PermissionDenied, cluster [{cluster_id}] is already {to}"
                )));
            }
            conn.set_cluster_status(&cluster_id, to)
                .map_err(EffectError::Store)
        })
    }
}
