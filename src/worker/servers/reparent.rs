//! A planned change of primary with no data loss, between two servers
//! where one replicates from the other: what `switchover` (between
//! clusters) and `assignmaster` (between a cluster's nodes) share (notes
//! §A, §B.6). The write-unavailable window runs from `fence` to `promote`.
//!
//! Steps, in order: accounts → pre_sync → journal → fence →
//! fence_position → catch_up (else undo_fence) → promote → demote →
//! repoint → verify.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::checks::{healthy_replica, promotable};
use super::fleet::{Member, db, refused};
use super::{Op, ServersConfig};
use crate::mariadb::runbook::{self, REPL_GRANTS};
use crate::mariadb::{GtidPos, Node};
use crate::worker::executor::Failure;

pub struct Reparent {
    pub old: Member,
    pub new: Member,
    /// Servers that follow the new primary afterwards.
    pub to_new: Vec<Member>,
    /// Servers that follow the old primary (now a standby) afterwards.
    pub to_old: Vec<Member>,
    pub semi_sync: bool,
}

/// The pre-checks on the pair; returns whether the old primary runs semi-sync.
pub async fn precheck(op: &mut Op, old: &Member, new: &Member) -> Result<bool, Failure> {
    let mut p = op.fleet.connect(old).await.map_err(|f| {
        refused(format!(
            "the primary {} does not answer ({}); a switchover needs both sides online, use failover",
            old.name(),
            f.message
        ))
    })?;
    let mut s = op.fleet.connect(new).await?;
    // The standby first: read after it, the primary can only be further
    // ahead, so a transaction the standby has and the primary lacks is
    // really errant, not one that arrived in between.
    let ss = s.state().await.map_err(db)?;
    let ps = p.state().await.map_err(db)?;
    if ps.replica.is_some() {
        return Err(refused(format!(
            "{} replicates from another server: it is not the top of the chain",
            old.name()
        )));
    }
    healthy_replica(&new.name(), &ss, &old.endpoint)?;
    promotable(&new.name(), &ss)?;
    let errant = ss.binlog_state.errant_against(&ps.binlog_state);
    if !errant.is_empty() {
        return Err(refused(format!(
            "{} has transactions the primary never had ({}): promoting it would fork the history",
            new.name(),
            errant.join(", ")
        )));
    }
    let lag = ss.slave_pos.behind(&ps.binlog_pos);
    if lag > op.cfg.max_lag_trx {
        return Err(refused(format!(
            "{} is {lag} transactions behind the primary (limit {}); wait until it catches up",
            new.name(),
            op.cfg.max_lag_trx
        )));
    }
    let long = runbook::long_write_transactions(&mut p, op.cfg.long_trx_secs)
        .await
        .map_err(db)?;
    if !long.is_empty() {
        return Err(refused(format!(
            "the primary {} has write transactions open longer than {} s ({}); the fence would wait for them",
            old.name(),
            op.cfg.long_trx_secs,
            long.join(", ")
        )));
    }
    p.close().await;
    s.close().await;
    Ok(ps.semi_sync_master)
}

pub type StepError = (Failure, bool);

fn before_promote(f: Failure) -> StepError {
    (f, false)
}

pub async fn run(op: &mut Op, plan: &Reparent, ev: &mut Value) -> Result<(), StepError> {
    let started = Instant::now();
    let (pm, sm) = (&plan.old, &plan.new);
    let mut p = op.fleet.connect(pm).await.map_err(before_promote)?;
    let mut s = op.fleet.connect(sm).await.map_err(before_promote)?;
    let repl = op.fleet.repl_login().await.map_err(before_promote)?;

    op.steps
        .begin(
            "accounts",
            format!("{} on both primaries, not binlogged", repl.user),
        )
        .await
        .map_err(before_promote)?;
    for n in [&mut p, &mut s] {
        runbook::ensure_account(n, &repl, REPL_GRANTS)
            .await
            .map_err(|e| before_promote(db(e)))?;
    }
    op.steps
        .done("accounts", "")
        .await
        .map_err(before_promote)?;

    // Pre-sync: the standby close to the primary before anything is fenced.
    let t = Instant::now();
    let g0 = runbook::binlog_pos(&mut p)
        .await
        .map_err(|e| before_promote(db(e)))?;
    op.steps
        .begin("pre_sync", format!("{} reaches {g0}", sm.name()))
        .await
        .map_err(before_promote)?;
    let synced = s
        .gtid_wait(&g0, ServersConfig::ms(op.cfg.pre_sync_timeout_ms))
        .await
        .map_err(|e| before_promote(db(e)))?;
    if !synced {
        return Err(before_promote(refused(format!(
            "{} did not reach the primary's position {g0} within {} ms; nothing was fenced",
            sm.name(),
            op.cfg.pre_sync_timeout_ms
        ))));
    }
    op.steps
        .done("pre_sync", format!("{} ms", t.elapsed().as_millis()))
        .await
        .map_err(before_promote)?;
    ev["pre_sync_ms"] = json!(t.elapsed().as_millis() as u64);

    let begin = runbook::journal(
        &mut p,
        "switchover",
        &op.job.job_id,
        &format!("{} -> {}", pm.endpoint, sm.endpoint),
    )
    .await
    .map_err(|e| before_promote(db(e)))?;
    op.steps
        .info("journal", format!("switchover begins at {begin}"))
        .await
        .map_err(before_promote)?;

    // The window opens.
    op.steps
        .begin(
            "fence",
            format!("{}: FLUSH TABLES WITH READ LOCK, read_only=ON", pm.name()),
        )
        .await
        .map_err(before_promote)?;
    let fence_at = Instant::now();
    if let Err(e) = runbook::fence(&mut p, Duration::from_secs(op.cfg.lock_wait_secs)).await {
        let _ = runbook::unfence(&mut p).await;
        return Err(before_promote(refused(format!(
            "the primary {} could not be fenced ({e}); it was left writable",
            pm.name()
        ))));
    }
    let killed = runbook::kill_read_only_admins(&mut p)
        .await
        .map_err(|e| before_promote(db(e)))?;
    op.steps
        .done(
            "fence",
            format!("{killed} READ_ONLY ADMIN session(s) ended"),
        )
        .await
        .map_err(before_promote)?;
    let g = match runbook::binlog_pos(&mut p).await {
        Ok(g) => g,
        Err(e) => return Err(undo(op, &mut p, db(e)).await),
    };
    ev["fence_gtid"] = json!(g.to_string());
    if let Err(f) = op.steps.info("fence_position", g.to_string()).await {
        return Err(undo(op, &mut p, f).await);
    }

    let t = Instant::now();
    if let Err(f) = op
        .steps
        .begin("catch_up", format!("{} applies {g}", sm.name()))
        .await
    {
        return Err(undo(op, &mut p, f).await);
    }
    let limit = ServersConfig::ms(op.cfg.catch_up_timeout_ms);
    match s.gtid_wait(&g, limit).await {
        Ok(true) => {}
        Ok(false) => {
            let at = runbook::current_pos(&mut s).await.unwrap_or_default();
            let why = refused(format!(
                "catch-up timeout: {} was at {at} and did not reach the fence position {g} within {} ms; the fence was undone and {} is writable again",
                sm.name(),
                op.cfg.catch_up_timeout_ms,
                pm.name()
            ));
            return Err(undo(op, &mut p, why).await);
        }
        Err(e) => return Err(undo(op, &mut p, db(e)).await),
    }
    let at = match runbook::current_pos(&mut s).await {
        Ok(at) => at,
        Err(e) => return Err(undo(op, &mut p, db(e)).await),
    };
    // RPO 0: the standby holds exactly what the fenced primary wrote.
    if !same_history(&at, &g) {
        let why = refused(format!(
            "{} is at {at}, not exactly at the fence position {g}; the fence was undone",
            sm.name()
        ));
        return Err(undo(op, &mut p, why).await);
    }
    ev["standby_gtid"] = json!(at.to_string());
    ev["catch_up_ms"] = json!(t.elapsed().as_millis() as u64);
    if let Err(f) = op
        .steps
        .done("catch_up", format!("at {at} = fence position"))
        .await
    {
        return Err(undo(op, &mut p, f).await);
    }

    if let Err(f) = op
        .steps
        .begin(
            "promote",
            format!("{}: RESET SLAVE ALL, read_only=OFF", sm.name()),
        )
        .await
    {
        return Err(undo(op, &mut p, f).await);
    }
    let promoted = async {
        if plan.semi_sync {
            runbook::semi_sync(&mut s, true, ServersConfig::ms(op.cfg.semi_sync_timeout_ms))
                .await?;
        }
        runbook::promote(&mut s).await
    }
    .await;
    let window = fence_at.elapsed();
    if let Err(e) = promoted {
        // Not writable, not replicating: inspect before anything else.
        let writable = s.state().await.map(|st| st.writable()).unwrap_or(false);
        if writable {
            return Err((db(e), true));
        }
        return Err(undo(op, &mut p, db(e)).await);
    }
    ev["window_ms"] = json!(window.as_secs_f64() * 1000.0);
    // From here the standby is the primary: failures no longer undo.
    let after = |f: Failure| (f, true);
    op.steps
        .done(
            "promote",
            format!("window {:.1} ms", window.as_secs_f64() * 1000.0),
        )
        .await
        .map_err(after)?;

    op.steps
        .begin("demote", format!("{} follows {}", pm.name(), sm.name()))
        .await
        .map_err(after)?;
    runbook::kill_read_only_admins(&mut p)
        .await
        .map_err(|e| after(db(e)))?;
    p.exec("UNLOCK TABLES").await.map_err(|e| after(db(e)))?;
    if plan.semi_sync {
        runbook::semi_sync(&mut p, false, Duration::ZERO)
            .await
            .map_err(|e| after(db(e)))?;
    }
    runbook::replicate_from(&mut p, &sm.endpoint, &repl, true)
        .await
        .map_err(|e| after(db(e)))?;
    op.steps.done("demote", "").await.map_err(after)?;

    let mut repointed = Vec::new();
    for (m, target) in plan
        .to_new
        .iter()
        .map(|m| (m, sm))
        .chain(plan.to_old.iter().map(|m| (m, pm)))
    {
        op.steps
            .begin("repoint", format!("{} follows {}", m.name(), target.name()))
            .await
            .map_err(after)?;
        let mut n = op.fleet.connect(m).await.map_err(after)?;
        if std::ptr::eq(target, pm) {
            // It followed the new primary, so it may hold its first writes:
            // the old primary must have them before it serves this node
            // (else strict mode refuses the node as ahead of its source).
            n.exec("STOP SLAVE").await.map_err(|e| after(db(e)))?;
            let at = n.state().await.map_err(|e| after(db(e)))?.slave_pos;
            let within = ServersConfig::ms(op.cfg.relay_apply_timeout_ms);
            if !p.gtid_wait(&at, within).await.map_err(|e| after(db(e)))? {
                return Err(after(Failure::new(
                    5000,
                    format!(
                        "ReplicationFailed, {} did not reach {at}, where {} stands, within {} ms; {} is not replicating",
                        pm.name(),
                        m.name(),
                        op.cfg.relay_apply_timeout_ms,
                        m.name()
                    ),
                    false,
                )));
            }
        }
        runbook::replicate_from(&mut n, &target.endpoint, &repl, false)
            .await
            .map_err(|e| after(db(e)))?;
        n.close().await;
        op.steps.done("repoint", "").await.map_err(after)?;
        repointed.push(json!({"node": m.name(), "follows": target.name()}));
    }
    ev["repointed"] = json!(repointed);

    // Like Vitess's reparent journal: a row written on the new primary
    // reaches every member.
    op.steps
        .begin("verify", "journal row on the new primary")
        .await
        .map_err(after)?;
    let mark = runbook::journal(
        &mut s,
        "switchover-done",
        &op.job.job_id,
        &sm.endpoint.to_string(),
    )
    .await
    .map_err(|e| after(db(e)))?;
    // The demoted primary must receive it; the repointed servers must
    // replicate without error (they may lag behind a busy primary: their
    // lag is what DescribeClusterStandbys shows, not a reason to wait).
    let reached = p
        .gtid_wait(&mark, Duration::from_secs(5))
        .await
        .unwrap_or(false);
    if !reached {
        op.steps
            .info(
                "warning",
                format!("{mark} did not reach {} within 5 s", pm.name()),
            )
            .await
            .map_err(after)?;
    }
    let mut broken = Vec::new();
    for m in plan.to_new.iter().chain(plan.to_old.iter()) {
        let mut n = op.fleet.connect(m).await.map_err(after)?;
        if let Some(why) = replicating(&mut n).await {
            broken.push(format!("{}: {why}", m.name()));
        }
        n.close().await;
    }
    op.steps
        .done(
            "verify",
            format!(
                "{mark} {} {}; {} repointed server(s) replicating",
                if reached {
                    "reached"
                } else {
                    "has not yet reached"
                },
                pm.name(),
                plan.to_new.len() + plan.to_old.len() - broken.len()
            ),
        )
        .await
        .map_err(after)?;
    if !broken.is_empty() {
        op.steps
            .info("warning", broken.join("; "))
            .await
            .map_err(after)?;
    }
    ev["journal_gtid"] = json!(mark.to_string());
    ev["total_ms"] = json!(started.elapsed().as_millis() as u64);
    ev["new_primary"] = json!(sm.name());
    p.close().await;
    s.close().await;
    Ok(())
}

/// `None` once both replication threads run without error (waiting up to
/// 2 s for the IO thread to connect); else why not.
async fn replicating(n: &mut Node) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let st = match n.state().await {
            Ok(st) => st,
            Err(e) => return Some(e.to_string()),
        };
        let Some(r) = st.replica else {
            return Some("not replicating".into());
        };
        if let Some(e) = r.last_error() {
            return Some(e);
        }
        if r.io_running() && r.sql_running {
            return None;
        }
        if Instant::now() > deadline {
            return Some(format!("IO thread {}", r.io_running));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Same transactions in every domain the fence position names.
fn same_history(at: &GtidPos, fence: &GtidPos) -> bool {
    at.covers(fence) && fence.domains().all(|d| at.seq(d) == fence.seq(d))
}

/// The fence comes off: the old primary takes writes again.
async fn undo(op: &mut Op, p: &mut Node, why: Failure) -> StepError {
    let undone = op
        .steps
        .begin("undo_fence", "read_only=OFF, UNLOCK TABLES")
        .await;
    match runbook::unfence(p).await {
        Ok(()) => {
            if undone.is_ok() {
                let _ = op.steps.done("undo_fence", "").await;
            }
        }
        Err(e) => {
            op.steps.failed("undo_fence", e.to_string()).await;
            let mut f = why;
            f.message = format!("{}; undoing the fence failed too: {e}", f.message);
            return (f, false);
        }
    }
    (why, false)
}
