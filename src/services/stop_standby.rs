//! `stop_standby`: stop DR sync on a standby (MySQL Plus `disable_standby.md`).
//! The cluster keeps its data and becomes an independent primary again.

use serde_json::{Value, json};

use super::schema::Fields;
use super::{PrepareCx, Prepared, Service};
use crate::error::ApiError;
use crate::store::effect::{Effect, EffectError};

pub struct StopStandby;

impl Service for StopStandby {
    fn name(&self) -> &'static str {
        "stop_standby"
    }

    fn roles(&self) -> &'static [&'static str] {
        &["maininstance"]
    }

    // Stopping sync that is already stopped changes nothing.
    fn idempotent(&self) -> bool {
        true
    }

    fn prepare(&self, cx: &PrepareCx<'_>, f: Fields) -> Result<Prepared, ApiError> {
        f.finish()?;
        if cx.cluster.standby_of.is_none() {
            return Err(not_a_standby(&cx.cluster.cluster_id));
        }
        Ok(Prepared {
            params: json!({}),
            secrets: Vec::new(),
        })
    }

    fn model(&self, cluster_id: &str, _params: &Value) -> Effect {
        let cluster_id = cluster_id.to_string();
        Box::new(move |conn| {
            let exists = conn.cluster(&cluster_id).map_err(EffectError::Store)?;
            if exists.is_none() {
                return Err(EffectError::Refused(format!(
                    "cluster [{cluster_id}] no longer exists"
                )));
            }
            conn.clear_standby(&cluster_id).map_err(EffectError::Store)
        })
    }
}

fn not_a_standby(cluster_id: &str) -> ApiError {
    ApiError::PermissionDenied(format!(
        "cluster [{cluster_id}] is not a standby; there is no DR sync to stop"
    ))
}
