//! `assignmaster` on servers: another node of the cluster becomes its
//! primary, with the same guarantees as a switchover ([`reparent`]): the
//! cluster's other nodes and the primaries of its DR standby clusters
//! follow the new primary node, and the old one follows it too.

use serde_json::json;

use super::Op;
use super::fleet::refused;
use super::reparent::{self, Reparent};
use crate::services;
use crate::worker::executor::{Done, Failure};

pub async fn run(mut op: Op) -> Result<Done, Failure> {
    let members = op.fleet.members_of(&op.task.cluster)?;
    let target = op.param_str("node_id").to_string();
    let Some(new) = members.others.iter().find(|m| m.node_id == target).cloned() else {
        return Err(refused(format!(
            "node [{target}] is not a standby node of [{}] bound to a server",
            members.id()
        )));
    };
    let semi_sync = reparent::precheck(&mut op, &members.primary, &new).await?;
    let mut to_new: Vec<_> = members
        .others
        .iter()
        .filter(|m| m.node_id != target)
        .cloned()
        .collect();
    for id in op.fleet.standbys_of(members.id())? {
        if let Some(m) = op.fleet.members(&id)? {
            to_new.push(m.primary);
        }
    }
    let plan = Reparent {
        old: members.primary.clone(),
        new,
        to_new,
        to_old: Vec::new(),
        semi_sync,
    };
    let mut ev = json!({});
    let service = services::find("assignmaster");
    let effect = |op: &Op| service.map(|s| services::effect(s, &op.task.cluster, &op.task.params));
    match reparent::run(&mut op, &plan, &mut ev).await {
        Ok(()) => match effect(&op) {
            Some(effect) => Ok(Done {
                effect,
                output: op.steps.output(&ev),
            }),
            None => Err(Failure::new(
                5000,
                "InternalError, assignmaster is not registered",
                false,
            )),
        },
        Err((f, promoted)) => {
            op.steps.failed("assignmaster", f.message.clone()).await;
            let mut f = op.steps.fail(f, &ev);
            if promoted {
                f.effect = effect(&op);
            }
            Err(f)
        }
    }
}
