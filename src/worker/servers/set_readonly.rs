//! `set_readonly` on servers: `read_only` on the cluster's primary node
//! (MySQL Plus: run on a DR source before promoting its standby).

use super::Op;
use super::fleet::{db, refused};
use crate::services;
use crate::worker::executor::{Done, Failure};

pub async fn run(mut op: Op) -> Result<Done, Failure> {
    let members = op.fleet.members_of(&op.task.cluster)?;
    let on = op.param_str("readonly") == "YES";
    if !on && members.cluster.standby_of.is_some() {
        return Err(refused(format!(
            "[{}] is a DR standby: writes there would fork it from its primary; run stop_standby or promote_standby first",
            members.id()
        )));
    }
    let value = if on { "ON" } else { "OFF" };
    op.steps
        .begin(
            "read_only",
            format!("{}: read_only={value}", members.primary.name()),
        )
        .await?;
    let mut n = op.fleet.connect(&members.primary).await?;
    n.exec(&format!("SET GLOBAL read_only={value}"))
        .await
        .map_err(db)?;
    n.close().await;
    op.steps.done("read_only", "").await?;
    let output = op.steps.output(&serde_json::json!({"read_only": value}));
    let service = services::find("set_readonly").ok_or_else(|| {
        Failure::new(5000, "InternalError, set_readonly is not registered", false)
    })?;
    Ok(Done {
        effect: services::effect(service, &op.task.cluster, &op.task.params),
        output,
    })
}
