//! DR tasks (seed 002): one file per action; what they share is here.
//! A task links a source and a standby cluster and owns the replication
//! between them; its mutating actions answer `job_id`s polled with
//! `DescribeJobs`. Every action sees only the caller's own tasks.

pub mod compare;
pub mod compare_results;
pub mod compares;
pub mod create;
pub mod delete;
pub mod describe;
pub mod logs;
pub mod precheck;
pub mod prechecks;
pub mod progress;
pub mod retry;
pub mod start;
pub mod stop;

use serde_json::{Map, Value, json};

use super::Context;
use crate::error::ApiError;
use crate::ids::is_dr_task_id;
use crate::redact;
use crate::services::{Service, Task};
use crate::store::dr_tasks::DrTask;
use crate::store::jobs::NewJob;

/// Most tasks in one request.
const MAX_TASKS: usize = 100;

/// The statuses of a task's life (DRS's, notes §C.3).
pub const STATUSES: [&str; 16] = [
    "configuration",
    "prechecking",
    "pending_start",
    "starting",
    "start_failed",
    "initializing",
    "init_failed",
    "syncing",
    "sync_failed",
    "paused",
    "switching_over",
    "failed_over",
    "stopping",
    "stopped",
    "completed",
    "deleted",
];

/// `dr_tasks.n`: the caller's tasks, each once, in the order named.
pub fn named_tasks(cx: &Context<'_>) -> Result<Vec<DrTask>, ApiError> {
    let mut ids: Vec<&str> = Vec::new();
    for id in cx.params.list("dr_tasks")? {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.is_empty() {
        return Err(ApiError::missing("dr_tasks.1"));
    }
    if ids.len() > MAX_TASKS {
        return Err(ApiError::invalid(
            "dr_tasks",
            format!("names more than {MAX_TASKS} tasks"),
        ));
    }
    ids.into_iter().map(|id| owned(cx, id)).collect()
}

/// One task of the caller's (`dr_task`), or 2100.
pub fn owned(cx: &Context<'_>, id: &str) -> Result<DrTask, ApiError> {
    if !is_dr_task_id(id) {
        return Err(ApiError::not_found(id));
    }
    let owner = cx.caller.owner.as_str();
    cx.state
        .store
        .read(|c| c.task_owned(owner, id))?
        .ok_or_else(|| ApiError::not_found(id))
}

/// `dr_task`, required.
pub fn the_task(cx: &Context<'_>) -> Result<DrTask, ApiError> {
    owned(cx, cx.params.required("dr_task")?)
}

/// A job of `kind` on a task, queued on its standby cluster's lane.
pub fn job(
    cx: &Context<'_>,
    action: &str,
    t: &DrTask,
    kind: &'static dyn Service,
    params: Value,
) -> Result<NewJob, ApiError> {
    let task = Task {
        service: kind.name().to_string(),
        cluster: t.standby_cluster.clone(),
        role: String::new(),
        params,
    };
    Ok(NewJob {
        owner: cx.caller.owner.clone(),
        zone: t.zone.clone(),
        action: action.to_string(),
        lane: t.standby_cluster.clone(),
        resource_ids: vec![t.id.clone(), t.standby_cluster.clone()],
        directive: redact::directive(cx.params, None),
        task: serde_json::to_string(&task).map_err(|e| ApiError::Internal(e.to_string()))?,
        secrets: None,
    })
}

/// A `job_ids` reply: `{dr_task_id: job_id}`.
pub fn job_ids(pairs: impl IntoIterator<Item = (String, String)>) -> super::Reply {
    let map: Map<String, Value> = pairs
        .into_iter()
        .map(|(t, j)| (t, Value::String(j)))
        .collect();
    let mut r = super::Reply::new();
    r.insert("job_ids".into(), Value::Object(map));
    r
}

/// A task as `dr_task_set` shows it (never a password).
pub fn view(t: &DrTask) -> Value {
    json!({
        "dr_task_id": t.id,
        "name": t.name,
        "description": t.description,
        "zone": t.zone,
        "direction": t.direction,
        "standby_cluster": t.standby_cluster,
        "source_cluster": t.source_cluster,
        "source": if t.source_cluster.is_none() {
            json!({"host_port": t.source_endpoint, "user": t.source_user})
        } else {
            Value::Null
        },
        "sync_way": t.sync_way,
        "objects": t.objects,
        "flow_control": t.flow_control,
        "migrate_definer": u8::from(t.migrate_definer),
        "status": t.status,
        "status_time": crate::clock::format_ts(t.status_time),
        "create_time": crate::clock::format_ts(t.create_time),
        "last_error": t.last_error,
        "start_time": t.start_at.map(crate::clock::format_ts),
    })
}
