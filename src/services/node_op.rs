//! Services that act on one node named by `node_id` and record when they did
//! (`restart_node`, `rebuildme`). Each is a `NodeOp` value in its own file.

use crate::store::model::Model;
use serde_json::{Value, json};

use super::schema::Fields;
use super::{PrepareCx, Prepared, Service, cluster_node, current};
use crate::error::ApiError;
use crate::store::StoreError;
use crate::store::effect::{Effect, EffectError};

pub struct NodeOp {
    pub service: &'static str,
    pub roles: &'static [&'static str],
    /// What it does to the node, as refusals on a running standby say it.
    pub does: &'static str,
    /// Records it on the node; returns how many nodes matched.
    pub record: fn(&dyn Model, &str, &str) -> Result<usize, StoreError>,
}

impl Service for NodeOp {
    fn name(&self) -> &'static str {
        self.service
    }

    fn roles(&self) -> &'static [&'static str] {
        self.roles
    }

    // Doing it again leaves the node as doing it once did.
    fn idempotent(&self) -> bool {
        true
    }

    fn blocked_on_standby(&self) -> Option<&'static str> {
        Some(self.does)
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
        let record = self.record;
        Box::new(move |conn| {
            current(conn, &cluster_id)?;
            match record(conn, &cluster_id, &node) {
                Ok(0) => Err(EffectError::Refused(format!(
                    "node [{node}] is no longer part of cluster [{cluster_id}]"
                ))),
                Ok(_) => Ok(()),
                Err(e) => Err(EffectError::Store(e)),
            }
        })
    }
}
