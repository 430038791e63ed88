//! The job behind `CreateCluster`: build the nodes of a new MySQL Plus
//! cluster (primary/standby HA as seed 000 describes for DB instances).
//! The cluster and its nodes exist, `pending`, from the moment the request
//! is acknowledged; the job makes them `active`. If it fails, they stay,
//! marked `failed`, so every node id answered stays addressable for
//! describe and delete.

use serde_json::{Value, json};

use super::schema::Fields;
use super::{PrepareCx, Prepared, Service, current};
use crate::error::ApiError;
use crate::store::clusters::Layout;
use crate::store::effect::{Effect, EffectError};

pub struct CreateCluster;

/// A validated `conf`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ClusterConf {
    pub name: String,
    pub description: String,
    pub ha: bool,
    /// `async`, `semisync` or `sync` with HA; empty without.
    pub replication_mode: String,
    /// GB per node.
    pub volume_size: i64,
    pub node_count: u8,
    pub readinstance_count: u8,
    pub analysis_count: u8,
    pub proxy_count: u8,
}

pub const REPLICATION_MODES: [&str; 3] = ["async", "semisync", "sync"];

impl ClusterConf {
    /// `conf`: `name`, `description`, `node_count`, `ha` {`enable`,
    /// `replication_mode`}, `volume_size`, and counts of read-only,
    /// analysis and proxy nodes.
    pub fn parse(mut f: Fields) -> Result<ClusterConf, ApiError> {
        let name = f.opt_string("name")?.unwrap_or_default();
        if name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                "conf.name",
                "must be at most 64 printable characters",
            ));
        }
        let description = f.opt_string("description")?.unwrap_or_default();
        if description.chars().count() > 256 {
            return Err(ApiError::invalid(
                "conf.description",
                "must be at most 256 characters",
            ));
        }
        let mut ha_fields = f.opt_object("ha", "conf.ha")?;
        let ha = ha_fields.opt_bool("enable", true)?;
        let replication_mode = match ha_fields.opt_string("replication_mode")? {
            None if ha => "async".to_string(),
            None => String::new(),
            Some(_) if !ha => {
                return Err(ApiError::invalid(
                    "conf.ha.replication_mode",
                    "is only for a cluster with ha.enable true",
                ));
            }
            Some(m) if REPLICATION_MODES.contains(&m.as_str()) => m,
            Some(_) => {
                return Err(ApiError::invalid(
                    "conf.ha.replication_mode",
                    format!("must be one of {}", REPLICATION_MODES.join(", ")),
                ));
            }
        };
        ha_fields.finish()?;
        let node_count = if ha {
            f.opt_int("node_count", 2, 3, 2)?
        } else {
            f.opt_int("node_count", 1, 1, 1)?
        } as u8;
        let volume_size = f.opt_int("volume_size", 10, 8000, 100)?;
        let readinstance_count = f.opt_int("readinstance_count", 0, 10, 0)? as u8;
        let analysis_count = f.opt_int("analysis_count", 0, 10, 0)? as u8;
        let proxy_count = f.opt_int("proxy_count", 0, 10, 0)? as u8;
        f.finish()?;
        Ok(ClusterConf {
            name,
            description,
            ha,
            replication_mode,
            volume_size,
            node_count,
            readinstance_count,
            analysis_count,
            proxy_count,
        })
    }

    pub fn layout(&self) -> Layout {
        Layout {
            main: self.node_count,
            read: self.readinstance_count,
            analysis: self.analysis_count,
            proxy: self.proxy_count,
        }
    }
}

fn settle(cluster_id: &str, status: &'static str) -> Effect {
    let cluster_id = cluster_id.to_string();
    Box::new(move |conn| {
        let c = current(conn, &cluster_id)?;
        if c.status != "pending" {
            return Err(EffectError::Refused(format!(
                "cluster [{cluster_id}] is {}, no longer being created",
                c.status
            )));
        }
        conn.set_cluster_status(&cluster_id, status)
            .map_err(EffectError::Store)?;
        conn.set_nodes_status(&cluster_id, status)
            .map_err(EffectError::Store)
    })
}

impl Service for CreateCluster {
    fn name(&self) -> &'static str {
        "create_cluster"
    }

    fn roles(&self) -> &'static [&'static str] {
        &[""]
    }

    // Building a node that is built leaves it built (an executor program
    // must check what exists), so an interrupted creation is resumed.
    fn idempotent(&self) -> bool {
        true
    }

    fn needs_active(&self) -> bool {
        false
    }

    // Never reached: `CreateCluster` validates `conf` itself (there is no
    // cluster yet to prepare against).
    fn prepare(&self, _cx: &PrepareCx<'_>, f: Fields) -> Result<Prepared, ApiError> {
        f.finish()?;
        Ok(Prepared {
            params: json!({}),
            secrets: Vec::new(),
        })
    }

    fn model(&self, cluster_id: &str, _params: &Value) -> Effect {
        settle(cluster_id, "active")
    }

    fn on_failure(&self, cluster_id: &str, _params: &Value) -> Option<Effect> {
        Some(settle(cluster_id, "failed"))
    }
}
