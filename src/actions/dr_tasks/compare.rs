//! `CreateDRTaskCompare`: compare the task's two sides at one consistent
//! point (`objects`, `lines`, `contents`), without writing to the source.
//! Only while the task is syncing, one unfinished comparison at a time.

use serde_json::{Value, json};

use super::super::{Action, Context, Reply};
use crate::BoxFuture;
use crate::error::ApiError;
use crate::ids::compare_id;
use crate::services::dr_task::COMPARE;

pub struct CreateDRTaskCompare;

pub const TYPES: [&str; 3] = ["objects", "lines", "contents"];

impl Action for CreateDRTaskCompare {
    fn name(&self) -> &'static str {
        "CreateDRTaskCompare"
    }

    fn handle<'a>(&'a self, cx: &'a Context<'a>) -> BoxFuture<'a, Result<Reply, ApiError>> {
        Box::pin(async move {
            let p = cx.params;
            let mut types: Vec<&str> = Vec::new();
            for t in p.list("compare_type")? {
                if !TYPES.contains(&t) {
                    return Err(ApiError::invalid(
                        "compare_type",
                        format!(
                            "[{}] is not one of objects, lines, contents",
                            crate::params::printable(t)
                        ),
                    ));
                }
                if !types.contains(&t) {
                    types.push(t);
                }
            }
            if types.is_empty() {
                types = TYPES.to_vec();
            }
            let t = super::the_task(cx)?;
            let unfinished = cx
                .state
                .store
                .read(|c| c.compares(&t.id))?
                .into_iter()
                .find(|c| c.status == "RUNNING" || c.status == "WAITING_FOR_RUNNING");
            let refused = if t.status != "syncing" {
                Some(format!(
                    "DR task [{}] is {}; a comparison runs while it is syncing",
                    t.id, t.status
                ))
            } else {
                unfinished.map(|c| {
                    format!(
                        "comparison [{}] of DR task [{}] is still {}",
                        c.id, t.id, c.status
                    )
                })
            };
            if let Some(why) = refused {
                super::super::unless_replayed(cx, "", ApiError::PermissionDenied(why))?;
            }
            let id = compare_id();
            let job = super::job(
                cx,
                self.name(),
                &t,
                &COMPARE,
                json!({"dr_task": t.id, "compare_id": id, "types": types}),
            )?;
            let (task_id, cid, kinds) = (t.id.clone(), id.clone(), json!(types));
            let job_id = super::super::enqueue_with(cx, vec![(String::new(), job)], move |c| {
                c.insert_compare(&cid, &task_id, &kinds)?;
                c.task_log(
                    &task_id,
                    "info",
                    "compare_queued",
                    "",
                    &format!("comparison {cid} queued ({kinds})"),
                )
            })
            .await?
            .pop()
            .ok_or_else(|| ApiError::Internal("no job was stored".into()))?;
            let mut r = Reply::new();
            r.insert("compare_id".into(), Value::String(id));
            r.insert("job_id".into(), Value::String(job_id));
            r.insert("dr_task_id".into(), Value::String(t.id));
            Ok(r)
        })
    }
}
