//! `CreateCluster` (notes §5.3, seed 000): `conf` (URL-encoded JSON) and
//! `zone`. The cluster and its nodes are stored `pending` with the job that
//! builds them, in one transaction; the reply names every node id.

use serde_json::{Value, json};

use super::{Action, Context, Reply};
use crate::BoxFuture;
use crate::error::ApiError;
use crate::redact;
use crate::services::create_cluster::{ClusterConf, CreateCluster as Kind};
use crate::services::schema::{self, Fields};
use crate::services::{Service, Task};
use crate::store::model::{Model, NewCluster};
use crate::store::{StoreError, jobs};

pub struct CreateCluster;

fn reply(cluster_id: &str, job_id: String, node_ids: &[(String, String)]) -> Reply {
    let mut r = Reply::new();
    r.insert("cluster_id".into(), json!(cluster_id));
    r.insert("job_id".into(), Value::String(job_id));
    let main: Vec<&str> = node_ids
        .iter()
        .filter(|(_, role)| role == "maininstance")
        .map(|(id, _)| id.as_str())
        .collect();
    r.insert(
        "node_ids".into(),
        json!(node_ids.iter().map(|(id, _)| id).collect::<Vec<_>>()),
    );
    r.insert("primary_node_id".into(), json!(main.first()));
    // The seed's `slaveId`: the standby node, addressable even if the
    // primary's build fails.
    r.insert(
        "standby_node_ids".into(),
        json!(main.get(1..).unwrap_or(&[])),
    );
    r
}

impl Action for CreateCluster {
    fn name(&self) -> &'static str {
        "CreateCluster"
    }

    fn handle<'a>(&'a self, cx: &'a Context<'a>) -> BoxFuture<'a, Result<Reply, ApiError>> {
        Box::pin(async move {
            let p = cx.params;
            if let Some(job_id) = super::replayed(cx, "")? {
                let found = cx.state.store.read(|c| {
                    let Some(cluster) = c.lane_of(&job_id)? else {
                        return Ok(None);
                    };
                    let nodes = c.nodes(&cluster, &[], None)?;
                    Ok(Some((cluster, nodes)))
                })?;
                if let Some((cluster, nodes)) = found {
                    let ids: Vec<_> = nodes.into_iter().map(|n| (n.node_id, n.role)).collect();
                    return Ok(reply(&cluster, job_id, &ids));
                }
            }
            let zone = super::zone(p)?.to_string();
            let raw = p.required("conf")?;
            let conf = ClusterConf::parse(Fields::named(
                "conf",
                schema::parse_param("conf", Some(raw))?,
                false,
            ))?;
            let owner = cx.caller.owner.clone();
            let on_servers = on_servers(cx, &zone, &conf)?;
            let cluster_id = crate::ids::cluster_id();
            let node_ids = conf.layout().nodes();
            let task = Task {
                service: Kind.name().to_string(),
                cluster: cluster_id.clone(),
                role: String::new(),
                params: serde_json::to_value(&conf)
                    .map_err(|e| ApiError::Internal(e.to_string()))?,
            };
            let job = jobs::NewJob {
                owner: owner.clone(),
                zone: zone.clone(),
                action: self.name().to_string(),
                lane: cluster_id.clone(),
                resource_ids: vec![cluster_id.clone()],
                directive: redact::directive(p, None),
                task: serde_json::to_string(&task)
                    .map_err(|e| ApiError::Internal(e.to_string()))?,
                secrets: None,
            };
            let (id, nodes, name) = (cluster_id.clone(), node_ids.clone(), conf.name.clone());
            let job_id = super::enqueue_with(cx, vec![(String::new(), job)], move |c| {
                let new = NewCluster {
                    id: &id,
                    zone: &zone,
                    owner: &owner,
                    name: &name,
                    nodes: &nodes,
                    status: "pending",
                };
                if !c.create_cluster(&new)? {
                    return Err(StoreError::Conflict(format!("cluster id {id} is taken")));
                }
                if on_servers {
                    bind_free_servers(c, &id, &zone, &nodes)?;
                }
                Ok(())
            })
            .await?
            .pop()
            .ok_or_else(|| ApiError::Internal("no job was stored".into()))?;
            let ids: Vec<_> = node_ids
                .into_iter()
                .map(|(id, role)| (id, role.to_string()))
                .collect();
            Ok(reply(&cluster_id, job_id, &ids))
        })
    }
}

/// Whether the new cluster is built on the zone's registered servers (a
/// zone with any is a zone of servers), after the checks that implies.
fn on_servers(cx: &Context<'_>, zone: &str, conf: &ClusterConf) -> Result<bool, ApiError> {
    let (any, free) = cx
        .state
        .store
        .read(|c| Ok((c.zone_has_servers(zone)?, c.free_servers(zone)?.len())))?;
    if !any {
        return Ok(false);
    }
    for (field, n) in [
        ("readinstance_count", conf.readinstance_count),
        ("analysis_count", conf.analysis_count),
        ("proxy_count", conf.proxy_count),
    ] {
        if n > 0 {
            return Err(ApiError::invalid(
                &format!("conf.{field}"),
                format!(
                    "must be 0: zone {zone} builds clusters on registered MariaDB servers, which have maininstance nodes only"
                ),
            ));
        }
    }
    if conf.replication_mode == "sync" {
        return Err(ApiError::PermissionDenied(
            "replication_mode sync is not available for MariaDB replication; use semisync".into(),
        ));
    }
    let needed = usize::from(conf.node_count);
    if free < needed {
        return Err(ApiError::QuotaExceeded(format!(
            "zone {zone} has {free} free server(s); the cluster needs {needed} (register more with qcgate servers add)"
        )));
    }
    Ok(true)
}

/// Binds the zone's oldest free servers to the new nodes, in order (the
/// first is the primary), in the transaction that creates the cluster.
fn bind_free_servers(
    c: &dyn Model,
    id: &str,
    zone: &str,
    nodes: &[(String, &str)],
) -> Result<(), StoreError> {
    let free = c.free_servers(zone)?;
    if free.len() < nodes.len() {
        return Err(StoreError::Conflict(format!(
            "zone {zone} no longer has {} free servers",
            nodes.len()
        )));
    }
    c.set_backend(id, "servers")?;
    for ((node, _), server) in nodes.iter().zip(&free) {
        c.bind_server(&server.endpoint, id, node)?;
    }
    Ok(())
}
