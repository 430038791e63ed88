//! `DescribeDRTaskLogs`: every step of every job of the task, every state
//! change, replication errors and lag alarms, oldest first.

use serde_json::Value;

use super::super::{Action, Context, Reply};
use crate::BoxFuture;
use crate::error::ApiError;

pub struct DescribeDRTaskLogs;

const LEVELS: [&str; 3] = ["info", "warning", "error"];

impl Action for DescribeDRTaskLogs {
    fn name(&self) -> &'static str {
        "DescribeDRTaskLogs"
    }

    fn handle<'a>(&'a self, cx: &'a Context<'a>) -> BoxFuture<'a, Result<Reply, ApiError>> {
        Box::pin(async move {
            let p = cx.params;
            let levels = p.list("level")?;
            if let Some(bad) = levels.iter().find(|l| !LEVELS.contains(l)) {
                return Err(ApiError::invalid(
                    "level",
                    format!(
                        "[{}] is not one of info, warning, error",
                        crate::params::printable(bad)
                    ),
                ));
            }
            let levels: Vec<String> = levels.iter().map(|s| s.to_string()).collect();
            let (offset, limit) = super::super::paging(p)?;
            let t = super::the_task(cx)?;
            let (set, total) = cx
                .state
                .store
                .read(|c| c.task_logs(&t.id, &levels, offset, limit))?;
            let mut r = Reply::new();
            r.insert("dr_task_id".into(), Value::String(t.id));
            r.insert(
                "log_set".into(),
                serde_json::to_value(set).unwrap_or(Value::Null),
            );
            r.insert("total_count".into(), Value::from(total));
            Ok(r)
        })
    }
}
