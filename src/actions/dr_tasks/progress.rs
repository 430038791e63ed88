//! `DescribeDRTaskProgress`: what the sampler last read (every second) —
//! the initial copy, then RPO (not yet received) and RTO (received, not
//! applied) in transactions and milliseconds, positions, threads, errors.
//! Polling reads only what was stored.

use serde_json::{Value, json};

use super::super::{Action, Context, Reply};
use crate::BoxFuture;
use crate::error::ApiError;

pub struct DescribeDRTaskProgress;

impl Action for DescribeDRTaskProgress {
    fn name(&self) -> &'static str {
        "DescribeDRTaskProgress"
    }

    fn handle<'a>(&'a self, cx: &'a Context<'a>) -> BoxFuture<'a, Result<Reply, ApiError>> {
        Box::pin(async move {
            let tasks = super::named_tasks(cx)?;
            let set: Vec<Value> = tasks
                .iter()
                .map(|t| {
                    let mut v = t.progress.clone().unwrap_or_else(|| json!({}));
                    v["dr_task_id"] = Value::String(t.id.clone());
                    v["status"] = Value::String(t.status.clone());
                    v
                })
                .collect();
            let mut r = Reply::new();
            r.insert("total_count".into(), Value::from(set.len()));
            r.insert("progress_set".into(), Value::Array(set));
            Ok(r)
        })
    }
}
