//! `qcgate clusters add|list`: the clusters the gateway fronts.

use std::process::ExitCode;

use super::{CliResult, DataDir};
use crate::cli::{out, outln};
use crate::ids::{is_cluster_id, is_owner_id, is_zone};
use crate::store::clusters::Layout;
use crate::store::{self, clusters};

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
        #[command(flatten)]
        dir: DataDir,
    },
    /// List every registered cluster.
    List {
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
            let layout = nodes.layout()?;
            let mut conn = store::open_rw(&store::db_path(&dir.data_dir))?;
            if !store::with_tx(&mut conn, |c| {
                clusters::add(c, &id, &zone, &owner, &name, &layout)
            })? {
                return Err(format!("cluster {id} is already registered").into());
            }
            outln!("added {id} in {zone} for {owner}")?;
        }
        Command::Topology { id, dir } => return topology(&id, &dir),
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
