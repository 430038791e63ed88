//! Every second, each syncing DR task's replication as its servers show it
//! (notes §B.9): positions, threads, errors, RPO (not yet received) and
//! RTO (received, not applied) in transactions, and the delay of a
//! heartbeat row written on a registered source. Stored with the task, so
//! `DescribeDRTaskProgress` costs nothing; a status change, a replication
//! error, and a lag alarm starting or ending are written to the task's log.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::watch;

use super::fleet::Fleet;
use super::live;
use super::scope::Scope;
use crate::clock::{format_ts, now_unix};
use crate::mariadb::runbook::{self, META_DB};
use crate::mariadb::{Login, Node, cell, ident};

/// The account heartbeats are written with (no READ_ONLY ADMIN).
const HEARTBEAT_USER: &str = "qcgate_hb";
use crate::store::dr_tasks::{self, DrTask};

const EVERY: Duration = Duration::from_secs(1);
/// How long a heartbeat may take to show on the standby before the delay
/// is computed from the row it still has.
const HEARTBEAT_WAIT: Duration = Duration::from_millis(500);
/// How long the applier is timed before its delay is reported as capped.
const APPLY_WAIT: Duration = Duration::from_millis(500);

pub async fn run(fleet: Fleet, mut stop: watch::Receiver<bool>) {
    let mut ready: HashSet<String> = HashSet::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.changed() => return,
        }
        // On a shared store one gateway samples (and restores filters) at a
        // time, not each of them.
        if !fleet.store.leads_sampling().await {
            continue;
        }
        let tasks = match fleet.store.read(|m| m.sampled_tasks()) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "reading DR tasks to sample");
                continue;
            }
        };
        for t in tasks {
            if *stop.borrow() {
                return;
            }
            sample(&fleet, &t, &mut ready).await;
        }
    }
}

/// An external source's login, from the task.
fn external_login(fleet: &Fleet, t: &DrTask) -> Option<Login> {
    let password = dr_tasks::open_source_password(&fleet.store.master, t).ok()??;
    Some(Login {
        user: t.source_user.clone(),
        password,
    })
}

/// Writes a heartbeat on a registered source and measures how long it takes
/// to show on the standby (ms); `None` when there is no registered source.
async fn heartbeat(fleet: &Fleet, t: &DrTask, ready: &mut HashSet<String>) -> Option<f64> {
    let src = fleet.members(t.source_cluster.as_deref()?).ok()??;
    let standby = fleet.members(&t.standby_cluster).ok()??;
    fleet.check_allowed(&src.primary.endpoint).ok()?;
    let limit = Duration::from_secs(1);
    // Written through an account without READ_ONLY ADMIN: on a server that
    // is read-only (a primary being fenced or just demoted, which the task
    // may not show yet) the write fails instead of forking its history.
    let hb = Login {
        user: HEARTBEAT_USER.to_string(),
        password: fleet.repl_login().await.ok()?.password,
    };
    let key = format!("{}/{}", t.id, src.primary.endpoint);
    if !ready.contains(&key) {
        let mut admin = Node::connect_within(&src.primary.endpoint, &src.primary.login, limit)
            .await
            .ok()?;
        let on = format!("{}.*", ident(META_DB));
        let made = runbook::ensure_account_on(
            &mut admin,
            &hb,
            "CREATE, INSERT, UPDATE, DELETE, SELECT",
            &on,
        )
        .await;
        admin.close().await;
        made.ok()?;
    }
    let mut p = Node::connect_within(&src.primary.endpoint, &hb, limit)
        .await
        .ok()?;
    let table = format!("{}.heartbeat", ident(META_DB));
    if !ready.contains(&key) {
        p.exec(&format!(
            "CREATE DATABASE IF NOT EXISTS {}; CREATE TABLE IF NOT EXISTS {table} \
             (id VARCHAR(32) PRIMARY KEY, ts DATETIME(6) NOT NULL) ENGINE=InnoDB",
            ident(META_DB)
        ))
        .await
        .ok()?;
        ready.insert(key);
    }
    let id = p.lit(&t.id);
    p.exec(&format!(
        "REPLACE INTO {table} (id, ts) VALUES ({id}, NOW(6))"
    ))
    .await
    .ok()?;
    let written = p
        .rows(&format!("SELECT ts FROM {table} WHERE id = {id}"))
        .await
        .ok()?;
    let written = written.first().map(|r| cell(r, 0))?;
    p.close().await;
    let mut s = Node::connect_within(&standby.primary.endpoint, &standby.primary.login, limit)
        .await
        .ok()?;
    let started = Instant::now();
    let lit = s.lit(&written);
    let delay = loop {
        let seen = s
            .rows(&format!(
                "SELECT TIMESTAMPDIFF(MICROSECOND, ts, {lit}) FROM {table} WHERE id = {id}"
            ))
            .await
            .ok()
            .and_then(|r| r.first().map(|r| cell(r, 0)))
            .and_then(|v| v.parse::<i64>().ok());
        match seen {
            Some(behind) if behind <= 0 => break started.elapsed().as_secs_f64() * 1000.0,
            Some(behind) if started.elapsed() > HEARTBEAT_WAIT => break behind as f64 / 1000.0,
            None if started.elapsed() > HEARTBEAT_WAIT => break f64::NAN,
            _ => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    };
    s.close().await;
    delay.is_finite().then_some(delay)
}

/// How long the standby takes to apply what it had received (ms, capped
/// at [`APPLY_WAIT`]; the flag says the cap was hit): DRS's RTO as time.
async fn apply_delay(fleet: &Fleet, t: &DrTask, received: &str) -> Option<(f64, bool)> {
    if received.is_empty() {
        return Some((0.0, false));
    }
    let standby = fleet.members(&t.standby_cluster).ok()??;
    let mut s = Node::connect_within(
        &standby.primary.endpoint,
        &standby.primary.login,
        Duration::from_secs(1),
    )
    .await
    .ok()?;
    let started = Instant::now();
    let waited = s
        .text(&format!(
            "SELECT MASTER_GTID_WAIT({}, {})",
            s.lit(received),
            APPLY_WAIT.as_secs_f64()
        ))
        .await
        .ok();
    s.close().await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    match waited.as_deref() {
        Some("0") => Some((ms, false)),
        Some("-1") => Some((APPLY_WAIT.as_secs_f64() * 1000.0, true)),
        _ => None,
    }
}

/// A task's selection lives in a server variable that a restart clears:
/// it is set again (the applier restarted), and the task's log says so.
async fn keep_filter(fleet: &Fleet, t: &DrTask) {
    let scope = Scope::from_objects(&t.objects);
    if scope == Scope::All || !matches!(t.status.as_str(), "syncing" | "sync_failed") {
        return;
    }
    let Some(m) = fleet.members(&t.standby_cluster).ok().flatten() else {
        return;
    };
    let Ok(mut n) = Node::connect_within(
        &m.primary.endpoint,
        &m.primary.login,
        Duration::from_secs(1),
    )
    .await
    else {
        return;
    };
    let want = scope.wild_do_table();
    let have = n.text("SELECT @@replicate_wild_do_table").await;
    if have.as_deref().map_or(true, |h| h == want) {
        n.close().await;
        return;
    }
    let restored = async {
        runbook::set_filter(&mut n, &want).await?;
        n.exec("START SLAVE").await
    }
    .await;
    n.close().await;
    let (id, message) = match restored {
        Ok(()) => (
            t.id.clone(),
            format!(
                "the standby had lost the task's replication filter (restarted?); set again: {want}"
            ),
        ),
        Err(e) => (
            t.id.clone(),
            format!(
                "the standby lost the task's replication filter and it could not be set again: {e}"
            ),
        ),
    };
    tracing::warn!(task = %t.id, "{message}");
    let _ = fleet
        .store
        .change(move |c| c.task_log(&id, "warning", "filter_restored", "", &message))
        .await;
}

async fn sample(fleet: &Fleet, t: &DrTask, ready: &mut HashSet<String>) {
    keep_filter(fleet, t).await;
    let delay = heartbeat(fleet, t, ready).await;
    let login = if t.source_cluster.is_none() {
        external_login(fleet, t)
    } else {
        None
    };
    let Some(l) = live::standby_with(fleet, &t.standby_cluster, login).await else {
        return;
    };
    let d = &l.detail;
    let apply = apply_delay(fleet, t, d["received_gtid"].as_str().unwrap_or_default()).await;
    let progress = json!({
        "sync_status": l.sync_status,
        "rpo": {"gtid_set": d["primary_gtid"], "received_gtid": d["received_gtid"], "lag_trx": d["rpo_trx"],
                "delay_ms": delay, "time": format_ts(now_unix())},
        "rto": {"applied_gtid": d["applied_gtid"], "lag_trx": d["rto_trx"],
                "delay_ms": apply.map(|a| a.0), "delay_capped": apply.map(|a| a.1),
                "time": format_ts(now_unix())},
        "lag_trx": d["lag_trx"],
        "io_running": d["io_running"],
        "sql_running": d["sql_running"],
        "last_error": d["last_error"],
        "semisync_status": if d["semi_sync"] == Value::Bool(true) { "ON" } else { "OFF" },
        "source": d["source"],
        "sampled_at": format_ts(now_unix()),
    });
    let previous = t
        .progress
        .as_ref()
        .and_then(|p| p["sync_status"].as_str().map(str::to_string));
    let (id, status, sync) = (t.id.clone(), t.status.clone(), l.sync_status.clone());
    let error = d["last_error"].as_str().unwrap_or_default().to_string();
    let lag = d["lag_trx"].clone();
    let sampled = (
        t.status.clone(),
        t.status_time,
        t.standby_cluster.clone(),
        t.source_cluster.clone(),
    );
    let written = fleet
        .store
        .change(move |c| {
            // A job may have moved the task while it was sampled (a
            // switchover turns it around): that sample is stale, and the
            // next one decides (a finished switchover is no broken link).
            // Locked, so that the job cannot move it between check and write.
            let unchanged = c.task_locked(&id)?.is_some_and(|cur| {
                (
                    cur.status,
                    cur.status_time,
                    cur.standby_cluster,
                    cur.source_cluster,
                ) == sampled
            });
            if !unchanged {
                return Ok(false);
            }
            c.set_task_progress(&id, &progress)?;
            let broken = sync == "BROKEN" || sync == "STOPPED";
            if status == "syncing" && broken {
                c.set_task_status(&id, "sync_failed", Some(&error))?;
                c.task_log(
                    &id,
                    "error",
                    "replication_broken",
                    "",
                    &format!("replication {sync}: {error}"),
                )?;
            } else if status == "sync_failed" && !broken {
                c.set_task_status(&id, "syncing", Some(""))?;
                c.task_log(
                    &id,
                    "info",
                    "replication_recovered",
                    "",
                    &format!("replication {sync} again"),
                )?;
            }
            match (previous.as_deref(), sync.as_str()) {
                (Some(p), "LAGGING") if p != "LAGGING" => c.task_log(
                    &id,
                    "warning",
                    "lag_alarm",
                    "",
                    &format!("lag alarm: {lag} transaction(s) behind"),
                )?,
                (Some("LAGGING"), s) if s != "LAGGING" => c.task_log(
                    &id,
                    "info",
                    "lag_cleared",
                    "",
                    &format!("lag alarm cleared ({s})"),
                )?,
                _ => {}
            }
            Ok(true)
        })
        .await;
    if let Err(e) = written {
        tracing::warn!(error = %e, task = %t.id, "recording a DR task's progress");
    }
}
