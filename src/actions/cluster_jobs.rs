//! What `StartClusters` and `StopClusters` share: one job per cluster in
//! `clusters.n`, answered as a `job_ids` map `{cluster_id: job_id}`.

use serde_json::{Map, Value, json};

use super::{Context, Reply};
use crate::error::ApiError;
use crate::redact;
use crate::services::schema::Fields;
use crate::services::{self, PrepareCx, Service, Task};
use crate::store::clusters::Cluster;
use crate::store::jobs;
use crate::store::model::Model;

/// Most clusters in one request.
const MAX_CLUSTERS: usize = 100;

/// `fields` are the job's parameters taken from the request (`direct_cease`, …).
pub async fn run(
    cx: &Context<'_>,
    action: &str,
    kind: &'static dyn Service,
    fields: Map<String, Value>,
) -> Result<Reply, ApiError> {
    let p = cx.params;
    let mut ids: Vec<&str> = Vec::new();
    for id in p.list("clusters")? {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.is_empty() {
        return Err(ApiError::missing("clusters.1"));
    }
    if ids.len() > MAX_CLUSTERS {
        return Err(ApiError::invalid(
            "clusters",
            format!("names more than {MAX_CLUSTERS} clusters"),
        ));
    }
    let zone = super::zone_filter(p)?;
    let owner = cx.caller.owner.as_str();

    // A replayed request answers with its jobs, whatever the state is now.
    let mut job_ids = Map::new();
    let mut fresh = Vec::new();
    for id in &ids {
        match super::replayed(cx, id)? {
            Some(job_id) => {
                job_ids.insert(id.to_string(), Value::String(job_id));
            }
            None => fresh.push(*id),
        }
    }
    let store = &cx.state.store;
    let mut new_jobs = Vec::with_capacity(fresh.len());
    for id in &fresh {
        let cluster = store
            .cluster(owner, id)?
            .filter(|c| zone.as_ref().is_none_or(|z| c.zone == *z))
            .ok_or_else(|| match &zone {
                Some(z) => ApiError::not_found_in_zone(id, z),
                None => ApiError::not_found(id),
            })?;
        let job = store.read(|conn| {
            Ok(new_job(
                cx,
                conn,
                action,
                kind,
                &cluster,
                "",
                fields.clone(),
            ))
        })??;
        new_jobs.push((id.to_string(), job));
    }
    let stored = super::enqueue(cx, new_jobs.clone()).await?;
    for ((id, _), job_id) in new_jobs.into_iter().zip(stored) {
        job_ids.insert(id, Value::String(job_id));
    }
    let mut reply = Reply::new();
    reply.insert("job_ids".into(), json!(job_ids));
    Ok(reply)
}

/// Validates a cluster-action job against the cluster and builds it.
pub fn new_job(
    cx: &Context<'_>,
    conn: &dyn Model,
    action: &str,
    kind: &'static dyn Service,
    cluster: &Cluster,
    role: &str,
    fields: Map<String, Value>,
) -> Result<jobs::NewJob, ApiError> {
    let pcx = PrepareCx {
        cluster,
        owner: &cx.caller.owner,
        role,
        model: conn,
    };
    let prepared = services::prepare(kind, &pcx, Fields::new(fields, false))?;
    let task = Task {
        service: kind.name().to_string(),
        cluster: cluster.cluster_id.clone(),
        role: role.to_string(),
        params: prepared.params,
    };
    Ok(jobs::NewJob {
        owner: cx.caller.owner.clone(),
        zone: cluster.zone.clone(),
        action: action.to_string(),
        lane: cluster.cluster_id.clone(),
        resource_ids: vec![cluster.cluster_id.clone()],
        directive: redact::directive(cx.params, None),
        task: serde_json::to_string(&task).map_err(|e| ApiError::Internal(e.to_string()))?,
        secrets: None,
    })
}
