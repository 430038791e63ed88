//! A DR job the gateway was stopped in (killed, crashed, lost its lease):
//! it is never run again blindly. The servers are inspected; a fence that
//! was left on while nobody else took writes is undone; the job ends
//! `failed` with what the servers look like now, and the model records who
//! is primary as found.

use serde_json::{Value, json};

use super::Op;
use super::fleet::Members;
use crate::mariadb::runbook;
use crate::services::topology::{self, Change};
use crate::worker::executor::Failure;

/// One primary node as found.
struct Found {
    cluster: String,
    name: String,
    answers: bool,
    writable: bool,
    follows: Option<String>,
    position: String,
}

pub async fn run(mut op: Op) -> Result<crate::worker::executor::Done, Failure> {
    let recorded = op
        .fleet
        .store
        .read(|c| c.steps_of(op.job.seq))
        .map_err(super::fleet::internal)?;
    let last = recorded
        .iter()
        .rev()
        .find(|s| s.outcome != "info")
        .map(|s| format!("{} {}", s.step, s.outcome))
        .unwrap_or_else(|| "none".into());
    let began = |step: &str| recorded.iter().any(|s| s.step == step);
    let service = op.task.service.clone();
    let b_id = op.task.cluster.clone();
    let b = op.fleet.members(&b_id)?;
    let a_id = b.as_ref().and_then(|m| m.cluster.standby_of.clone());
    let a = match &a_id {
        Some(id) => op.fleet.members(id)?,
        None => None,
    };
    let mut found = Vec::new();
    for m in [&a, &b].into_iter().flatten() {
        found.push(inspect(&op, m).await);
    }
    let writable: Vec<&Found> = found.iter().filter(|f| f.writable).collect();
    let mut actions = Vec::new();
    let mut effect = None;

    if service == "switchover" && writable.is_empty() {
        // Fenced and never promoted: the old primary takes writes again.
        if let (Some(a), Some(b_found)) = (&a, found.iter().find(|f| f.cluster == b_id))
            && b_found.follows.is_some()
            && began("fence")
        {
            match op.fleet.connect(&a.primary).await {
                Ok(mut p) => match runbook::unfence(&mut p).await {
                    Ok(()) => {
                        actions.push(format!(
                            "the fence on {} was undone: it takes writes again, the roles did not change",
                            a.primary.name()
                        ));
                        p.close().await;
                    }
                    Err(e) => actions.push(format!("undoing the fence failed: {e}")),
                },
                Err(f) => actions.push(format!(
                    "the old primary could not be reached to undo the fence: {}",
                    f.message
                )),
            }
        } else {
            actions.push("no node is writable: inspect the servers, then promote one (promote_standby or failover)".into());
        }
    }
    if matches!(service.as_str(), "switchover" | "failover" | "decouple")
        && let Some(bf) = found.iter().find(|f| f.cluster == b_id)
        && bf.writable
        && bf.follows.is_none()
    {
        let change = match service.as_str() {
            "switchover" => Change::Switchover,
            "failover" => Change::Failover,
            _ => Change::Decouple,
        };
        actions.push(format!(
            "[{b_id}] was found promoted; the topology records it"
        ));
        effect = Some(topology::observed(change, &b_id));
    }
    if writable.len() > 1 && writable.iter().all(|f| f.follows.is_none()) {
        actions.push(format!(
            "WARNING: {} are all writable primaries; fence all but one before taking writes",
            writable
                .iter()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>()
                .join(" and ")
        ));
    }
    let report: Vec<String> = found
        .iter()
        .map(|f| {
            if !f.answers {
                format!("{} [{}] does not answer", f.name, f.cluster)
            } else {
                format!(
                    "{} [{}] {}{} at {}",
                    f.name,
                    f.cluster,
                    if f.writable { "writable" } else { "read-only" },
                    f.follows
                        .as_ref()
                        .map(|s| format!(", replicating from {s}"))
                        .unwrap_or_default(),
                    f.position
                )
            }
        })
        .collect();
    let evidence: Value = json!({"last_step": last, "servers": report, "actions": actions});
    let _ = op.steps.info("recovered", evidence.to_string()).await;
    let mut f = Failure::new(
        5000,
        format!(
            "JobInterrupted, the gateway stopped during {service} (last step: {last}); it is not safe to repeat, so it was not run again. Servers now: {}.{}",
            report.join("; "),
            if actions.is_empty() {
                String::new()
            } else {
                format!(" {}", actions.join("; "))
            }
        ),
        false,
    );
    f.output = op.steps.output(&evidence);
    f.effect = effect;
    Err(f)
}

async fn inspect(op: &Op, m: &Members) -> Found {
    let mut f = Found {
        cluster: m.id().to_string(),
        name: m.primary.name(),
        answers: false,
        writable: false,
        follows: None,
        position: String::new(),
    };
    let Ok(mut n) = op.fleet.connect(&m.primary).await else {
        return f;
    };
    if let Ok(st) = n.state().await {
        f.answers = true;
        f.writable = st.writable();
        f.follows = st
            .replica
            .as_ref()
            .map(|r| format!("{}:{}", r.source_host, r.source_port));
        f.position = st.current_pos.to_string();
    }
    n.close().await;
    f
}
