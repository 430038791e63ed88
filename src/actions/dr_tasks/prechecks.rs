//! `DescribeDRTaskPrechecks`: the latest pre-check of a task, item by item
//! (DRS's `QueryPreCheckResp` shape).

use serde_json::Value;

use super::super::{Action, Context, Reply};
use crate::BoxFuture;
use crate::error::ApiError;

pub struct DescribeDRTaskPrechecks;

impl Action for DescribeDRTaskPrechecks {
    fn name(&self) -> &'static str {
        "DescribeDRTaskPrechecks"
    }

    fn handle<'a>(&'a self, cx: &'a Context<'a>) -> BoxFuture<'a, Result<Reply, ApiError>> {
        Box::pin(async move {
            let t = super::the_task(cx)?;
            let mut r = Reply::new();
            r.insert("dr_task_id".into(), Value::String(t.id.clone()));
            let running = t.status == "prechecking";
            match (&t.precheck, running) {
                (_, true) => {
                    r.insert("process".into(), Value::from("running"));
                    r.insert("result".into(), Value::Bool(false));
                    r.insert("precheck_result_set".into(), Value::Array(Vec::new()));
                }
                (None, false) => {
                    return Err(ApiError::PermissionDenied(format!(
                        "DR task [{}] has not been pre-checked; run PrecheckDRTasks",
                        t.id
                    )));
                }
                (Some(Value::Object(found)), false) => {
                    r.insert("process".into(), Value::from("100%"));
                    for (k, v) in found {
                        r.insert(k.clone(), v.clone());
                    }
                    r.insert(
                        "precheck_time".into(),
                        Value::from(t.precheck_time.map(crate::clock::format_ts)),
                    );
                }
                (Some(_), false) => {
                    return Err(ApiError::Internal(
                        "the stored pre-check is unreadable".into(),
                    ));
                }
            }
            Ok(r)
        })
    }
}
