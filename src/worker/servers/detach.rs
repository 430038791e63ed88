//! What `stop_standby` and `decouple` share (notes §B.4, §B.8): the standby
//! applies everything it received, stops replicating for good, and takes
//! writes. Its own standbys (chained clusters, HA nodes) keep following it.
//!
//! Steps: precheck → drain (apply the relay log) → detach → writable.

use serde_json::json;

use super::Op;
use super::ServersConfig;
use super::fleet::{db, refused};
use crate::mariadb::{GtidPos, Node, runbook};
use crate::worker::executor::Failure;

/// The positions the job records.
pub struct Detached {
    pub evidence: serde_json::Value,
}

pub async fn run(op: &mut Op, what: &str) -> Result<Detached, Failure> {
    let b = op.fleet.members_of(&op.task.cluster)?;
    let mut s = op.fleet.connect(&b.primary).await?;
    let st = s.state().await.map_err(db)?;
    let Some(r) = st.replica.clone() else {
        return Err(refused(format!(
            "{} does not replicate; [{}] is not a running standby",
            b.primary.name(),
            b.id()
        )));
    };
    let mut ev =
        json!({"received": r.received.to_string(), "applied_before": st.slave_pos.to_string()});
    // Its primary, when reachable, says how far behind the standby stops.
    let primary_pos = primary_position(op, &r.source_host, r.source_port).await;

    op.steps
        .begin(
            "drain",
            format!("apply what was received, up to {}", r.received),
        )
        .await?;
    if !r.sql_running && r.last_sql_errno != 0 {
        // Waiting cannot help: the applier stopped on an error.
        let f = Failure::new(
            5000,
            format!(
                "ReplicationFailed, {} stopped applying at {} with SQL error {}: {}; fix or skip that transaction first; nothing was changed",
                b.primary.name(),
                st.slave_pos,
                r.last_sql_errno,
                r.last_sql_error
            ),
            false,
        );
        op.steps.failed("drain", f.message.clone()).await;
        return Err(op.steps.fail(f, &ev));
    }
    if !r.sql_running {
        s.exec("START SLAVE SQL_THREAD").await.map_err(db)?;
    }
    let drained = s
        .gtid_wait(
            &r.received,
            ServersConfig::ms(op.cfg.relay_apply_timeout_ms),
        )
        .await
        .map_err(db)?;
    if !drained {
        let f = Failure::new(
            5000,
            format!(
                "ReplicationFailed, {} did not apply what it received ({}) within {} ms; nothing was changed",
                b.primary.name(),
                r.received,
                op.cfg.relay_apply_timeout_ms
            ),
            false,
        );
        op.steps.failed("drain", f.message.clone()).await;
        return Err(op.steps.fail(f, &ev));
    }
    op.steps.done("drain", "").await?;

    op.steps
        .begin("detach", "STOP SLAVE; RESET SLAVE ALL")
        .await?;
    runbook::detach(&mut s).await.map_err(db)?;
    op.steps.done("detach", "").await?;
    op.steps.begin("writable", "read_only=OFF").await?;
    s.exec("SET GLOBAL read_only=OFF").await.map_err(db)?;
    let after = s.state().await.map_err(db)?;
    op.steps
        .done(
            "writable",
            format!("{what}: {} at {}", b.primary.name(), after.current_pos),
        )
        .await?;
    ev["final_position"] = json!(after.current_pos.to_string());
    if let Some(p) = primary_pos {
        ev["primary_position"] = json!(p.to_string());
        ev["lag_trx"] = json!(after.current_pos.behind(&p));
    }
    s.close().await;
    op.steps
        .info(
            "note",
            "it now writes its own transactions: attaching it to the old primary again needs a full copy",
        )
        .await?;
    Ok(Detached { evidence: ev })
}

/// The binlog position of a standby's source, when the source is a
/// registered server that answers.
async fn primary_position(op: &Op, host: &str, port: u16) -> Option<GtidPos> {
    let key = format!("{host}:{port}");
    let master = op.fleet.store.master.clone();
    let server = op.fleet.store.read(|c| c.server(&key)).ok()??;
    let login = crate::mariadb::Login {
        user: server.admin_user.clone(),
        password: crate::store::servers::open_password(&master, &server).ok()?,
    };
    let ep = crate::mariadb::Endpoint::parse(&key)?;
    op.fleet.check_allowed(&ep).ok()?;
    let mut n = Node::connect_within(&ep, &login, std::time::Duration::from_secs(1))
        .await
        .ok()?;
    let pos = runbook::binlog_pos(&mut n).await.ok();
    n.close().await;
    pos
}
