//! `switchover` on servers (seed 003): the standby cluster becomes the
//! primary with no data loss, and the topology keeps its shape: the old
//! primary's other standbys follow the new primary, the new primary's
//! standbys follow the old one. The steps are [`reparent`]'s.

use serde_json::json;

use super::Op;
use super::fleet::refused;
use super::reparent::{self, Reparent};
use crate::services::topology::{self, Change};
use crate::worker::executor::{Done, Failure};

pub async fn run(mut op: Op) -> Result<Done, Failure> {
    let (plan, b) = precheck(&mut op).await?;
    let mut ev = json!({});
    match reparent::run(&mut op, &plan, &mut ev).await {
        Ok(()) => Ok(Done {
            effect: topology::observed(Change::Switchover, &b),
            output: op.steps.output(&ev),
        }),
        Err((f, promoted)) => {
            op.steps.failed("switchover", f.message.clone()).await;
            let mut f = op.steps.fail(f, &ev);
            if promoted {
                // The roles did swap on the servers: the model says so.
                f.effect = Some(topology::observed(Change::Switchover, &b));
            }
            Err(f)
        }
    }
}

async fn precheck(op: &mut Op) -> Result<(Reparent, String), Failure> {
    let b = op.fleet.members_of(&op.task.cluster)?;
    let Some(a_id) = b.cluster.standby_of.clone() else {
        return Err(refused(format!(
            "cluster [{}] is not a standby; switchover runs on a standby cluster",
            b.id()
        )));
    };
    let a = op.fleet.members_of(&a_id)?;
    if let Some(up) = &a.cluster.standby_of {
        return Err(refused(format!(
            "[{a_id}] is itself a standby of [{up}], not a PRIMARY; switch over from the top of the chain"
        )));
    }
    let semi_sync = reparent::precheck(op, &a.primary, &b.primary).await?;
    let mut siblings = Vec::new();
    for id in op.fleet.standbys_of(a.id())? {
        if id != b.id()
            && let Some(m) = op.fleet.members(&id)?
        {
            siblings.push(m.primary);
        }
    }
    let mut children = Vec::new();
    for id in op.fleet.standbys_of(b.id())? {
        if let Some(m) = op.fleet.members(&id)? {
            children.push(m.primary);
        }
    }
    Ok((
        Reparent {
            old: a.primary,
            new: b.primary,
            to_new: siblings,
            to_old: children,
            semi_sync,
        },
        b.cluster.cluster_id,
    ))
}
