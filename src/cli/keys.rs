//! `qcgate keys create|list|revoke`: works while `serve` runs.

use std::process::ExitCode;

use super::{CliResult, DataDir};
use crate::cli::outln;
use crate::ids::{is_owner_id, owner_id};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Create a key and print its secret (shown only this once).
    Create {
        #[command(flatten)]
        dir: DataDir,
        /// The account the key acts for (default: a new usr-XXXXXXXX).
        #[arg(long)]
        owner: Option<String>,
        /// Print exactly one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List keys (never their secrets).
    List {
        #[command(flatten)]
        dir: DataDir,
    },
    /// Revoke a key; requests signed with it fail from now on.
    Revoke {
        id: String,
        #[command(flatten)]
        dir: DataDir,
    },
}

pub fn run(cmd: Command) -> CliResult {
    match cmd {
        Command::Create { dir, owner, json } => {
            let owner = owner.unwrap_or_else(owner_id);
            if !is_owner_id(&owner) {
                return Err(format!("--owner must look like usr-XXXXXXXX, got {owner:?}").into());
            }
            let key = dir.open()?.create_key(&owner)?;
            if json {
                outln!("{}", serde_json::to_string(&key)?)?;
            } else {
                outln!("access_key_id:     {}", key.access_key_id)?;
                outln!("secret_access_key: {}", key.secret_access_key)?;
                outln!("owner:             {}", key.owner)?;
                outln!("(the secret is shown only this once)")?;
            }
        }
        Command::List { dir } => {
            let db = dir.open()?;
            outln!(
                "{:<22} {:<14} {:<22} STATUS",
                "ACCESS_KEY_ID",
                "OWNER",
                "CREATED"
            )?;
            for k in db.keys()? {
                outln!(
                    "{:<22} {:<14} {:<22} {}",
                    k.access_key_id,
                    k.owner,
                    crate::clock::format_ts(k.created_at),
                    if k.revoked { "revoked" } else { "active" }
                )?;
            }
        }
        Command::Revoke { id, dir } => {
            if !dir.open()?.revoke_key(&id)? {
                return Err(format!("no active key {id}").into());
            }
            outln!("revoked {id}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
