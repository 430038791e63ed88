//! `qcgate clusters add|list`: the clusters the gateway fronts.

use std::process::ExitCode;

use super::{CliResult, DataDir};
use crate::ids::{is_cluster_id, is_owner_id, is_zone};
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

pub fn run(cmd: Command) -> CliResult {
    match cmd {
        Command::Add {
            id,
            zone,
            owner,
            name,
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
            let mut conn = store::open_rw(&store::db_path(&dir.data_dir))?;
            if !store::with_tx(&mut conn, |c| clusters::add(c, &id, &zone, &owner, &name))? {
                return Err(format!("cluster {id} is already registered").into());
            }
            println!("added {id} in {zone} for {owner}");
        }
        Command::Topology { id, dir } => return topology(&id, &dir),
        Command::List { dir } => {
            let conn = store::open_rw(&store::db_path(&dir.data_dir))?;
            println!(
                "{:<14} {:<8} {:<14} {:<8} {:<8} {:<14} NAME",
                "CLUSTER", "ZONE", "OWNER", "STATUS", "ROLE", "STANDBY_OF"
            );
            for c in clusters::list(&conn)? {
                println!(
                    "{:<14} {:<8} {:<14} {:<8} {:<8} {:<14} {}",
                    c.cluster_id,
                    c.zone,
                    c.owner,
                    c.status,
                    c.dr_role,
                    c.standby_of.as_deref().unwrap_or("-"),
                    c.name
                );
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
    print!("{}", crate::services::topology::render(&rel.topology));
    Ok(ExitCode::SUCCESS)
}
