//! `DescribeDRTaskCompareResults`: one comparison's findings: per object
//! type, per table (rows, contents), and each differing row's key with the
//! SELECT that shows it on each side. DRS's words: CONSISTENT,
//! INCONSISTENT, CAN_NOT_COMPARE, …

use serde_json::Value;

use super::super::{Action, Context, Reply};
use crate::BoxFuture;
use crate::error::ApiError;
use crate::ids::is_compare_id;

pub struct DescribeDRTaskCompareResults;

impl Action for DescribeDRTaskCompareResults {
    fn name(&self) -> &'static str {
        "DescribeDRTaskCompareResults"
    }

    fn handle<'a>(&'a self, cx: &'a Context<'a>) -> BoxFuture<'a, Result<Reply, ApiError>> {
        Box::pin(async move {
            let p = cx.params;
            let (offset, limit) = super::super::paging(p)?;
            let t = super::the_task(cx)?;
            let id = p.required("compare_id")?;
            if !is_compare_id(id) {
                return Err(ApiError::not_found(id));
            }
            let c = cx
                .state
                .store
                .read(|c| c.compare(&t.id, id))?
                .ok_or_else(|| ApiError::not_found(id))?;
            let mut r = Reply::new();
            r.insert("compare_id".into(), Value::String(c.id.clone()));
            r.insert("status".into(), Value::String(c.status.clone()));
            r.insert("at_gtid".into(), Value::String(c.at_gtid.clone()));
            r.insert("error".into(), Value::String(c.error.clone()));
            for key in ["summary", "object_overview_set", "table_set"] {
                r.insert(
                    key.into(),
                    c.result.get(key).cloned().unwrap_or(Value::Null),
                );
            }
            let diffs: Vec<Value> = c.result["diff_set"].as_array().cloned().unwrap_or_default();
            r.insert("diff_count".into(), Value::from(diffs.len()));
            r.insert(
                "diff_set".into(),
                Value::Array(
                    diffs
                        .into_iter()
                        .skip(offset.min(usize::MAX as u64) as usize)
                        .take(limit as usize)
                        .collect(),
                ),
            );
            Ok(r)
        })
    }
}
