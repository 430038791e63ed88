//! `restart_node` (MySQL Plus `restart_node.md`): restart one node.

use serde_json::{Value, json};

use super::schema::Fields;
use super::{PrepareCx, Prepared, Service, cluster_node, current};
use crate::error::ApiError;
use crate::store::effect::{Effect, EffectError};
use crate::store::nodes;

pub struct RestartNode;

impl Service for RestartNode {
    fn name(&self) -> &'static str {
        "restart_node"
    }

    fn roles(&self) -> &'static [&'static str] {
        &["maininstance", "readinstance", "proxy"]
    }

    // A second restart of a node leaves it as the first did.
    fn idempotent(&self) -> bool {
        true
    }

    fn blocked_on_standby(&self) -> Option<&'static str> {
        Some("restarts a node")
    }

    fn prepare(&self, cx: &PrepareCx<'_>, mut f: Fields) -> Result<Prepared, ApiError> {
        let node = cluster_node(cx, &mut f)?;
        f.finish()?;
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
            match nodes::restarted(conn, &cluster_id, Some(&node), None) {
                Ok(0) => Err(EffectError::Refused(format!(
                    "node [{node}] is no longer part of cluster [{cluster_id}]"
                ))),
                Ok(_) => Ok(()),
                Err(e) => Err(EffectError::Store(e)),
            }
        })
    }
}
