//! `failover` on servers (notes §B.7): the primary is gone; this standby
//! becomes the primary once everything it received is applied, provided no
//! other standby of the same primary is further ahead. The old primary's
//! other standbys stay with it (decouple or fail them over).
//!
//! Steps: precheck (the primary does not answer) → stop_io → apply_relay
//! → rank → promote (or restore_io and refuse).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::checks::promotable;
use super::fleet::{Member, Members, db, refused};
use super::{Op, ServersConfig};
use crate::mariadb::{GtidPos, Node, NodeState, runbook};
use crate::services::topology::{self, Change};
use crate::store::effect::EffectError;
use crate::worker::executor::{Done, Failure};

struct Candidate {
    cluster: String,
    member: Member,
    node: Node,
    state: NodeState,
}

pub async fn run(mut op: Op) -> Result<Done, Failure> {
    let started = Instant::now();
    let b = op.fleet.members_of(&op.task.cluster)?;
    let Some(a_id) = b.cluster.standby_of.clone() else {
        return Err(refused(format!(
            "cluster [{}] is not a standby; failover runs on a standby cluster",
            b.id()
        )));
    };
    let a = op.fleet.members(&a_id)?;
    primary_is_gone(&op, a.as_ref(), &a_id).await?;

    // This standby first, then its siblings under the same primary.
    let mut candidates = vec![connect(&op, &b).await?];
    for id in op.fleet.standbys_of(&a_id)? {
        if id == b.id() {
            continue;
        }
        if let Some(m) = op.fleet.members(&id)?
            && let Ok(c) = connect(&op, &m).await
        {
            candidates.push(c);
        }
    }
    for c in &candidates {
        if c.state.replica.as_ref().is_some_and(|r| r.io_running()) {
            return Err(refused(format!(
                "{} still receives from the primary of [{a_id}]: it is not gone",
                c.member.name()
            )));
        }
    }
    promotable(&b.primary.name(), &candidates[0].state)?;
    let mut ev = json!({"old_primary": a_id});

    match steps(&mut op, &mut candidates, &mut ev).await {
        Ok(()) => {
            ev["total_ms"] = json!(started.elapsed().as_millis() as u64);
            let mut changed = topology::observed(Change::Failover, b.id());
            let note = json!({
                "by": b.id(),
                "promoted_gtid": ev["promoted_gtid"],
                "time": crate::clock::format_ts(crate::clock::now_unix()),
            });
            Ok(Done {
                effect: Box::new(move |conn| {
                    changed(conn)?;
                    conn.set_setting(&a_id, "dr_invalidated", &note)
                        .map_err(EffectError::Store)
                }),
                output: op.steps.output(&ev),
            })
        }
        Err(f) => {
            op.steps.failed("failover", f.message.clone()).await;
            Err(op.steps.fail(f, &ev))
        }
    }
}

/// Refuses unless the old primary fails every probe.
async fn primary_is_gone(op: &Op, a: Option<&Members>, a_id: &str) -> Result<(), Failure> {
    let Some(a) = a else {
        return Err(refused(format!(
            "primary [{a_id}] is not bound to servers; its state cannot be checked"
        )));
    };
    let mut last = String::new();
    for i in 0..op.cfg.failover_probes.max(1) {
        if i > 0 {
            tokio::time::sleep(ServersConfig::ms(op.cfg.failover_probe_interval_ms)).await;
        }
        op.fleet.check_allowed(&a.primary.endpoint)?;
        match Node::connect_within(
            &a.primary.endpoint,
            &a.primary.login,
            Duration::from_secs(1),
        )
        .await
        {
            Ok(n) => {
                n.close().await;
                return Err(refused(format!(
                    "primary [{a_id}] is online ({} answers); use switchover, which loses no data",
                    a.primary.name()
                )));
            }
            Err(e) => last = e.to_string(),
        }
    }
    tracing::info!(cluster = a_id, %last, "the primary is gone");
    Ok(())
}

async fn connect(op: &Op, m: &Members) -> Result<Candidate, Failure> {
    let mut node = op.fleet.connect(&m.primary).await?;
    let state = node.state().await.map_err(db)?;
    Ok(Candidate {
        cluster: m.id().to_string(),
        member: m.primary.clone(),
        node,
        state,
    })
}

async fn steps(op: &mut Op, cands: &mut [Candidate], ev: &mut Value) -> Result<(), Failure> {
    op.steps
        .begin(
            "stop_io",
            "every standby of the old primary stops receiving",
        )
        .await?;
    let mut received = Vec::new();
    for c in cands.iter_mut() {
        c.node.exec("STOP SLAVE IO_THREAD").await.map_err(db)?;
        c.state = c.node.state().await.map_err(db)?;
        let r = c
            .state
            .replica
            .as_ref()
            .map(|r| r.received.clone())
            .unwrap_or_default();
        received.push(json!({"node": c.member.name(), "received": r.to_string()}));
    }
    ev["received"] = json!(received);
    op.steps.done("stop_io", "").await?;

    // Never promote with unapplied relay log; start only the SQL thread
    // (starting both would purge the relay log, MDEV-4698).
    op.steps.begin("apply_relay", "").await?;
    let mut stuck = None;
    for c in cands.iter_mut() {
        let Some(r) = c.state.replica.clone() else {
            continue;
        };
        if !r.sql_running && r.last_sql_errno == 0 {
            c.node.exec("START SLAVE SQL_THREAD").await.map_err(db)?;
        }
        let ok = c
            .node
            .gtid_wait(
                &r.received,
                ServersConfig::ms(op.cfg.relay_apply_timeout_ms),
            )
            .await
            .map_err(db)?;
        if !ok {
            stuck = Some((c.member.name(), r.received.clone()));
            break;
        }
        c.state = c.node.state().await.map_err(db)?;
    }
    if let Some((name, received)) = stuck {
        restore_io(cands).await;
        return Err(Failure::new(
            5000,
            format!(
                "ReplicationFailed, {name} did not apply its relay log ({received}) within {} ms; nothing was promoted",
                op.cfg.relay_apply_timeout_ms
            ),
            false,
        ));
    }
    op.steps.done("apply_relay", "").await?;

    op.steps.begin("rank", "by applied position").await?;
    let target = cands[0].state.current_pos.clone();
    let mut ahead = Vec::new();
    let mut forked = None;
    for c in cands.iter().skip(1) {
        let theirs = &c.state.current_pos;
        if !target.covers(theirs) && !theirs.covers(&target) {
            forked = Some(format!(
                "split brain: [{}] at {target} and [{}] at {theirs} have diverged; promote neither before inspecting them",
                cands[0].cluster, c.cluster
            ));
            break;
        }
        let n = target.behind(theirs);
        if n > 0 {
            ahead.push((c.cluster.clone(), n));
        }
    }
    if let Some(why) = forked {
        restore_io(cands).await;
        return Err(refused(why));
    }
    if let Some((best, n)) = ahead.iter().max_by_key(|(_, n)| *n).cloned() {
        if op.param("catch_up").as_u64() != Some(1) {
            restore_io(cands).await;
            return Err(refused(format!(
                "standby [{best}] is ahead of [{}] by {n} transactions; fail over to [{best}] instead, which loses less, or retry with catch_up 1",
                cands[0].cluster
            )));
        }
        catch_up_from(op, cands, &best, n).await?;
    }
    let positions: Vec<Value> = cands
        .iter()
        .map(|c| json!({"cluster": c.cluster, "position": c.state.current_pos.to_string()}))
        .collect();
    ev["positions"] = json!(positions);
    op.steps
        .done(
            "rank",
            format!("[{}] is the most advanced at {target}", cands[0].cluster),
        )
        .await?;

    op.steps
        .begin(
            "promote",
            format!("{}: RESET SLAVE ALL, read_only=OFF", cands[0].member.name()),
        )
        .await?;
    let t = Instant::now();
    let winner = &mut cands[0];
    if winner.state.semi_sync_slave {
        runbook::semi_sync(
            &mut winner.node,
            true,
            ServersConfig::ms(op.cfg.semi_sync_timeout_ms),
        )
        .await
        .map_err(db)?;
    }
    runbook::promote(&mut winner.node).await.map_err(db)?;
    let promoted: GtidPos = runbook::current_pos(&mut winner.node).await.map_err(db)?;
    ev["promoted_gtid"] = json!(promoted.to_string());
    ev["promote_ms"] = json!(t.elapsed().as_secs_f64() * 1000.0);
    op.steps
        .done("promote", format!("writable at {promoted}"))
        .await?;
    // The siblings stay with the old primary, as before.
    restore_io(&mut cands[1..]).await;
    op.steps
        .info(
            "note",
            "the old primary is invalidated: when it returns, what it holds beyond the promoted position is lost and it is never re-attached automatically",
        )
        .await?;
    Ok(())
}

/// This standby first takes, from the sibling that is further ahead, what
/// it lacks (`START SLAVE UNTIL master_gtid_pos`, notes §B.7).
async fn catch_up_from(
    op: &mut Op,
    cands: &mut [Candidate],
    best: &str,
    n: u64,
) -> Result<(), Failure> {
    let Some(i) = cands.iter().position(|c| c.cluster == best) else {
        return Err(Failure::new(
            5000,
            "InternalError, the sibling ahead vanished",
            false,
        ));
    };
    let target = cands[i].state.current_pos.clone();
    let source = cands[i].member.endpoint.clone();
    op.steps
        .begin(
            "catch_up_from",
            format!(
                "[{}] takes {n} transaction(s) from [{best}], up to {target}",
                cands[0].cluster
            ),
        )
        .await?;
    let repl = op.fleet.repl_login().await?;
    runbook::ensure_account(&mut cands[i].node, &repl, runbook::REPL_GRANTS)
        .await
        .map_err(db)?;
    let s = &mut cands[0].node;
    s.exec("STOP SLAVE").await.map_err(db)?;
    let sql = format!(
        "CHANGE MASTER TO MASTER_HOST={}, MASTER_PORT={}, MASTER_USER={}, MASTER_PASSWORD={}, MASTER_USE_GTID=slave_pos",
        s.lit(&source.host),
        source.port,
        s.lit(&repl.user),
        s.lit(repl.password.expose())
    );
    s.exec_hiding(&sql, repl.password.expose())
        .await
        .map_err(db)?;
    s.exec(&format!(
        "START SLAVE UNTIL master_gtid_pos={}",
        s.lit(&target.to_string())
    ))
    .await
    .map_err(db)?;
    let reached = s
        .gtid_wait(&target, ServersConfig::ms(op.cfg.relay_apply_timeout_ms))
        .await
        .map_err(db)?;
    s.exec("STOP SLAVE").await.map_err(db)?;
    if !reached {
        return Err(Failure::new(
            5000,
            format!(
                "ReplicationFailed, [{}] did not reach {target} from [{best}]; nothing was promoted",
                cands[0].cluster
            ),
            false,
        ));
    }
    cands[0].state = cands[0].node.state().await.map_err(db)?;
    op.steps.done("catch_up_from", format!("at {target}")).await
}

/// Candidates that are not promoted go back to trying their primary.
async fn restore_io(cands: &mut [Candidate]) {
    for c in cands.iter_mut() {
        if c.state.replica.is_some() {
            let _ = c.node.exec("START SLAVE IO_THREAD").await;
        }
    }
}
