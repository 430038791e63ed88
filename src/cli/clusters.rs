//! `qcgate clusters add|list`: the clusters the gateway fronts.

use std::process::ExitCode;

use super::{CliResult, DataDir};
use crate::cli::{out, outln};
use crate::ids::{is_cluster_id, is_owner_id, is_zone};
use crate::store::clusters::Layout;
use crate::store::local::Local;
use crate::store::model::NewCluster;

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
    let mut db = dir.open()?;
    let text = crate::admin::clusters::bind_servers(&mut db, id, zone, owner, name, endpoints)?;
    outln!("{text}")?;
    Ok(ExitCode::SUCCESS)
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
            let mut db = dir.open()?;
            let nodes = layout.nodes();
            let added = db.change(|m| {
                m.create_cluster(&NewCluster {
                    id: &id,
                    zone: &zone,
                    owner: &owner,
                    name: &name,
                    nodes: &nodes,
                    status: "active",
                })
            })?;
            if !added {
                return Err(format!("cluster {id} is already registered").into());
            }
            outln!("added {id} in {zone} for {owner}")?;
            warn_unknown_owner(&db, &owner)?;
        }
        Command::Topology { id, dir } => return topology(&id, &dir),
        Command::Remove { id, dir } => return remove(&id, &dir),
        Command::List { dir } => {
            let db = dir.open()?;
            outln!(
                "{:<14} {:<8} {:<14} {:<8} {:<8} {:<14} NAME",
                "CLUSTER",
                "ZONE",
                "OWNER",
                "STATUS",
                "ROLE",
                "STANDBY_OF"
            )?;
            for c in db.read(|m| m.clusters())? {
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
fn warn_unknown_owner(db: &Local, owner: &str) -> Result<(), Box<dyn std::error::Error>> {
    let known = db.keys()?.iter().any(|k| k.owner == owner && !k.revoked);
    if !known {
        eprintln!(
            "warning: no access key has owner {owner}: no request can see this cluster. \
             The owner is the one `qcgate serve` printed with the first key, or see `qcgate keys list`."
        );
    }
    Ok(())
}

fn remove(id: &str, dir: &DataDir) -> CliResult {
    let mut db = dir.open()?;
    let c = db
        .read(|m| m.cluster(id))?
        .ok_or_else(|| format!("no cluster {id}"))?;
    if let Some(p) = &c.standby_of {
        return Err(
            format!("{id} is a DR standby of {p}; stop_standby or decouple it first").into(),
        );
    }
    let followers = db.read(|m| m.standbys_of(id))?;
    if !followers.is_empty() {
        return Err(format!(
            "{id} is the DR primary of {}; decouple them first",
            followers.join(", ")
        )
        .into());
    }
    let removed = db.change(|m| m.remove_cluster(id))?;
    if let Err(why) = removed {
        return Err(why.into());
    }
    db.announce_clusters()?;
    outln!("removed {id}")?;
    Ok(ExitCode::SUCCESS)
}

fn topology(id: &str, dir: &DataDir) -> CliResult {
    let db = dir.open()?;
    let rel = db
        .read(|m| {
            let Some(c) = m.cluster(id)? else {
                return Ok(None);
            };
            crate::services::topology::relationship(m, &c.owner, id)
        })?
        .ok_or_else(|| format!("no cluster {id}"))?;
    out!("{}", crate::services::topology::render(&rel.topology))?;
    Ok(ExitCode::SUCCESS)
}
