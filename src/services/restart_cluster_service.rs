//! The job behind `RestartClusterService`: restart the database service on
//! every node, or on the nodes of one role.

use serde_json::{Value, json};

use super::schema::Fields;
use super::{PrepareCx, Prepared, Service, current};
use crate::error::ApiError;
use crate::store::effect::{Effect, EffectError};

pub struct RestartClusterService;

impl Service for RestartClusterService {
    fn name(&self) -> &'static str {
        "restart_cluster_service"
    }

    fn roles(&self) -> &'static [&'static str] {
        &["", "maininstance", "readinstance", "analysis", "proxy"]
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn blocked_on_standby(&self) -> Option<&'static str> {
        Some("restarts the database")
    }

    fn prepare(&self, cx: &PrepareCx<'_>, f: Fields) -> Result<Prepared, ApiError> {
        f.finish()?;
        Ok(Prepared {
            params: json!({ "role": cx.role }),
            secrets: Vec::new(),
        })
    }

    fn model(&self, cluster_id: &str, params: &Value) -> Effect {
        let cluster_id = cluster_id.to_string();
        let role = params["role"]
            .as_str()
            .filter(|r| !r.is_empty())
            .map(str::to_string);
        Box::new(move |conn| {
            current(conn, &cluster_id)?;
            conn.node_restarted(&cluster_id, None, role.as_deref())
                .map(drop)
                .map_err(EffectError::Store)
        })
    }
}
