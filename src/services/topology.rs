//! Primary/standby topology (seed 003, OceanBase semantics): the rules shared
//! by `switchover`, `failover`, `decouple` and `promote_standby`. Each rule is
//! checked when the request is validated and again when the job's effect is
//! applied, since other jobs may have changed the topology in between.

use crate::store::model::Model;
use serde_json::json;

use super::{PrepareCx, Prepared};
use crate::error::ApiError;
use crate::store::StoreError;
use crate::store::clusters::Cluster;
use crate::store::effect::{Effect, EffectError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Roles swap with the primary, no data loss; the topology keeps its shape.
    Switchover,
    /// The primary is unavailable: the standby becomes a primary.
    Failover,
    /// The standby leaves its primary and becomes an independent primary.
    Decouple,
    /// MySQL Plus: stop sync and make the standby writable (needs sync NORMAL).
    Promote,
}

impl Change {
    fn service(self) -> &'static str {
        match self {
            Change::Switchover => "switchover",
            Change::Failover => "failover",
            Change::Decouple => "decouple",
            Change::Promote => "promote_standby",
        }
    }
}

/// Why a change cannot run now.
enum Refusal {
    State(String),
    Store(StoreError),
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        Refusal::Store(e)
    }
}

/// A cluster of `owner`; another owner's cluster counts as not fronted here.
fn owned(conn: &dyn Model, owner: &str, id: &str) -> Result<Option<Cluster>, StoreError> {
    Ok(conn.cluster(id)?.filter(|c| c.owner == owner))
}

/// The prerequisites of `change` on `cluster`, as the seed documents them.
fn check(conn: &dyn Model, change: Change, cluster: &Cluster) -> Result<(), Refusal> {
    let id = &cluster.cluster_id;
    let Some(primary_id) = cluster.standby_of.as_deref() else {
        return Err(Refusal::State(format!(
            "cluster [{id}] is not a standby; {} runs on a standby cluster",
            change.service()
        )));
    };
    if cluster.status != "active" {
        return Err(Refusal::State(format!(
            "cluster [{id}] is {}, not online",
            cluster.status
        )));
    }
    let primary = owned(conn, &cluster.owner, primary_id)?;
    match change {
        Change::Switchover => {
            let Some(p) = primary else {
                return Err(Refusal::State(format!(
                    "primary [{primary_id}] is not a cluster this gateway fronts; a switchover needs both sides online"
                )));
            };
            if p.status != "active" {
                return Err(Refusal::State(format!(
                    "primary [{primary_id}] is {}, not online; use failover when the primary is unavailable",
                    p.status
                )));
            }
            if let Some(q) = &p.standby_of {
                return Err(Refusal::State(format!(
                    "[{primary_id}] is itself a standby of [{q}], not a PRIMARY; switch over from the top of the chain"
                )));
            }
            // On servers the sync is checked live, from GTID positions.
            if cluster.on_servers() {
                return Ok(());
            }
            sync_normal(cluster)
        }
        // On servers, whether the primary is gone is probed when the job runs.
        Change::Failover if cluster.on_servers() => Ok(()),
        Change::Failover => match primary {
            Some(p) if p.status == "active" => Err(Refusal::State(format!(
                "primary [{primary_id}] is online; use switchover, which loses no data"
            ))),
            _ => Ok(()),
        },
        Change::Promote if cluster.on_servers() => Ok(()),
        Change::Promote => sync_normal(cluster),
        Change::Decouple => Ok(()),
    }
}

fn sync_normal(cluster: &Cluster) -> Result<(), Refusal> {
    match cluster.sync_status.as_deref() {
        Some("NORMAL") => Ok(()),
        other => Err(Refusal::State(format!(
            "sync status of [{}] is {}, not NORMAL",
            cluster.cluster_id,
            other.unwrap_or("unknown")
        ))),
    }
}

/// Validation at request time.
pub fn prepare(
    change: Change,
    cx: &PrepareCx<'_>,
    f: super::schema::Fields,
) -> Result<Prepared, ApiError> {
    f.finish()?;
    match check(cx.model, change, cx.cluster) {
        Ok(()) => Ok(Prepared {
            params: json!({}),
            secrets: Vec::new(),
        }),
        Err(Refusal::State(why)) => Err(ApiError::PermissionDenied(why)),
        Err(Refusal::Store(e)) => Err(e.into()),
    }
}

/// The model effect, re-checked against the topology at apply time.
pub fn effect(change: Change, cluster_id: &str) -> Effect {
    let cluster_id = cluster_id.to_string();
    Box::new(move |conn| {
        let cluster = conn
            .cluster(&cluster_id)
            .map_err(EffectError::Store)?
            .ok_or_else(|| {
                EffectError::Refused(format!("cluster [{cluster_id}] no longer exists"))
            })?;
        match check(conn, change, &cluster) {
            Ok(()) => {}
            Err(Refusal::State(why)) => {
                return Err(EffectError::Refused(format!("PermissionDenied, {why}")));
            }
            Err(Refusal::Store(e)) => return Err(EffectError::Store(e)),
        }
        apply(conn, change, &cluster).map_err(EffectError::Store)
    })
}

/// The effect of a change the servers already made: recorded as found,
/// not refused by the model's rules (they were checked on the servers).
pub fn observed(change: Change, cluster_id: &str) -> Effect {
    let cluster_id = cluster_id.to_string();
    Box::new(move |conn| {
        let cluster = conn
            .cluster(&cluster_id)
            .map_err(EffectError::Store)?
            .ok_or_else(|| {
                EffectError::Refused(format!("cluster [{cluster_id}] no longer exists"))
            })?;
        apply(conn, change, &cluster).map_err(EffectError::Store)
    })
}

fn apply(conn: &dyn Model, change: Change, b: &Cluster) -> Result<(), StoreError> {
    let b_id = b.cluster_id.as_str();
    if change == Change::Failover
        && let Some(a_id) = b.standby_of.as_deref()
    {
        // Two primaries of one relationship from now on: the old one is
        // flagged, so it is never shown as a healthy peer.
        conn.set_setting(
            a_id,
            "dr_invalidated",
            &json!({"by": b_id, "time": crate::clock::format_ts(crate::clock::now_unix())}),
        )?;
    }
    if change != Change::Switchover {
        // Its own standbys keep following it.
        return conn.set_primary_of(b_id, None);
    }
    let Some(a_id) = b.standby_of.as_deref() else {
        return Ok(());
    };
    let siblings: Vec<String> = conn
        .standbys_of(a_id)?
        .into_iter()
        .filter(|s| s != b_id)
        .collect();
    let children = conn.standbys_of(b_id)?;
    conn.set_primary_of(b_id, None)?;
    conn.set_primary_of(a_id, Some(b_id))?;
    // The old primary's other standbys follow the new primary…
    for s in &siblings {
        conn.set_primary_of(s, Some(b_id))?;
    }
    // …and the new primary's standbys follow the new standby.
    for c in &children {
        conn.set_primary_of(c, Some(a_id))?;
    }
    Ok(())
}

/// One cluster in the topology tree.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Node {
    pub cluster_id: String,
    /// `PRIMARY` or `STANDBY`.
    pub role: String,
    pub status: String,
    pub sync_status: Option<String>,
    /// `model` (simulated) or `servers`.
    pub executor: String,
    /// Set on a former primary another cluster was failed over to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalidated: Option<serde_json::Value>,
    pub standbys: Vec<Node>,
}

/// Where a cluster stands: its own role and links, and the whole tree.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Relationship {
    pub cluster_id: String,
    pub role: String,
    pub sync_status: Option<String>,
    /// The model replicates instantly, so a NORMAL standby is in sync as of now.
    pub sync_timestamp: Option<String>,
    pub primary: Option<String>,
    pub standbys: Vec<String>,
    /// `model` (simulated: nothing was dialled) or `servers`.
    pub executor: String,
    /// On servers: the replication as the servers show it now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replication: Option<serde_json::Value>,
    /// A former primary another cluster was failed over to: two primaries
    /// of one relationship, and, on servers, what it holds that was lost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalidated: Option<serde_json::Value>,
    pub topology: Node,
}

const MAX_DEPTH: usize = 64;

fn role(c: &Cluster) -> String {
    if c.standby_of.is_some() {
        "STANDBY"
    } else {
        "PRIMARY"
    }
    .to_string()
}

/// The relationship of `id` as `owner` sees it; `None` if not theirs.
pub fn relationship(
    conn: &dyn Model,
    owner: &str,
    id: &str,
) -> Result<Option<Relationship>, StoreError> {
    let Some(cluster) = owned(conn, owner, id)? else {
        return Ok(None);
    };
    // Up to the top of the chain, through this owner's clusters only.
    let mut root = cluster.clone();
    let mut seen = vec![root.cluster_id.clone()];
    while let Some(parent) = root.standby_of.as_deref() {
        match owned(conn, owner, parent)? {
            Some(p) if !seen.contains(&p.cluster_id) && seen.len() < MAX_DEPTH => {
                seen.push(p.cluster_id.clone());
                root = p;
            }
            _ => break,
        }
    }
    let mut visited = Vec::new();
    let topology = node(conn, owner, root, &mut visited)?;
    Ok(Some(Relationship {
        role: role(&cluster),
        sync_timestamp: (cluster.sync_status.as_deref() == Some("NORMAL"))
            .then(|| crate::clock::format_ts(crate::clock::now_unix())),
        sync_status: cluster.sync_status.clone(),
        primary: cluster.standby_of.clone(),
        standbys: conn
            .standbys_of(id)?
            .into_iter()
            .filter(|s| owned(conn, owner, s).ok().flatten().is_some())
            .collect(),
        executor: cluster.backend.clone(),
        replication: None,
        invalidated: cluster.settings.get("dr_invalidated").cloned(),
        cluster_id: cluster.cluster_id,
        topology,
    }))
}

fn node(
    conn: &dyn Model,
    owner: &str,
    c: Cluster,
    visited: &mut Vec<String>,
) -> Result<Node, StoreError> {
    visited.push(c.cluster_id.clone());
    let mut standbys = Vec::new();
    if visited.len() < MAX_DEPTH {
        for s in conn.standbys_of(&c.cluster_id)? {
            if visited.contains(&s) {
                continue;
            }
            if let Some(child) = owned(conn, owner, &s)? {
                standbys.push(node(conn, owner, child, visited)?);
            }
        }
    }
    Ok(Node {
        role: role(&c),
        status: c.status,
        sync_status: c.sync_status,
        executor: c.backend,
        invalidated: c.settings.get("dr_invalidated").cloned(),
        cluster_id: c.cluster_id,
        standbys,
    })
}

/// The tree for a person, in the seed's style (`clusterA └── clusterB`).
pub fn render(root: &Node) -> String {
    fn walk(n: &Node, prefix: &str, last: bool, top: bool, out: &mut String) {
        let mut label = match &n.sync_status {
            Some(s) => format!("{} ({}, sync {s}, {}", n.cluster_id, n.role, n.status),
            None => format!("{} ({}, {}", n.cluster_id, n.role, n.status),
        };
        if n.invalidated.is_some() {
            label.push_str(", INVALIDATED by a failover");
        }
        label.push_str(if n.executor == "servers" {
            ", on servers)"
        } else {
            ", simulated)"
        });
        if top {
            out.push_str(&label);
        } else {
            out.push_str(&format!(
                "{prefix}{}{label}",
                if last { "└── " } else { "├── " }
            ));
        }
        out.push('\n');
        let child_prefix = if top {
            String::new()
        } else {
            format!("{prefix}{}", if last { "    " } else { "│   " })
        };
        for (i, c) in n.standbys.iter().enumerate() {
            walk(c, &child_prefix, i + 1 == n.standbys.len(), false, out);
        }
    }
    let mut out = String::new();
    walk(root, "", true, true, &mut out);
    out
}
