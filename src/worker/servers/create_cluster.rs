//! `CreateCluster` on servers (seed 000, notes §B.1): the free servers the
//! request was given become a primary and its HA standbys, replicating by
//! GTID, asynchronously or with MariaDB's semi-sync.
//!
//! Steps: precheck → primary (writable, accounts) → copy (a consistent
//! copy of the primary into each standby) → replicate → semi_sync → verify.

use std::time::Duration;

use serde_json::json;

use super::fleet::{db, refused};
use super::{Op, ServersConfig, seed};
use crate::mariadb::runbook::{self, REPL_GRANTS};
use crate::services;
use crate::store::effect::EffectError;
use crate::worker::executor::{Done, Failure};

pub async fn run(mut op: Op) -> Result<Done, Failure> {
    let members = op.fleet.members_of(&op.task.cluster)?;
    let semi = op.param_str("replication_mode") == "semisync";
    let standbys = members.others.clone();
    let mut problems = Vec::new();
    for m in members.all() {
        let mut n = op.fleet.connect(m).await?;
        let st = n.state().await.map_err(db)?;
        problems.extend(
            st.missing_settings()
                .into_iter()
                .map(|p| format!("{}: {p}", m.name())),
        );
        if m.node_id != members.primary.node_id {
            let schemas = runbook::user_schemas(&mut n).await.map_err(db)?;
            if !schemas.is_empty() {
                problems.push(format!(
                    "{} holds databases {}; a standby node must start empty",
                    m.name(),
                    schemas.join(", ")
                ));
            }
        }
        n.close().await;
    }
    if !problems.is_empty() {
        return Err(refused(format!(
            "the servers cannot form a cluster: {}",
            problems.join("; ")
        )));
    }
    let repl = op.fleet.repl_login().await?;

    op.steps
        .begin(
            "primary",
            format!(
                "{}: writable, {} account",
                members.primary.name(),
                repl.user
            ),
        )
        .await?;
    let mut p = op.fleet.connect(&members.primary).await?;
    runbook::detach(&mut p).await.map_err(db)?;
    runbook::ensure_account(&mut p, &repl, REPL_GRANTS)
        .await
        .map_err(db)?;
    p.exec("SET GLOBAL read_only=OFF").await.map_err(db)?;
    op.steps.done("primary", "").await?;

    if !standbys.is_empty() {
        let schemas = runbook::copy_schemas(&mut p).await.map_err(db)?;
        op.steps
            .begin("copy", format!("schemas: {}", schemas.join(", ")))
            .await?;
        let limit = Duration::from_secs(op.cfg.seed_timeout_secs);
        let (dump, _) = seed::dump_settled(
            &members.primary.endpoint,
            &members.primary.login,
            schemas,
            &[],
            true,
            limit,
            op.cfg.scratch_dir.as_deref(),
        )
        .await?;
        for m in &standbys {
            let mut n = op.fleet.connect(m).await?;
            runbook::detach(&mut n).await.map_err(db)?;
            n.exec("SET GLOBAL read_only=ON; RESET MASTER")
                .await
                .map_err(db)?;
            seed::restore(
                &dump,
                &m.endpoint,
                &m.login,
                limit,
                &Default::default(),
                op.cfg.scratch_dir.as_deref(),
            )
            .await?;
            let g = n.lit(&dump.gtid.to_string());
            n.exec(&format!(
                "SET GLOBAL gtid_binlog_state={g}; SET GLOBAL gtid_slave_pos={g}"
            ))
            .await
            .map_err(db)?;
            runbook::ensure_account(&mut n, &repl, REPL_GRANTS)
                .await
                .map_err(db)?;
            n.close().await;
        }
        op.steps.done("copy", format!("at {}", dump.gtid)).await?;

        op.steps
            .begin(
                "replicate",
                format!("standbys follow {}", members.primary.name()),
            )
            .await?;
        for m in &standbys {
            let mut n = op.fleet.connect(m).await?;
            if semi {
                runbook::semi_sync(&mut n, false, Duration::ZERO)
                    .await
                    .map_err(db)?;
            }
            runbook::replicate_from(&mut n, &members.primary.endpoint, &repl, false)
                .await
                .map_err(db)?;
            n.close().await;
        }
        op.steps.done("replicate", "").await?;
    }
    if semi {
        op.steps
            .begin("semi_sync", "AFTER_SYNC on the primary")
            .await?;
        runbook::semi_sync(&mut p, true, ServersConfig::ms(op.cfg.semi_sync_timeout_ms))
            .await
            .map_err(db)?;
        op.steps.done("semi_sync", "").await?;
    }

    op.steps
        .begin("verify", "a journal row reaches every standby")
        .await?;
    let mark = runbook::journal(&mut p, "create", &op.job.job_id, members.id())
        .await
        .map_err(db)?;
    for m in &standbys {
        let mut n = op.fleet.connect(m).await?;
        let ok = n
            .gtid_wait(&mark, ServersConfig::ms(op.cfg.relay_apply_timeout_ms))
            .await
            .map_err(db)?;
        n.close().await;
        if !ok {
            return Err(Failure::new(
                5000,
                format!("ReplicationFailed, {} did not receive {mark}", m.name()),
                true,
            ));
        }
    }
    let clients = if semi {
        p.rows("SHOW STATUS LIKE 'Rpl_semi_sync_master_clients'")
            .await
            .map_err(db)?
            .first()
            .map(|r| crate::mariadb::cell(r, 1))
            .unwrap_or_default()
    } else {
        String::new()
    };
    op.steps
        .done(
            "verify",
            format!(
                "{mark} everywhere{}",
                if semi {
                    format!(", {clients} semi-sync client(s)")
                } else {
                    String::new()
                }
            ),
        )
        .await?;
    p.close().await;

    let service = services::find_job_kind("create_cluster").ok_or_else(|| {
        Failure::new(
            5000,
            "InternalError, create_cluster is not registered",
            false,
        )
    })?;
    let mut settle = services::effect(service, &op.task.cluster, &op.task.params);
    let id = op.task.cluster.clone();
    let mode = json!(if semi { "semisync" } else { "async" });
    let output = op.steps.output(&json!({"marker_gtid": mark.to_string(), "replication_mode": mode, "semi_sync_clients": clients}));
    Ok(Done {
        effect: Box::new(move |conn| {
            settle(conn)?;
            conn.set_setting(&id, "replication_mode", &mode)
                .map_err(EffectError::Store)
        }),
        output,
    })
}

/// `DeleteClusters`: nothing changes on the servers (their data stays);
/// they become free to build other clusters.
pub async fn delete(op: Op) -> Result<Done, Failure> {
    let service = services::find_job_kind("delete_cluster").ok_or_else(|| {
        Failure::new(
            5000,
            "InternalError, delete_cluster is not registered",
            false,
        )
    })?;
    let mut deleted = services::effect(service, &op.task.cluster, &op.task.params);
    let id = op.task.cluster.clone();
    Ok(Done {
        effect: Box::new(move |conn| {
            deleted(conn)?;
            conn.release_servers(&id).map_err(EffectError::Store)
        }),
        output: "the servers were released; their data was left as it is\n".into(),
    })
}
