//! `stop_standby` on servers: DR sync stops and the standby is an
//! independent primary again (notes §B.4).

use super::{Op, detach};
use crate::store::effect::EffectError;
use crate::worker::executor::{Done, Failure};

pub async fn run(mut op: Op) -> Result<Done, Failure> {
    let done = detach::run(&mut op, "stopped").await?;
    let output = op.steps.output(&done.evidence);
    let b = op.task.cluster.clone();
    Ok(Done {
        effect: Box::new(move |conn| conn.clear_standby(&b).map_err(EffectError::Store)),
        output,
    })
}
