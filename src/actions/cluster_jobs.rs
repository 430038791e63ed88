//! What `StartClusters` and `StopClusters` share: one job per cluster in
//! `clusters.n`, answered as a `job_ids` map `{cluster_id: job_id}`.

use serde_json::{Map, Value, json};

use super::{Context, Reply};
use crate::error::ApiError;
use crate::redact;
use crate::services::schema::Fields;
use crate::services::{self, PrepareCx, Service, Task};
use crate::store::{clusters, jobs};

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
    let new_jobs = cx.state.store.readers.with(|conn| {
        let mut out = Vec::new();
        for id in &fresh {
            let cluster = clusters::get_owned(conn, owner, id)?
                .filter(|c| zone.as_ref().is_none_or(|z| c.zone == *z));
            let Some(cluster) = cluster else {
                return Ok(Err(ApiError::not_found(id)));
            };
            let pcx = PrepareCx {
                cluster: &cluster,
                owner,
                role: "",
                conn,
            };
            let prepared = match services::prepare(kind, &pcx, Fields::new(fields.clone(), false)) {
                Ok(prepared) => prepared,
                Err(e) => return Ok(Err(e)),
            };
            let task = Task {
                service: kind.name().to_string(),
                cluster: cluster.cluster_id.clone(),
                role: String::new(),
                params: prepared.params,
            };
            let job = jobs::NewJob {
                owner: owner.to_string(),
                zone: cluster.zone.clone(),
                action: action.to_string(),
                lane: cluster.cluster_id.clone(),
                resource_ids: vec![cluster.cluster_id.clone()],
                directive: redact::directive(p, None),
                task: serde_json::to_string(&task)?,
                secrets: None,
            };
            out.push((id.to_string(), job));
        }
        Ok(Ok(out))
    })??;
    let stored = super::enqueue(cx, new_jobs.clone()).await?;
    for ((id, _), job_id) in new_jobs.into_iter().zip(stored) {
        job_ids.insert(id, Value::String(job_id));
    }
    let mut reply = Reply::new();
    reply.insert("job_ids".into(), json!(job_ids));
    Ok(reply)
}
