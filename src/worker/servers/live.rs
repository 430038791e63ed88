//! A standby's replication as its servers show it now: the sync status is
//! computed from GTID positions (what the primary wrote, what the standby
//! received and applied), never from `Seconds_Behind_Master`, which reads 0
//! while transactions are missing (notes §B.9).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::fleet::Fleet;
use crate::mariadb::{Endpoint, GtidPos, Login, Node};
use crate::store::servers;

/// How long a read waits for a standby to reach the primary's position
/// before calling it LAGGING.
const CATCH_UP_PROBE: Duration = Duration::from_millis(500);
const CONNECT: Duration = Duration::from_secs(1);

pub struct Live {
    /// `NORMAL`, `LAGGING`, `BROKEN` or `STOPPED`.
    pub sync_status: String,
    pub detail: Value,
}

fn broken(why: String) -> Live {
    Live {
        sync_status: "BROKEN".into(),
        detail: json!({"last_error": why}),
    }
}

/// The admin login of a registered server, by endpoint.
fn login_of(fleet: &Fleet, ep: &Endpoint) -> Option<Login> {
    let key = ep.to_string();
    let loopback = format!("127.0.0.1:{}", ep.port);
    let s = fleet
        .store
        .read(|c| {
            Ok(c.server(&key)?
                .or(if super::checks::same_host(&ep.host, "127.0.0.1") {
                    c.server(&loopback)?
                } else {
                    None
                }))
        })
        .ok()??;
    Some(Login {
        user: s.admin_user.clone(),
        password: servers::open_password(&fleet.store.master, &s).ok()?,
    })
}

/// The live replication of a server-backed standby cluster; `None` for a
/// cluster that is not on servers.
pub async fn standby(fleet: &Fleet, cluster_id: &str) -> Option<Live> {
    standby_with(fleet, cluster_id, None).await
}

/// [`standby`], reading an external source (not registered) as `source_login`.
pub async fn standby_with(
    fleet: &Fleet,
    cluster_id: &str,
    source_login: Option<Login>,
) -> Option<Live> {
    let members = fleet.members(cluster_id).ok()??;
    if fleet.check_allowed(&members.primary.endpoint).is_err() {
        return Some(broken("the standby is outside the allow-list".into()));
    }
    let mut s = match Node::connect_within(
        &members.primary.endpoint,
        &members.primary.login,
        CONNECT,
    )
    .await
    {
        Ok(n) => n,
        Err(e) => return Some(broken(format!("the standby does not answer: {e}"))),
    };
    let st = match s.state().await {
        Ok(st) => st,
        Err(e) => return Some(broken(e.to_string())),
    };
    let Some(r) = st.replica.clone() else {
        s.close().await;
        return Some(Live {
            sync_status: "STOPPED".into(),
            detail: json!({"last_error": "the standby does not replicate"}),
        });
    };
    let source = Endpoint {
        host: r.source_host.clone(),
        port: r.source_port,
    };
    // The source's own position, when qcgate can read it.
    let mut primary_pos: Option<GtidPos> = None;
    let mut source_error = None;
    if fleet.check_allowed(&source).is_ok()
        && let Some(login) = login_of(fleet, &source).or(source_login)
    {
        match Node::connect_within(&source, &login, CONNECT).await {
            Ok(mut p) => {
                primary_pos = crate::mariadb::runbook::binlog_pos(&mut p).await.ok();
                p.close().await;
            }
            Err(e) => source_error = Some(format!("the primary does not answer: {e}")),
        }
    }
    // How long the standby takes to reach what the primary had just now.
    let (reached, delay_ms) = match &primary_pos {
        Some(p) if st.slave_pos.covers(p) => (true, Some(0)),
        Some(p) => {
            let t = Instant::now();
            let ok = s.gtid_wait(p, CATCH_UP_PROBE).await.unwrap_or(false);
            (ok, ok.then(|| t.elapsed().as_millis() as u64))
        }
        None => (false, None),
    };
    let applied = crate::mariadb::runbook::current_pos(&mut s)
        .await
        .unwrap_or(st.slave_pos.clone());
    s.close().await;
    let error = r.last_error().or(source_error.clone());
    let running = r.io_running() && r.sql_running;
    let sync = if error.is_some() || !running {
        "BROKEN"
    } else if reached {
        "NORMAL"
    } else {
        "LAGGING"
    };
    let behind = |pos: &GtidPos| primary_pos.as_ref().map(|p| pos.behind(p));
    Some(Live {
        sync_status: sync.into(),
        detail: json!({
            "source": source.to_string(),
            "io_running": r.io_running,
            "sql_running": if r.sql_running { "Yes" } else { "No" },
            "primary_gtid": primary_pos.as_ref().map(|p| p.to_string()),
            "received_gtid": r.received.to_string(),
            "applied_gtid": applied.to_string(),
            "lag_trx": behind(&applied),
            "rpo_trx": behind(&r.received),
            "rto_trx": applied.behind(&r.received),
            "delay_ms": delay_ms,
            "last_error": error,
            "semi_sync": st.semi_sync_slave,
            "seconds_behind_master": r.seconds_behind_master,
        }),
    })
}

/// For a cluster the servers promoted in a failover: what its old primary
/// holds beyond the promoted position (lost), once it answers again.
pub async fn lost(fleet: &Fleet, cluster_id: &str, promoted: &GtidPos) -> Option<Value> {
    let members = fleet.members(cluster_id).ok()??;
    fleet.check_allowed(&members.primary.endpoint).ok()?;
    let mut n = Node::connect_within(&members.primary.endpoint, &members.primary.login, CONNECT)
        .await
        .ok()?;
    let pos = crate::mariadb::runbook::binlog_pos(&mut n).await.ok()?;
    let writable = n.state().await.map(|s| s.writable()).unwrap_or(false);
    n.close().await;
    let lost: Vec<String> = pos
        .domains()
        .filter(|d| pos.seq(*d) > promoted.seq(*d))
        .map(|d| {
            let s = pos.server(d);
            format!("{d}-{s}-{} … {d}-{s}-{}", promoted.seq(d) + 1, pos.seq(d))
        })
        .collect();
    Some(json!({
        "position": pos.to_string(),
        "lost_trx": promoted.behind(&pos),
        "lost_gtids": lost,
        "writable": writable,
    }))
}
