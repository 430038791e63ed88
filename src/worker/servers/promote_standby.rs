//! `promote_standby` on servers, the MySQL Plus flow (notes §B.5): the
//! source must already be read-only; the standby applies everything the
//! source wrote, the two are compared table by table, then the standby
//! stops replicating and takes writes.
//!
//! Steps: precheck → catch_up → compare → promote.

use serde_json::json;

use super::fleet::{db, refused};
use super::{Op, ServersConfig};
use crate::mariadb::{Node, cell, ident, runbook};
use crate::services::topology::{self, Change};
use crate::worker::executor::{Done, Failure};

pub async fn run(mut op: Op) -> Result<Done, Failure> {
    let b = op.fleet.members_of(&op.task.cluster)?;
    let Some(a_id) = b.cluster.standby_of.clone() else {
        return Err(refused(format!("cluster [{}] is not a standby", b.id())));
    };
    let a = op.fleet.members_of(&a_id)?;
    let mut p = op.fleet.connect(&a.primary).await.map_err(|f| {
        refused(format!(
            "the source {} does not answer ({}); use failover when the primary is gone",
            a.primary.name(),
            f.message
        ))
    })?;
    if !p.state().await.map_err(db)?.read_only {
        return Err(refused(format!(
            "the source [{a_id}] is writable; run set_readonly with readonly YES on it first, so no write is lost"
        )));
    }
    let mut s = op.fleet.connect(&b.primary).await?;
    let g = runbook::binlog_pos(&mut p).await.map_err(db)?;
    op.steps
        .begin("catch_up", format!("{} applies {g}", b.primary.name()))
        .await?;
    if !s
        .gtid_wait(&g, ServersConfig::ms(op.cfg.relay_apply_timeout_ms))
        .await
        .map_err(db)?
    {
        return Err(Failure::new(
            5000,
            format!(
                "ReplicationFailed, {} did not reach the source's position {g}",
                b.primary.name()
            ),
            false,
        ));
    }
    op.steps.done("catch_up", "").await?;

    op.steps
        .begin("compare", "CHECKSUM TABLE on every user table of both")
        .await?;
    let differing = compare(&mut p, &mut s).await.map_err(db)?;
    if !differing.is_empty() {
        let f = refused(format!(
            "data differs on {}: the standby was not promoted",
            differing.join(", ")
        ));
        op.steps.failed("compare", f.message.clone()).await;
        return Err(op.steps.fail(f, &json!({"differs": differing})));
    }
    op.steps.done("compare", "every table matches").await?;

    op.steps
        .begin(
            "promote",
            format!("{}: RESET SLAVE ALL, read_only=OFF", b.primary.name()),
        )
        .await?;
    runbook::promote(&mut s).await.map_err(db)?;
    op.steps.done("promote", format!("at {g}")).await?;
    p.close().await;
    s.close().await;
    Ok(Done {
        effect: topology::observed(Change::Promote, b.id()),
        output: op.steps.output(&json!({"position": g.to_string()})),
    })
}

/// Tables whose `CHECKSUM TABLE` differs (or that exist on one side only).
async fn compare(p: &mut Node, s: &mut Node) -> Result<Vec<String>, crate::mariadb::DbError> {
    let schemas = runbook::user_schemas(p).await?;
    let mut differing = Vec::new();
    for db in schemas {
        let rows = p
            .rows(&format!(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} AND TABLE_TYPE = 'BASE TABLE'",
                p.lit(&db)
            ))
            .await?;
        for t in rows.iter().map(|r| cell(r, 0)) {
            let sql = format!("CHECKSUM TABLE {}.{}", ident(&db), ident(&t));
            let a = p.rows(&sql).await?.first().map(|r| cell(r, 1));
            let b = match s.rows(&sql).await {
                Ok(r) => r.first().map(|r| cell(r, 1)),
                Err(_) => None,
            };
            if a != b {
                differing.push(format!("[{db}.{t}]"));
            }
        }
    }
    Ok(differing)
}
