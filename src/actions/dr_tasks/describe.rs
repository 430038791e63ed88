//! `DescribeDRTasks`: the caller's tasks, newest first.

use serde_json::Value;

use super::super::{Action, Context, Reply};
use crate::BoxFuture;
use crate::error::ApiError;
use crate::store::dr_tasks::TaskFilter;

pub struct DescribeDRTasks;

impl Action for DescribeDRTasks {
    fn name(&self) -> &'static str {
        "DescribeDRTasks"
    }

    fn handle<'a>(&'a self, cx: &'a Context<'a>) -> BoxFuture<'a, Result<Reply, ApiError>> {
        Box::pin(async move {
            let p = cx.params;
            let (offset, limit) = super::super::paging(p)?;
            let filter = TaskFilter {
                owner: cx.caller.owner.clone(),
                ids: p.list("dr_tasks")?.iter().map(|s| s.to_string()).collect(),
                statuses: super::super::statuses(p, &super::STATUSES)?,
                search_word: p.optional("search_word").map(str::to_string),
                offset,
                limit,
            };
            let (set, total) = cx.state.store.read(|c| c.tasks(&filter))?;
            let mut r = Reply::new();
            r.insert(
                "dr_task_set".into(),
                Value::Array(set.iter().map(super::view).collect()),
            );
            r.insert("total_count".into(), Value::from(total));
            Ok(r)
        })
    }
}
