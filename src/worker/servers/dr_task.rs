//! The jobs of DR tasks on servers: pre-check, start, stop. (Comparisons
//! are in `compare.rs`.) Each job logs its steps in the task's log and
//! moves the task through DRS's statuses.

use std::time::Duration;

use serde_json::{Value, json};

use super::fleet::Fleet;
use super::fleet::{Members, db, internal, refused};
use super::scope::Scope;
use super::shaping::Shaping;
use super::{Op, detach, precheck, start_standby};
use crate::clock::now_unix;
use crate::mariadb::runbook::{self, REPL_GRANTS};
use crate::mariadb::{Endpoint, Login, Node};
use crate::store::StoreError;
use crate::store::dr_tasks::{self, DrTask};
use crate::store::effect::{Effect, EffectError};
use crate::worker::executor::{Done, Failure};

/// Privileges qcgate's account needs on a registered source to copy it.
const COPY_GRANTS: &str = "SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES, RELOAD";

/// A task and its two sides.
pub struct Sides {
    pub task: DrTask,
    pub source: Endpoint,
    pub login: Login,
    pub standby: Members,
    pub source_cluster: Option<Members>,
}

/// The job's task, its log attached to the job's steps.
pub fn task(op: &mut Op) -> Result<DrTask, Failure> {
    let id = op.param_str("dr_task").to_string();
    let t = op
        .fleet
        .store
        .read(|c| c.task(&id))
        .map_err(internal)?
        .filter(|t| t.status != "deleted")
        .ok_or_else(|| refused(format!("DR task [{id}] no longer exists")))?;
    op.steps.for_task(&t.id, &op.job.job_id);
    Ok(t)
}

/// Where the task copies and replicates from, and as whom: a registered
/// source through qcgate's own account (made there, not binlogged), an
/// external one through the account the task was created with.
pub async fn sides(op: &mut Op, task: DrTask) -> Result<Sides, Failure> {
    let standby = op.fleet.members_of(&task.standby_cluster)?;
    match &task.source_cluster {
        Some(id) => {
            let src = op.fleet.members_of(id)?;
            let login = op.fleet.repl_login().await?;
            let mut n = op.fleet.connect(&src.primary).await?;
            runbook::ensure_account(&mut n, &login, &format!("{REPL_GRANTS}, {COPY_GRANTS}"))
                .await
                .map_err(db)?;
            n.close().await;
            Ok(Sides {
                source: src.primary.endpoint.clone(),
                login,
                standby,
                source_cluster: Some(src),
                task,
            })
        }
        None => {
            let source = Endpoint::parse(&task.source_endpoint)
                .ok_or_else(|| refused("the task's source address is unreadable"))?;
            let password = dr_tasks::open_source_password(&op.fleet.store.master, &task)
                .map_err(internal)?
                .unwrap_or_default();
            Ok(Sides {
                source,
                login: Login {
                    user: task.source_user.clone(),
                    password,
                },
                standby,
                source_cluster: None,
                task,
            })
        }
    }
}

/// Moves the task to `status`, with a log line.
pub async fn status(
    op: &Op,
    task: &str,
    status: &str,
    level: &str,
    message: String,
) -> Result<(), Failure> {
    let (task, status, level, job) = (
        task.to_string(),
        status.to_string(),
        level.to_string(),
        op.job.job_id.clone(),
    );
    op.fleet
        .store
        .change(move |c| {
            let error = (level == "error").then_some(message.as_str());
            c.set_task_status(&task, &status, error)?;
            c.task_log(&task, &level, &format!("status_{status}"), &job, &message)
        })
        .await
        .map_err(internal)
}

fn nothing() -> Effect {
    Box::new(|_| Ok(()))
}

/// `PrecheckDRTasks`' job: every item, stored as the task's latest pre-check.
pub async fn run_precheck(mut op: Op) -> Result<Done, Failure> {
    let t = task(&mut op)?;
    op.steps
        .begin("precheck", format!("{} items", t.sync_way))
        .await?;
    let s = match sides(&mut op, t).await {
        Ok(s) => s,
        Err(f) => {
            let id = op.param_str("dr_task").to_string();
            status(
                &op,
                &id,
                "configuration",
                "error",
                format!("pre-check could not run: {}", f.message),
            )
            .await?;
            return Err(f);
        }
    };
    let mut checked = precheck::run(
        &op.fleet,
        &precheck::Sides {
            source: s.source.clone(),
            login: s.login.clone(),
            full: s.task.sync_way == "full",
            standby: &s.standby,
            source_cluster: s.source_cluster.as_ref(),
        },
    )
    .await;
    if let Some(i) = objects_item(&s).await {
        checked.items.push(i);
    }
    let result = checked.json();
    for i in &checked.items {
        if i.result != "PASSED" {
            let step = if i.result == "FAILED" {
                "precheck_failed"
            } else {
                "precheck_alarm"
            };
            op.steps
                .info(
                    step,
                    format!("{}: {} (fix: {})", i.item, i.failed_reason, i.fix),
                )
                .await?;
        }
    }
    let (id, stored) = (s.task.id.clone(), result.clone());
    op.fleet
        .store
        .change(move |c| c.set_task_precheck(&id, &stored))
        .await
        .map_err(internal)?;
    let summary = format!(
        "pre-check {}: {}% passed, {} item(s)",
        if checked.failed().is_empty() {
            "passed"
        } else {
            "failed"
        },
        checked.passed_rate(),
        checked.items.len()
    );
    op.steps.done("precheck", summary.clone()).await?;
    status(&op, &s.task.id, "configuration", "info", summary).await?;
    Ok(Done {
        effect: nothing(),
        output: op.steps.output(&result),
    })
}

/// Whether the task's `objects` are on the source (`None` for all of it,
/// or when the source cannot be read: its own item says so).
async fn objects_item(s: &Sides) -> Option<precheck::Item> {
    let scope = Scope::from_objects(&s.task.objects);
    if scope == Scope::All {
        return None;
    }
    let mut src = Node::connect(&s.source, &s.login).await.ok()?;
    let found = scope.resolve(&mut src).await.ok()?;
    src.close().await;
    let (result, failed_reason, fix) = match found {
        Ok(_) => ("PASSED", String::new(), String::new()),
        Err(why) => (
            "FAILED",
            why,
            "create them on the source, or create the task with objects it has".to_string(),
        ),
    };
    Some(precheck::Item {
        item: "srcObjectsExist",
        group: "data",
        result,
        failed_reason,
        fix,
        data: json!({"replicate_wild_do_table": scope.wild_do_table()}),
    })
}

/// `StartDRTasks`' job: waits for `start_time`, checks again, copies (for
/// `full`), replicates, and hands the task to the sampler as `syncing`.
pub async fn run_start(mut op: Op) -> Result<Done, Failure> {
    let t = task(&mut op)?;
    let id = t.id.clone();
    if let Some(at) = op.param("start_at").as_i64() {
        op.steps
            .info("pending_start", crate::clock::format_ts(at))
            .await?;
        while now_unix() < at {
            tokio::time::sleep(
                Duration::from_secs(1).min(Duration::from_secs((at - now_unix()).max(0) as u64)),
            )
            .await;
            let still = op.fleet.store.read(|c| c.task(&id)).map_err(internal)?;
            if still.is_none_or(|t| t.status != "pending_start") {
                return Err(refused(format!("DR task [{id}] no longer waits to start")));
            }
        }
    }
    status(&op, &id, "starting", "info", "starting".into()).await?;
    let full = t.sync_way == "full";
    let outcome = async {
        let s = sides(&mut op, t).await?;
        let mut plan = start_standby::plan(
            &mut op,
            s.source.clone(),
            s.login.clone(),
            full,
            s.standby.clone(),
            s.source_cluster.as_ref(),
        )
        .await?;
        plan.shaping = Shaping::from_task(&s.task.flow_control, s.task.migrate_definer);
        let scope = Scope::from_objects(&s.task.objects);
        let mut src = Node::connect(&s.source, &s.login).await.map_err(db)?;
        let copy = scope
            .resolve(&mut src)
            .await
            .map_err(db)?
            .map_err(refused)?;
        src.close().await;
        plan.schemas = copy.schemas;
        plan.ignore = copy.ignore;
        plan.filter = Some(scope.wild_do_table());
        let reporter = tokio::spawn(report_copy(
            op.fleet.clone(),
            id.clone(),
            plan.shaping.clone(),
        ));
        if full {
            status(
                &op,
                &id,
                "initializing",
                "info",
                "copying the source".into(),
            )
            .await?;
        }
        let mut ev = json!({"sync_way": s.task.sync_way, "source": s.source.to_string()});
        let sync = start_standby::establish(&mut op, &plan, &mut ev).await;
        reporter.abort();
        let sync = sync?;
        Ok::<_, Failure>((s, sync, ev))
    }
    .await;
    match outcome {
        Ok((s, sync, ev)) => {
            status(
                &op,
                &id,
                "syncing",
                "info",
                format!("replicating, sync {sync}"),
            )
            .await?;
            let output = op.steps.output(&ev);
            let source = s
                .task
                .source_cluster
                .clone()
                .unwrap_or_else(|| s.task.id.clone());
            let (b, way) = (s.task.standby_cluster.clone(), s.task.sync_way.clone());
            Ok(Done {
                effect: Box::new(move |conn| {
                    let store = |e: StoreError| EffectError::Store(e);
                    conn.set_standby(&b, &source, &way).map_err(store)?;
                    conn.set_sync_status(&b, sync).map_err(store)
                }),
                output,
            })
        }
        Err(f) => {
            let now = op.fleet.store.read(|c| c.task(&id)).map_err(internal)?;
            let failed = if now.is_some_and(|t| t.status == "initializing") {
                "init_failed"
            } else {
                "start_failed"
            };
            op.steps.failed("start", f.message.clone()).await;
            status(&op, &id, failed, "error", f.message.clone()).await?;
            Err(op.steps.fail(f, &Value::Null))
        }
    }
}

/// `StopDRTasks`' job: like `stop_standby`.
pub async fn run_stop(mut op: Op) -> Result<Done, Failure> {
    let t = task(&mut op)?;
    let id = t.id.clone();
    let b = t.standby_cluster.clone();
    let replicating = op
        .fleet
        .cluster(&b)?
        .is_some_and(|c| c.standby_of.is_some());
    let ev = if replicating {
        match detach::run(&mut op, "stopped").await {
            Ok(d) => d.evidence,
            Err(f) => {
                status(
                    &op,
                    &id,
                    "sync_failed",
                    "error",
                    format!("stop failed: {}", f.message),
                )
                .await?;
                return Err(f);
            }
        }
    } else {
        Value::Null
    };
    if Scope::from_objects(&t.objects) != Scope::All {
        // The standby no longer replicates for this task: a later one must
        // not inherit its selection.
        op.steps
            .begin("clear_filter", "replicate_wild_do_table=''")
            .await?;
        let members = op.fleet.members_of(&b)?;
        let mut n = op.fleet.connect(&members.primary).await?;
        runbook::set_filter(&mut n, "").await.map_err(db)?;
        n.close().await;
        op.steps.done("clear_filter", "").await?;
    }
    status(
        &op,
        &id,
        "stopped",
        "info",
        "replication stopped; the standby is an independent primary".into(),
    )
    .await?;
    Ok(Done {
        effect: Box::new(move |conn| conn.clear_standby(&b).map_err(EffectError::Store)),
        output: op.steps.output(&ev),
    })
}

/// `RetryDRTasks`' job: the replication threads restarted; `syncing` if
/// they run without error, else the task stays `sync_failed` with why.
pub async fn run_retry(mut op: Op) -> Result<Done, Failure> {
    let t = task(&mut op)?;
    let id = t.id.clone();
    let b = op.fleet.members_of(&t.standby_cluster)?;
    op.steps
        .begin("restart_replication", b.primary.name())
        .await?;
    let mut n = op.fleet.connect(&b.primary).await?;
    n.exec("STOP SLAVE").await.map_err(db)?;
    n.exec("START SLAVE").await.map_err(db)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let verdict = loop {
        let st = n.state().await.map_err(db)?;
        match st.replica {
            None => break Err("the standby does not replicate".to_string()),
            Some(r) if r.last_error().is_some() => break Err(r.last_error().unwrap_or_default()),
            Some(r) if r.io_running() && r.sql_running => break Ok(()),
            Some(r) if std::time::Instant::now() > deadline => {
                break Err(format!("IO thread {}", r.io_running));
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    n.close().await;
    match verdict {
        Ok(()) => {
            op.steps
                .done("restart_replication", "both threads run")
                .await?;
            status(&op, &id, "syncing", "info", "replication restarted".into()).await?;
            Ok(Done {
                effect: nothing(),
                output: op.steps.output(&Value::Null),
            })
        }
        Err(why) => {
            let f = Failure::new(5000, format!("ReplicationFailed, {why}"), false);
            op.steps.failed("restart_replication", why.clone()).await;
            status(
                &op,
                &id,
                "sync_failed",
                "error",
                format!("retry failed: {why}"),
            )
            .await?;
            Err(op.steps.fail(f, &Value::Null))
        }
    }
}

/// The initial copy's progress, every second while it runs: bytes fed
/// to the standby's nodes against the copy's size, and the time left at
/// the rate so far.
async fn report_copy(fleet: Fleet, task: String, shaping: Shaping) {
    use std::sync::atomic::Ordering;
    let started = std::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (fed, total) = (
            shaping.fed.load(Ordering::Relaxed),
            shaping.total.load(Ordering::Relaxed),
        );
        let rate = fed as f64 / started.elapsed().as_secs_f64().max(0.001);
        let progress = json!({"init": {
            "tables_done": shaping.tables_fed.load(Ordering::Relaxed),
            "tables_total": shaping.tables_total.load(Ordering::Relaxed),
            "bytes_copied": fed,
            "bytes_total": total,
            "percent": (fed * 100).checked_div(total).map_or(0, |p| p.min(100)),
            "remaining_time_s": if total > fed && rate > 0.0 { ((total - fed) as f64 / rate).round() } else { 0.0 },
            "max_mbps": shaping.max_bytes_per_sec.map(|b| b / (1024 * 1024)),
        }});
        let id = task.clone();
        let _ = fleet
            .store
            .change(move |c| c.set_task_progress(&id, &progress))
            .await;
    }
}
