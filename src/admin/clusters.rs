//! Binding registered servers as a new cluster's nodes: their replication
//! is read and reported, never changed. Used by `qcgate clusters add
//! --server` and the DR benchmarks.

use crate::mariadb::{Endpoint, Login, Node};
use crate::store::local::Local;
use crate::store::model::NewCluster;
use crate::store::{StoreError, servers};

/// Binds registered servers as a new cluster's nodes; returns the report.
/// Runs its own runtime: call it off any async runtime.
pub fn bind_servers(
    db: &mut Local,
    id: &str,
    zone: &str,
    owner: &str,
    name: &str,
    endpoints: &[String],
) -> Result<String, Box<dyn std::error::Error>> {
    if endpoints.len() > 3 {
        return Err("at most 3 --server (a primary and two HA standby nodes)".into());
    }
    let mut members = Vec::new();
    for text in endpoints {
        let ep = Endpoint::parse(text)
            .ok_or_else(|| format!("--server must be HOST:PORT, got {text:?}"))?;
        let key = ep.to_string();
        if members.iter().any(|(e, _): &(Endpoint, _)| *e == ep) {
            return Err(format!("{key} is named twice").into());
        }
        let s = db.read(|m| m.server(&key))?.ok_or_else(|| {
            format!("{key} is not registered (qcgate servers add --endpoint {key} …)")
        })?;
        if s.zone != zone {
            return Err(format!("{key} is in zone {}, not {zone}", s.zone).into());
        }
        if let Some(c) = &s.cluster_id {
            return Err(format!("{key} is already a node of {c}").into());
        }
        let login = Login {
            user: s.admin_user.clone(),
            password: servers::open_password(&db.master(), &s)?,
        };
        members.push((ep, login));
    }
    let states = super::runtime()?.block_on(async {
        let mut out = Vec::new();
        for (ep, login) in &members {
            let mut n = Node::connect(ep, login).await?;
            out.push(n.state().await?);
            n.close().await;
        }
        Ok::<_, crate::mariadb::DbError>(out)
    })?;
    let primary = &members[0].0;
    let mut report = Vec::new();
    for ((ep, _), st) in members.iter().zip(&states).skip(1) {
        match &st.replica {
            Some(r)
                if r.source_port == primary.port && same_host(&r.source_host, &primary.host) =>
            {
                report.push(format!("{ep}: HA standby node replicating from {primary}"))
            }
            Some(r) => report.push(format!(
                "warning: {ep} replicates from {}:{}, not from the primary {primary}",
                r.source_host, r.source_port
            )),
            None => report.push(format!(
                "warning: {ep} does not replicate; it is not a copy of the primary {primary}"
            )),
        }
        if !st.read_only {
            report.push(format!(
                "warning: {ep} is writable; HA standby nodes should be read_only=ON"
            ));
        }
    }
    // A primary that replicates from another cluster's primary is that
    // cluster's DR standby: the link is recorded as found.
    let mut dr_source = None;
    if let Some(r) = &states[0].replica {
        let source = format!("{}:{}", r.source_host, r.source_port);
        let local = format!("127.0.0.1:{}", r.source_port);
        let found = db.read(|m| m.server(&source))?.or(db
            .read(|m| m.server(&local))?
            .filter(|_| same_host(&r.source_host, "127.0.0.1")));
        match found.and_then(|s| s.cluster_id) {
            Some(c) => match db.read(|m| m.cluster(&c))? {
                Some(src) if src.owner == owner => {
                    let healthy = r.io_running() && r.sql_running && r.last_error().is_none();
                    report.push(format!(
                        "{primary}: replicates from {source}, the primary of {c}: {id} is its DR standby"
                    ));
                    dr_source = Some((c, healthy));
                }
                _ => report.push(format!(
                    "{primary}: replicates from {source} (another owner's)"
                )),
            },
            None => report.push(format!(
                "{primary}: replicates from {source}, which qcgate does not manage"
            )),
        }
    } else if states[0].read_only {
        report.push(format!("note: the primary {primary} is read_only=ON"));
    }
    let nodes: Vec<(String, &str)> = members
        .iter()
        .map(|_| (crate::ids::node_id(), "maininstance"))
        .collect();
    let added = db.change(|m| {
        let new = NewCluster {
            id,
            zone,
            owner,
            name,
            nodes: &nodes,
            status: "active",
        };
        if !m.create_cluster(&new)? {
            return Ok(false);
        }
        m.set_backend(id, "servers")?;
        for ((ep, _), (node, _)) in members.iter().zip(&nodes) {
            if !m.bind_server(&ep.to_string(), id, node)? {
                return Err(StoreError::Conflict(format!("{ep} was taken meanwhile")));
            }
        }
        if let Some((source, healthy)) = &dr_source {
            m.set_standby(id, source, "increment")?;
            if !healthy {
                m.set_sync_status(id, "BROKEN")?;
            }
        }
        Ok(true)
    })?;
    if !added {
        return Err(format!("cluster {id} is already registered").into());
    }
    let mut text = format!(
        "added {id} in {zone} for {owner} on {} server(s); primary {primary}",
        members.len()
    );
    for line in report {
        text.push_str(&format!("\n  {line}"));
    }
    Ok(text)
}

fn same_host(a: &str, b: &str) -> bool {
    let loopback = |h: &str| h == "localhost" || h.starts_with("127.") || h == "::1";
    a.eq_ignore_ascii_case(b) || (loopback(a) && loopback(b))
}
