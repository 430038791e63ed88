//! The job behind `DeleteClusters`: `deleted` (recycle bin), or `ceased`
//! with `direct_cease` 1. A cluster in a DR relationship is refused: its
//! standbys would lose their source without being told.

use crate::store::model::Model;
use serde_json::{Value, json};

use super::schema::Fields;
use super::{PrepareCx, Prepared, Service, current};
use crate::error::ApiError;
use crate::store::StoreError;
use crate::store::clusters::Cluster;
use crate::store::effect::{Effect, EffectError};

pub struct DeleteCluster;

fn refusal(conn: &dyn Model, c: &Cluster) -> Result<Option<String>, StoreError> {
    let id = &c.cluster_id;
    if matches!(c.status.as_str(), "deleted" | "ceased") {
        return Ok(Some(format!("cluster [{id}] is already {}", c.status)));
    }
    if c.status == "pending" {
        return Ok(Some(format!(
            "cluster [{id}] is still being created; wait for its job to end"
        )));
    }
    if let Some(primary) = &c.standby_of {
        return Ok(Some(format!(
            "cluster [{id}] is a DR standby of [{primary}]; run stop_standby or decouple first"
        )));
    }
    let standbys = conn.standbys_of(id)?;
    if !standbys.is_empty() {
        return Ok(Some(format!(
            "cluster [{id}] is the DR primary of [{}]; decouple its standbys first",
            standbys.join(", ")
        )));
    }
    Ok(None)
}

impl Service for DeleteCluster {
    fn name(&self) -> &'static str {
        "delete_cluster"
    }

    fn roles(&self) -> &'static [&'static str] {
        &[""]
    }

    // Deleting a deleted cluster is refused, not repeated.
    fn idempotent(&self) -> bool {
        true
    }

    fn needs_active(&self) -> bool {
        false
    }

    fn prepare(&self, cx: &PrepareCx<'_>, mut f: Fields) -> Result<Prepared, ApiError> {
        let cease = f.opt_int("direct_cease", 0, 1, 0)? == 1;
        f.finish()?;
        if let Some(why) = refusal(cx.model, cx.cluster)? {
            return Err(ApiError::PermissionDenied(why));
        }
        Ok(Prepared {
            params: json!({ "direct_cease": u8::from(cease) }),
            secrets: Vec::new(),
        })
    }

    fn model(&self, cluster_id: &str, params: &Value) -> Effect {
        let cluster_id = cluster_id.to_string();
        let status = if params["direct_cease"] == 1 {
            "ceased"
        } else {
            "deleted"
        };
        Box::new(move |conn| {
            let c = current(conn, &cluster_id)?;
            if let Some(why) = refusal(conn, &c).map_err(EffectError::Store)? {
                return Err(EffectError::Refused(
                    ApiError::PermissionDenied(why).to_string(),
                ));
            }
            conn.set_cluster_status(&cluster_id, status)
                .map_err(EffectError::Store)?;
            conn.set_nodes_status(&cluster_id, status)
                .map_err(EffectError::Store)
        })
    }
}
