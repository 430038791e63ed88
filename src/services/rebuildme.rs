//! `rebuildme` (MySQL Plus `rebuild_node.md`): rebuild a read-only instance
//! node; the docs allow it on `readinstance` nodes only.

use serde_json::{Value, json};

use super::schema::Fields;
use super::{PrepareCx, Prepared, Service, cluster_node, current};
use crate::error::ApiError;
use crate::store::effect::{Effect, EffectError};
use crate::store::nodes;

pub struct Rebuildme;

impl Service for Rebuildme {
    fn name(&self) -> &'static str {
        "rebuildme"
    }

    fn roles(&self) -> &'static [&'static str] {
        &["readinstance"]
    }

    // A rebuild starts from the primary's data whatever happened before.
    fn idempotent(&self) -> bool {
        true
    }

    fn blocked_on_standby(&self) -> Option<&'static str> {
        Some("rebuilds a node")
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
            match nodes::rebuilt(conn, &cluster_id, &node) {
                Ok(0) => Err(EffectError::Refused(format!(
                    "node [{node}] is no longer part of cluster [{cluster_id}]"
                ))),
                Ok(_) => Ok(()),
                Err(e) => Err(EffectError::Store(e)),
            }
        })
    }
}
