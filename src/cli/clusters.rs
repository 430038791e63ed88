//! `qcgate clusters add|list`: the clusters the gateway fronts.

use std::process::ExitCode;

use super::{CliResult, DataDir};
use crate::cli::{out, outln};
use crate::ids::{is_cluster_id, is_owner_id, is_zone};
use crate::mariadb::{Endpoint, Login, Node};
use crate::sealing::MasterKey;
use crate::store::clusters::Layout;
use crate::store::{self, clusters, servers};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Register an existing MySQL Plus HA cluster.
    Add {
        #[arg(long)]
        id: String,
        #[arg(long)]
        zone: String,
        #[arg(long)]
        owner: String,
        #[arg(long, default_value = "")]
        name: String,
        #[command(flatten)]
        nodes: NodeFlags,
        /// A registered server (HOST:PORT) as a node: the first is the
        /// primary, the others its HA standby nodes. Repeat for each.
        #[arg(long = "server")]
        servers: Vec<String>,
        #[command(flatten)]
        dir: DataDir,
    },
    /// List every registered cluster.
    List {
        #[command(flatten)]
        dir: DataDir,
    },
    /// Forget a cluster: refused while a job of it runs or waits, or while
    /// it is in a DR relationship; its servers become free (their data stays).
    Remove {
        id: String,
        #[command(flatten)]
        dir: DataDir,
    },
    /// Print a cluster's primary/standby topology as a tree.
    Topology {
        id: String,
        #[command(flatten)]
        dir: DataDir,
    },
}

/// The nodes of a registered cluster. Without flags: an HA pair of
/// `maininstance` nodes, as MySQL Plus builds by default.
#[derive(clap::Args)]
pub struct NodeFlags {
    /// A single maininstance node, no HA standby node.
    #[arg(long, conflicts_with = "main_nodes")]
    no_ha: bool,
    /// maininstance nodes (2 or 3 with HA).
    #[arg(long, default_value_t = 2)]
    main_nodes: u8,
    /// Read-only instances (`readinstance` nodes).
    #[arg(long, default_value_t = 0)]
    read_nodes: u8,
    /// Analysis (ClickHouse) nodes.
    #[arg(long, default_value_t = 0)]
    analysis_nodes: u8,
    /// Proxy nodes.
    #[arg(long, default_value_t = 0)]
    proxy_nodes: u8,
}

/// `clusters add --server …`: binds registered, free servers of the zone
/// as the cluster's maininstance nodes. It reads their replication state
/// and reports it; it never reconfigures them.
fn add_on_servers(
    id: &str,
    zone: &str,
    owner: &str,
    name: &str,
    flags: &NodeFlags,
    endpoints: &[String],
    dir: &DataDir,
) -> CliResult {
    if flags.read_nodes + flags.analysis_nodes + flags.proxy_nodes > 0 {
        return Err("a cluster on servers has maininstance nodes only (one --server each)".into());
    }
    let text = bind_servers(&dir.data_dir, id, zone, owner, name, endpoints)?;
    outln!("{text}")?;
    Ok(ExitCode::SUCCESS)
}

/// Binds registered servers as a new cluster's nodes; returns the report.
/// Runs its own runtime: call it off any async runtime.
pub fn bind_servers(
    data_dir: &std::path::Path,
    id: &str,
    zone: &str,
    owner: &str,
    name: &str,
    endpoints: &[String],
) -> Result<String, Box<dyn std::error::Error>> {
    if endpoints.len() > 3 {
        return Err("at most 3 --server (a primary and two HA standby nodes)".into());
    }
    let mut conn = store::open_rw(&store::db_path(data_dir))?;
    let master = MasterKey::load_or_create(data_dir)?;
    let mut members = Vec::new();
    for text in endpoints {
        let ep = Endpoint::parse(text)
            .ok_or_else(|| format!("--server must be HOST:PORT, got {text:?}"))?;
        let key = ep.to_string();
        if members.iter().any(|(e, _): &(Endpoint, _)| *e == ep) {
            return Err(format!("{key} is named twice").into());
        }
        let s = servers::get(&conn, &key)?.ok_or_else(|| {
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
            password: servers::open_password(&master, &s)?,
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
        let found = servers::get(&conn, &source)?.or(servers::get(
            &conn,
            &format!("127.0.0.1:{}", r.source_port),
        )?
        .filter(|_| same_host(&r.source_host, "127.0.0.1")));
        match found.and_then(|s| s.cluster_id) {
            Some(c) => match clusters::get(&conn, &c)? {
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
    let added = store::with_tx(&mut conn, |c| {
        if !clusters::create(c, id, zone, owner, name, &nodes, "active")? {
            return Ok(false);
        }
        clusters::set_backend(c, id, "servers")?;
        for ((ep, _), (node, _)) in members.iter().zip(&nodes) {
            if !servers::bind(c, &ep.to_string(), id, node)? {
                return Err(store::StoreError::Conflict(format!(
                    "{ep} was taken meanwhile"
                )));
            }
        }
        if let Some((source, healthy)) = &dr_source {
            clusters::set_standby(c, id, source, "increment")?;
            if !healthy {
                clusters::set_sync_status(c, id, "BROKEN")?;
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

impl NodeFlags {
    fn layout(&self) -> Result<Layout, Box<dyn std::error::Error>> {
        let main = if self.no_ha { 1 } else { self.main_nodes };
        if !(1..=3).contains(&main) || (!self.no_ha && main < 2) {
            return Err("--main-nodes must be 2 or 3 (use --no-ha for a single node)".into());
        }
        if [self.read_nodes, self.analysis_nodes, self.proxy_nodes]
            .iter()
            .any(|n| *n > 10)
        {
            return Err("at most 10 read, analysis or proxy nodes".into());
        }
        Ok(Layout {
            main,
            read: self.read_nodes,
            analysis: self.analysis_nodes,
            proxy: self.proxy_nodes,
        })
    }
}

pub fn run(cmd: Command) -> CliResult {
    match cmd {
        Command::Add {
            id,
            zone,
            owner,
            name,
            nodes,
            servers,
            dir,
        } => {
            if !is_cluster_id(&id) {
                return Err(format!("--id must look like cl-xxxxxxxx, got {id:?}").into());
            }
            if !is_zone(&zone) {
                return Err(format!("--zone must be a lower-case zone id, got {zone:?}").into());
            }
            if !is_owner_id(&owner) {
                return Err(format!("--owner must look like usr-XXXXXXXX, got {owner:?}").into());
            }
            if !servers.is_empty() {
                return add_on_servers(&id, &zone, &owner, &name, &nodes, &servers, &dir);
            }
            let layout = nodes.layout()?;
            let mut conn = store::open_rw(&store::db_path(&dir.data_dir))?;
            if !store::with_tx(&mut conn, |c| {
                clusters::add(c, &id, &zone, &owner, &name, &layout)
            })? {
                return Err(format!("cluster {id} is already registered").into());
            }
            outln!("added {id} in {zone} for {owner}")?;
            warn_unknown_owner(&dir, &owner)?;
        }
        Command::Topology { id, dir } => return topology(&id, &dir),
        Command::Remove { id, dir } => return remove(&id, &dir),
        Command::List { dir } => {
            let conn = store::open_rw(&store::db_path(&dir.data_dir))?;
            outln!(
                "{:<14} {:<8} {:<14} {:<8} {:<8} {:<14} NAME",
                "CLUSTER",
                "ZONE",
                "OWNER",
                "STATUS",
                "ROLE",
                "STANDBY_OF"
            )?;
            for c in clusters::list(&conn)? {
                outln!(
                    "{:<14} {:<8} {:<14} {:<8} {:<8} {:<14} {}",
                    c.cluster_id,
                    c.zone,
                    c.owner,
                    c.status,
                    c.dr_role,
                    c.standby_of.as_deref().unwrap_or("-"),
                    c.name
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The owner comes from a key (`serve` prints it, `keys list` shows it):
/// a cluster of an owner no key has is invisible to every caller.
fn warn_unknown_owner(dir: &DataDir, owner: &str) -> Result<(), Box<dyn std::error::Error>> {
    let conn = store::open_rw(&store::db_path(&dir.data_dir))?;
    let known = crate::store::keys::list(&conn)?
        .iter()
        .any(|k| k.owner == owner && !k.revoked);
    if !known {
        eprintln!(
            "warning: no access key has owner {owner}: no request can see this cluster. \
             The owner is the one `qcgate serve` printed with the first key, or see `qcgate keys list`."
        );
    }
    Ok(())
}

fn remove(id: &str, dir: &DataDir) -> CliResult {
    let mut conn = store::open_rw(&store::db_path(&dir.data_dir))?;
    let c = clusters::get(&conn, id)?.ok_or_else(|| format!("no cluster {id}"))?;
    if let Some(p) = &c.standby_of {
        return Err(
            format!("{id} is a DR standby of {p}; stop_standby or decouple it first").into(),
        );
    }
    let followers = clusters::standbys_of(&conn, id)?;
    if !followers.is_empty() {
        return Err(format!(
            "{id} is the DR primary of {}; decouple them first",
            followers.join(", ")
        )
        .into());
    }
    let removed = store::with_tx(&mut conn, |c| clusters::remove(c, id))?;
    if let Err(why) = removed {
        return Err(why.into());
    }
    clusters::announce_change(&dir.data_dir)?;
    outln!("removed {id}")?;
    Ok(ExitCode::SUCCESS)
}

fn topology(id: &str, dir: &DataDir) -> CliResult {
    let conn = store::open_rw(&store::db_path(&dir.data_dir))?;
    let owner = clusters::get(&conn, id)?
        .ok_or_else(|| format!("no cluster {id}"))?
        .owner;
    let rel = crate::services::topology::relationship(&conn, &owner, id)?
        .ok_or_else(|| format!("no cluster {id}"))?;
    out!("{}", crate::services::topology::render(&rel.topology))?;
    Ok(ExitCode::SUCCESS)
}
