//! `StartDRTasks`: copy and replicate, once the latest pre-check passed,
//! is recent, and its alarms were confirmed (`confirm_alarms=1`). With
//! `start_time` the job waits until then (`pending_start`).

use serde_json::{Value, json};

use super::super::{Action, Context, Reply};
use crate::BoxFuture;
use crate::clock::{now_unix, parse_ts};
use crate::error::ApiError;
use crate::services::dr_task::START;
use crate::store::dr_tasks;

pub struct StartDRTasks;

/// How long a pre-check stays good for a start (DRS asks for a recent one).
pub const PRECHECK_VALID_SECS: i64 = 600;

impl Action for StartDRTasks {
    fn name(&self) -> &'static str {
        "StartDRTasks"
    }

    fn handle<'a>(&'a self, cx: &'a Context<'a>) -> BoxFuture<'a, Result<Reply, ApiError>> {
        Box::pin(async move {
            let p = cx.params;
            let confirm = p.int("confirm_alarms", 0, 0, 1)? == 1;
            let start_at = match p.optional("start_time") {
                None => None,
                Some(s) => Some(parse_ts(s).ok_or_else(|| {
                    ApiError::invalid("start_time", "must be a time such as 2026-12-05T10:00:00Z")
                })?),
            };
            let later = start_at.filter(|t| *t > now_unix());
            let tasks = super::named_tasks(cx)?;
            let mut jobs = Vec::new();
            for t in &tasks {
                if let Err(refused) = startable(t, confirm) {
                    super::super::unless_replayed(cx, &t.id, refused)?;
                }
                let job = super::job(
                    cx,
                    self.name(),
                    t,
                    &START,
                    json!({"dr_task": t.id, "start_at": later}),
                )?;
                jobs.push((t.id.clone(), job));
            }
            let ids: Vec<String> = tasks.iter().map(|t| t.id.clone()).collect();
            let marked = ids.clone();
            let stored = super::super::enqueue_with(cx, jobs, move |c| {
                for id in &marked {
                    let status = if later.is_some() {
                        "pending_start"
                    } else {
                        "starting"
                    };
                    c.set_task_status(id, status, None)?;
                    c.set_task_start_at(id, later)?;
                    let when = later
                        .map(|t| format!(" at {}", crate::clock::format_ts(t)))
                        .unwrap_or_default();
                    c.task_log(
                        id,
                        "info",
                        "start_queued",
                        "",
                        &format!("start queued{when}"),
                    )?;
                }
                Ok(())
            })
            .await?;
            let mut r = super::job_ids(ids.into_iter().zip(stored));
            r.insert(
                "start_time".into(),
                Value::from(later.map(crate::clock::format_ts)),
            );
            Ok(r)
        })
    }
}

fn startable(t: &dr_tasks::DrTask, confirm: bool) -> Result<(), ApiError> {
    let refuse = |why: String| Err(ApiError::PermissionDenied(why));
    if !matches!(
        t.status.as_str(),
        "configuration" | "start_failed" | "init_failed"
    ) {
        return refuse(format!(
            "DR task [{}] is {}; only a task in configuration starts",
            t.id, t.status
        ));
    }
    let Some(pc) = &t.precheck else {
        return refuse(format!(
            "DR task [{}] has not been pre-checked; run PrecheckDRTasks",
            t.id
        ));
    };
    if pc["result"] != Value::Bool(true) {
        return refuse(format!(
            "the latest pre-check of DR task [{}] did not pass ({}% passed); fix the FAILED items and run PrecheckDRTasks again",
            t.id, pc["total_passed_rate"]
        ));
    }
    if t.precheck_time
        .is_none_or(|at| now_unix() - at > PRECHECK_VALID_SECS)
    {
        return refuse(format!(
            "the latest pre-check of DR task [{}] is older than {} minutes; run PrecheckDRTasks again",
            t.id,
            PRECHECK_VALID_SECS / 60
        ));
    }
    if pc["alarms"].as_u64().unwrap_or(0) > 0 && !confirm {
        return refuse(format!(
            "the pre-check of DR task [{}] raised {} alarm(s); read them (DescribeDRTaskPrechecks) and start with confirm_alarms=1",
            t.id, pc["alarms"]
        ));
    }
    Ok(())
}
