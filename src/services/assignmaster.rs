//! `assignmaster` (MySQL Plus `assign_master_node.md`): make another
//! maininstance node of the cluster its primary (an in-cluster switchover).

use serde_json::{Value, json};

use super::schema::Fields;
use super::{PrepareCx, Prepared, Service, cluster_node, current};
use crate::error::ApiError;
use crate::store::effect::{Effect, EffectError};

pub struct AssignMaster;

impl Service for AssignMaster {
    fn name(&self) -> &'static str {
        "assignmaster"
    }

    fn roles(&self) -> &'static [&'static str] {
        &["maininstance"]
    }

    // Assigning the node that is already primary changes nothing.
    fn idempotent(&self) -> bool {
        true
    }

    fn blocked_on_standby(&self) -> Option<&'static str> {
        Some("changes the HA primary")
    }

    fn prepare(&self, cx: &PrepareCx<'_>, mut f: Fields) -> Result<Prepared, ApiError> {
        let node = cluster_node(cx, &mut f)?;
        f.finish()?;
        if node.is_primary {
            return Err(ApiError::PermissionDenied(format!(
                "node [{}] is already the primary of cluster [{}]",
                node.node_id, cx.cluster.cluster_id
            )));
        }
        Ok(Prepared {
            params: json!({ "node_id": node.node_id }),
            secrets: Vec::new(),
        })
    }

    fn model(&self, cluster_id: &str, params: &Value) -> Effect {
        let cluster_id = cluster_id.to_string();
        let node = params["node_id"].as_str().unwrap_or_default().to_string();
        Box::new(move |conn| {
            current(conn, &cluster_id)?;
            let found = conn.node(&cluster_id, &node).map_err(EffectError::Store)?;
            if found.is_none_or(|n| n.role != "maininstance") {
                return Err(EffectError::Refused(format!(
                    "node [{node}] is no longer a maininstance node of cluster [{cluster_id}]"
                )));
            }
            conn.assign_primary(&cluster_id, &node)
                .map(drop)
                .map_err(EffectError::Store)
        })
    }
}
