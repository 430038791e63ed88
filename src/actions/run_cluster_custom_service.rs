//! `RunClusterCustomService` (notes §5.1): validate, then enqueue a durable job.

use serde_json::Value;

use super::{Action, Context, Reply};
use crate::BoxFuture;
use crate::error::ApiError;
use crate::redact;
use crate::services::schema::{self, Fields};
use crate::services::{self, PrepareCx, Task};
use crate::store::clusters::Cluster;
use crate::store::jobs;

pub struct RunClusterCustomService;

impl Action for RunClusterCustomService {
    fn name(&self) -> &'static str {
        "RunClusterCustomService"
    }

    fn handle<'a>(&'a self, cx: &'a Context<'a>) -> BoxFuture<'a, Result<Reply, ApiError>> {
        Box::pin(async move {
            let p = cx.params;
            let cluster_id = p.required("cluster")?;
            let service_name = p.required("service")?;
            let zone = super::zone(p)?;
            let owner = cx.caller.owner.as_str();
            let reply = |job_id: String, role: String| {
                let mut reply = Reply::new();
                reply.insert("job_id".into(), Value::String(job_id));
                reply.insert("service".into(), Value::String(service_name.to_string()));
                reply.insert("role".into(), Value::String(role));
                reply.insert("cluster_id".into(), Value::String(cluster_id.to_string()));
                reply
            };
            let validated = cx
                .state
                .store
                .cluster(owner, cluster_id)
                .map_err(ApiError::from)
                .and_then(|found| {
                    found
                        .filter(|c| c.zone == zone)
                        .ok_or_else(|| ApiError::not_found_in_zone(cluster_id, zone))
                })
                .and_then(|cluster| new_job(cx, &cluster, service_name, zone));
            let (new_job, role) = match validated {
                Ok(v) => v,
                Err(refused) => {
                    let job_id = super::unless_replayed(cx, "", refused)?;
                    let role = p
                        .optional("role")
                        .or_else(|| services::find(service_name).map(|s| s.roles()[0]))
                        .unwrap_or_default();
                    return Ok(reply(job_id, role.to_string()));
                }
            };

            let job_id = super::enqueue(cx, vec![(String::new(), new_job)])
                .await?
                .pop()
                .ok_or_else(|| ApiError::Internal("no job was stored".into()))?;
            Ok(reply(job_id, role))
        })
    }
}

/// Validates the request against the cluster's service and builds its job;
/// also returns the node role the job runs on.
fn new_job(
    cx: &Context<'_>,
    cluster: &Cluster,
    service_name: &str,
    zone: &str,
) -> Result<(jobs::NewJob, String), ApiError> {
    let (p, owner) = (cx.params, cx.caller.owner.as_str());
    let service = services::find(service_name).ok_or_else(|| {
        ApiError::InvalidParameter(format!(
            "service [{}] is not a service of cluster [{}]; its services are: {}",
            crate::params::printable(service_name),
            cluster.cluster_id,
            services::names().join(", ")
        ))
    })?;
    let role = match p.optional("role") {
        Some(r) if service.roles().contains(&r) => r.to_string(),
        None => service.roles()[0].to_string(),
        Some(_) => {
            return Err(ApiError::invalid(
                "role",
                format!(
                    "must be {} for service [{}]",
                    service.roles().join(" or "),
                    service.name()
                ),
            ));
        }
    };
    let raw = p.optional("service_params");
    let fields = Fields::new(schema::parse(raw)?, raw.is_none());
    // Most services look at nothing but the cluster: the connection is
    // taken from the pool but reads only if a check asks it to.
    let prepared = cx.state.store.read(|conn| {
        let pcx = PrepareCx {
            cluster,
            owner,
            role: &role,
            model: conn,
        };
        Ok(services::prepare(service, &pcx, fields))
    })??;
    // Services keep their secrets apart (`prepared.secrets`), so the copy
    // and scrub are for the rare parameter that only looks like one.
    let json = |v: &Value| serde_json::to_string(v).map_err(|e| ApiError::Internal(e.to_string()));
    let params = json(&prepared.params)?;
    let directive = if redact::has_secret_names(&prepared.params) {
        let mut shown = prepared.params.clone();
        redact::scrub(&mut shown);
        redact::directive(p, Some(&json(&shown)?))
    } else {
        redact::directive(p, Some(&params))
    };
    let task = Task::json(service.name(), &cluster.cluster_id, &role, &params);
    let job = jobs::NewJob {
        owner: owner.to_string(),
        zone: zone.to_string(),
        action: "RunClusterCustomService".to_string(),
        lane: cluster.cluster_id.clone(),
        resource_ids: vec![cluster.cluster_id.clone()],
        directive,
        task,
        secrets: jobs::seal_secrets(
            &cx.state.store.master,
            owner,
            &cluster.cluster_id,
            &prepared.secrets,
        ),
    };
    Ok((job, role))
}
