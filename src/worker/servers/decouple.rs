//! `decouple` on servers (seed 003, notes §B.8): the standby leaves its
//! primary and becomes an independent primary; its own standbys keep
//! following it.

use super::{Op, detach};
use crate::services::topology::{self, Change};
use crate::worker::executor::{Done, Failure};

pub async fn run(mut op: Op) -> Result<Done, Failure> {
    let done = detach::run(&mut op, "decoupled").await?;
    let output = op.steps.output(&done.evidence);
    Ok(Done {
        effect: topology::observed(Change::Decouple, &op.task.cluster),
        output,
    })
}
