//! `start_standby` on servers (seed 001, notes §B.2–B.3): the cluster's
//! nodes become a DR standby of the source primary named in the job.
//!
//! Steps, in order: precheck (nothing changes) → fence_standby (read-only)
//! → full: reset_standby, copy_source, restore, set_position | increment: —
//! → accounts → replicate → catch_up.

use std::time::{Duration, Instant};

use serde_json::json;

use super::fleet::{Members, db, refused};
use super::precheck;
use super::shaping::Shaping;
use super::{Op, ServersConfig, seed};
use crate::mariadb::runbook::{self, REPL_GRANTS};
use crate::mariadb::{Endpoint, Login, Node, NodeState};
use crate::store::dr_tasks::{self, DrTask};
use crate::store::effect::{Effect, EffectError};
use crate::worker::executor::{Done, Failure};

/// Privileges a full copy needs of the source account, beyond replication.
const COPY_GRANTS: &str = "SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES, RELOAD";

pub struct Plan {
    pub source: Endpoint,
    pub login: Login,
    pub full: bool,
    pub standby: Members,
    pub source_state: NodeState,
    /// For `full`: the schemas copied, and tables of them left out.
    pub schemas: Vec<String>,
    pub ignore: Vec<String>,
    /// The standby's `replicate_wild_do_table`, when a DR task sets it
    /// (empty: everything); `None` leaves the server's own setting.
    pub filter: Option<String>,
    /// How the copy is fed to the standby (a DR task's flow control).
    pub shaping: Shaping,
}

pub async fn run(mut op: Op) -> Result<Done, Failure> {
    let plan = precheck(&mut op).await?;
    let mut evidence = json!({"sync_way": if plan.full { "full" } else { "increment" },
                              "source": plan.source.to_string()});
    match establish(&mut op, &plan, &mut evidence).await {
        Ok(sync) => {
            let output = op.steps.output(&evidence);
            Ok(Done {
                effect: effect(&op, sync, evidence),
                output,
            })
        }
        Err(f) => {
            op.steps.failed("start_standby", f.message.clone()).await;
            Err(op.steps.fail(f, &evidence))
        }
    }
}

async fn precheck(op: &mut Op) -> Result<Plan, Failure> {
    let source = Endpoint {
        host: op.param_str("host").to_string(),
        port: op
            .param("port")
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(0),
    };
    let login = Login {
        user: op.param_str("user").to_string(),
        password: op.secret("passwd").unwrap_or_default(),
    };
    let full = op.param_str("sync_way") != "increment";
    let standby = op.fleet.members_of(&op.task.cluster)?;
    let source_cluster = op
        .fleet
        .members(op.param_str("cluster_id"))?
        .filter(|m| m.cluster.owner == op.job.owner);
    plan(op, source, login, full, standby, source_cluster.as_ref()).await
}

/// The pre-check ([`precheck::run`]) as a plan, or the refusal naming
/// every FAILED item. ALARM items are recorded as steps.
pub async fn plan(
    op: &mut Op,
    source: Endpoint,
    login: Login,
    full: bool,
    standby: Members,
    source_cluster: Option<&Members>,
) -> Result<Plan, Failure> {
    let checked = precheck::run(
        &op.fleet,
        &precheck::Sides {
            source: source.clone(),
            login: login.clone(),
            full,
            standby: &standby,
            source_cluster,
        },
    )
    .await;
    if let Some(why) = checked.refusal() {
        return Err(refused(format!("start_standby pre-check failed: {why}")));
    }
    for alarm in checked.items.iter().filter(|i| i.result == "ALARM") {
        op.steps
            .info(
                "precheck_alarm",
                format!("{}: {}", alarm.item, alarm.failed_reason),
            )
            .await?;
    }
    let source_state = checked
        .source_state
        .ok_or_else(|| refused("the source could not be read"))?;
    Ok(Plan {
        source,
        login,
        full,
        standby,
        source_state,
        schemas: checked.schemas,
        ignore: Vec::new(),
        filter: None,
        shaping: Shaping::default(),
    })
}

/// The steps; returns the sync status reached.
pub async fn establish(
    op: &mut Op,
    plan: &Plan,
    ev: &mut serde_json::Value,
) -> Result<&'static str, Failure> {
    let started = Instant::now();
    let members: Vec<_> = plan.standby.all().cloned().collect();
    op.steps
        .begin("fence_standby", "read_only=ON on every node")
        .await?;
    let mut nodes = Vec::new();
    for m in &members {
        let mut n = op.fleet.connect(m).await?;
        n.exec("SET GLOBAL read_only=ON").await.map_err(db)?;
        nodes.push(n);
    }
    op.steps.done("fence_standby", "").await?;

    let repl = op.fleet.repl_login().await?;
    if plan.full {
        op.steps
            .begin(
                "reset_standby",
                "STOP SLAVE; RESET SLAVE ALL; RESET MASTER on every node",
            )
            .await?;
        for n in nodes.iter_mut() {
            runbook::detach(n).await.map_err(db)?;
            n.exec("RESET MASTER").await.map_err(db)?;
        }
        op.steps.done("reset_standby", "").await?;
        op.steps
            .begin(
                "copy_source",
                format!("schemas: {}", plan.schemas.join(", ")),
            )
            .await?;
        let limit = Duration::from_secs(op.cfg.seed_timeout_secs);
        let whole = plan.filter.as_deref().is_none_or(str::is_empty);
        let (dump, copied) = seed::dump_settled(
            &plan.source,
            &plan.login,
            plan.schemas.clone(),
            &plan.ignore,
            whole,
            limit,
            op.cfg.scratch_dir.as_deref(),
        )
        .await?;
        if copied.len() > plan.schemas.len() {
            op.steps
                .info(
                    "copy_again",
                    format!(
                        "schemas appeared during the copy: {}",
                        copied[plan.schemas.len()..].join(", ")
                    ),
                )
                .await?;
        }
        op.steps
            .done(
                "copy_source",
                format!(
                    "{} bytes at {} in {} ms",
                    dump.bytes,
                    dump.gtid,
                    dump.took.as_millis()
                ),
            )
            .await?;
        plan.shaping.total.store(
            dump.bytes * members.len() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        plan.shaping.tables_total.store(
            super::shaping::tables_in(&dump.path) * members.len() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        ev["seed_gtid"] = json!(dump.gtid.to_string());
        ev["seed_bytes"] = json!(dump.bytes);
        ev["seed_ms"] = json!(dump.took.as_millis() as u64);
        op.steps
            .begin("restore", "into every node, sql_log_bin=0")
            .await?;
        for m in &members {
            seed::restore(
                &dump,
                &m.endpoint,
                &m.login,
                limit,
                &plan.shaping,
                op.cfg.scratch_dir.as_deref(),
            )
            .await?;
        }
        op.steps.done("restore", "").await?;
        op.steps
            .begin("set_position", dump.gtid.to_string())
            .await?;
        let g = dump.gtid.to_string();
        for n in nodes.iter_mut() {
            let lit = n.lit(&g);
            // Its binlog then starts where the source's history stands, so
            // a node chained below it finds the position.
            n.exec(&format!(
                "SET GLOBAL gtid_binlog_state={lit}; SET GLOBAL gtid_slave_pos={lit}"
            ))
            .await
            .map_err(db)?;
        }
        op.steps.done("set_position", "").await?;
    }

    op.steps
        .begin(
            "accounts",
            format!(
                "{} and [{}] on every node, not binlogged",
                repl.user, plan.login.user
            ),
        )
        .await?;
    for n in nodes.iter_mut() {
        runbook::ensure_account(n, &repl, REPL_GRANTS)
            .await
            .map_err(db)?;
        // The source's account exists here too, so that clusters chained
        // below this one, and a switch back, can sign in (notes §B.12 #2).
        if !runbook::account_exists(n, &plan.login.user)
            .await
            .map_err(db)?
        {
            runbook::ensure_account(n, &plan.login, &format!("{REPL_GRANTS}, {COPY_GRANTS}"))
                .await
                .map_err(db)?;
        }
    }
    op.steps.done("accounts", "").await?;

    op.steps
        .begin(
            "replicate",
            format!("{} → {}", plan.source, plan.standby.primary.name()),
        )
        .await?;
    let (first, rest) = nodes.split_at_mut(1);
    if let Some(f) = &plan.filter {
        // Only the node that replicates from the source filters: the nodes
        // below it get what it binlogs, which is already the selection.
        runbook::set_filter(&mut first[0], f).await.map_err(db)?;
    }
    runbook::replicate_from(&mut first[0], &plan.source, &plan.login, !plan.full)
        .await
        .map_err(db)?;
    if plan.full {
        for n in rest.iter_mut() {
            runbook::replicate_from(n, &plan.standby.primary.endpoint, &repl, false)
                .await
                .map_err(db)?;
        }
    }
    op.steps
        .done("replicate", "MASTER_USE_GTID=slave_pos")
        .await?;

    op.steps.begin("catch_up", "").await?;
    let mut src = Node::connect(&plan.source, &plan.login).await.map_err(db)?;
    let target = runbook::binlog_pos(&mut src).await.map_err(db)?;
    src.close().await;
    let reached = first[0]
        .gtid_wait(&target, ServersConfig::ms(op.cfg.relay_apply_timeout_ms))
        .await
        .map_err(db)?;
    let state = first[0].state().await.map_err(db)?;
    if let Some(e) = state.replica.as_ref().and_then(|r| r.last_error()) {
        return Err(Failure::new(
            5000,
            format!(
                "ReplicationFailed, {} stopped: {e}",
                plan.standby.primary.name()
            ),
            false,
        ));
    }
    let sync = if reached { "NORMAL" } else { "LAGGING" };
    op.steps
        .done(
            "catch_up",
            format!("{sync} at {} (source at {target})", state.current_pos),
        )
        .await?;
    ev["sync_status"] = json!(sync);
    ev["position"] = json!(state.current_pos.to_string());
    ev["source_server_id"] = json!(plan.source_state.server_id);
    ev["total_ms"] = json!(started.elapsed().as_millis() as u64);
    for n in nodes {
        n.close().await;
    }
    Ok(sync)
}

fn effect(op: &Op, sync: &'static str, evidence: serde_json::Value) -> Effect {
    let b = op.task.cluster.clone();
    let source = op.param_str("cluster_id").to_string();
    let sync_way = op.param_str("sync_way").to_string();
    let task = implicit_task(op);
    Box::new(move |conn| {
        let store = |e| EffectError::Store(e);
        conn.set_standby(&b, &source, &sync_way).map_err(store)?;
        conn.set_sync_status(&b, sync).map_err(store)?;
        conn.set_setting(&b, "dr_seed", &evidence).map_err(store)?;
        // Old scripts and new dashboards see the same relationship: a DR
        // task, unless one already follows this standby.
        let followed = conn
            .live_tasks()
            .map_err(store)?
            .iter()
            .any(|t| t.standby_cluster == b);
        if !followed {
            conn.insert_task(&task).map_err(store)?;
            conn.set_task_status(&task.id, "syncing", None)
                .map_err(store)?;
            conn.task_log(
                &task.id,
                "info",
                "created",
                "",
                &format!("created by start_standby on [{b}]; replicating, sync {sync}"),
            )
            .map_err(store)?;
        }
        Ok(())
    })
}

/// The task `start_standby` stands for: a registered source of the same
/// owner by cluster, any other by address and account (password sealed).
fn implicit_task(op: &Op) -> DrTask {
    let id = crate::ids::dr_task_id();
    let source = op.param_str("cluster_id").to_string();
    let registered = op
        .fleet
        .cluster(&source)
        .ok()
        .flatten()
        .is_some_and(|c| c.owner == op.job.owner && c.on_servers());
    let endpoint = Endpoint {
        host: op.param_str("host").to_string(),
        port: op
            .param("port")
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(0),
    };
    let secret = (!registered).then(|| {
        dr_tasks::seal_source_password(
            &op.fleet.store.master,
            &id,
            &op.secret("passwd").unwrap_or_default(),
        )
    });
    let mut t = DrTask::new(
        id,
        &op.job.owner,
        &op.job.zone,
        &format!("standby-{}", op.task.cluster),
        &op.task.cluster,
    );
    t.description = "created by start_standby".into();
    t.sync_way = op.param_str("sync_way").to_string();
    if registered {
        t.source_cluster = Some(source);
    } else {
        t.source_endpoint = endpoint.to_string();
        t.source_user = op.param_str("user").to_string();
        t.source_secret = secret;
    }
    t
}
