//! `RestartClusterService` (notes §5.3): `cluster`, optional `role`;
//! answers `cluster_id`, `job_id` and the `role` sent.

use serde_json::Value;

use super::{Action, Context, Reply, cluster_jobs};
use crate::BoxFuture;
use crate::error::ApiError;
use crate::services::Service;
use crate::services::restart_cluster_service::RestartClusterService as Kind;

pub struct RestartClusterService;

impl Action for RestartClusterService {
    fn name(&self) -> &'static str {
        "RestartClusterService"
    }

    fn handle<'a>(&'a self, cx: &'a Context<'a>) -> BoxFuture<'a, Result<Reply, ApiError>> {
        Box::pin(async move {
            let p = cx.params;
            let id = p.required("cluster")?;
            let role = p.optional("role").unwrap_or_default();
            if !Kind.roles().contains(&role) {
                return Err(ApiError::invalid(
                    "role",
                    format!("must be one of {}", Kind.roles()[1..].join(", ")),
                ));
            }
            let zone = super::zone_filter(p)?;
            let reply = |job_id: String| {
                let mut reply = Reply::new();
                reply.insert("cluster_id".into(), Value::String(id.to_string()));
                reply.insert("job_id".into(), Value::String(job_id));
                if !role.is_empty() {
                    reply.insert("role".into(), Value::String(role.to_string()));
                }
                reply
            };
            let store = &cx.state.store;
            let job = store
                .cluster(&cx.caller.owner, id)?
                .filter(|c| zone.as_ref().is_none_or(|z| c.zone == *z))
                .ok_or_else(|| match &zone {
                    Some(z) => ApiError::not_found_in_zone(id, z),
                    None => ApiError::not_found(id),
                })
                .and_then(|c| {
                    store.read(|conn| {
                        Ok(cluster_jobs::new_job(
                            cx,
                            conn,
                            self.name(),
                            &Kind,
                            &c,
                            role,
                            Default::default(),
                        ))
                    })?
                });
            let job = match job {
                Ok(job) => job,
                Err(refused) => return Ok(reply(super::unless_replayed(cx, "", refused)?)),
            };
            let job_id = super::enqueue(cx, vec![(String::new(), job)])
                .await?
                .pop()
                .ok_or_else(|| ApiError::Internal("no job was stored".into()))?;
            Ok(reply(job_id))
        })
    }
}
