//! `DescribeDRTaskCompares`: a task's comparisons, newest first.

use serde_json::{Value, json};

use super::super::{Action, Context, Reply};
use crate::BoxFuture;
use crate::error::ApiError;

pub struct DescribeDRTaskCompares;

impl Action for DescribeDRTaskCompares {
    fn name(&self) -> &'static str {
        "DescribeDRTaskCompares"
    }

    fn handle<'a>(&'a self, cx: &'a Context<'a>) -> BoxFuture<'a, Result<Reply, ApiError>> {
        Box::pin(async move {
            let t = super::the_task(cx)?;
            let ids: Vec<String> = cx
                .params
                .list("compares")?
                .iter()
                .map(|s| s.to_string())
                .collect();
            let set: Vec<Value> = cx
                .state
                .store
                .read(|c| c.compares(&t.id))?
                .into_iter()
                .filter(|c| ids.is_empty() || ids.contains(&c.id))
                .map(|c| {
                    json!({
                        "compare_id": c.id,
                        "compare_type": c.types,
                        "status": c.status,
                        "at_gtid": c.at_gtid,
                        "create_time": crate::clock::format_ts(c.create_time),
                        "finish_time": c.finish_time.map(crate::clock::format_ts),
                        "summary": c.result.get("summary").cloned().unwrap_or(Value::Null),
                        "error": c.error,
                    })
                })
                .collect();
            let mut r = Reply::new();
            r.insert("total_count".into(), Value::from(set.len()));
            r.insert("compare_set".into(), Value::Array(set));
            Ok(r)
        })
    }
}
