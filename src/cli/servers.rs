//! `qcgate servers add|list|remove`: the MariaDB servers qcgate may manage.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::{CliResult, DataDir};
use crate::cli::outln;
use crate::config::Config;
use crate::mariadb::{Endpoint, Login, Node};
use crate::secret::Secret;
use crate::store::servers;

/// Where the admin password comes from when no file is given.
pub const PASSWORD_ENV: &str = "QCGATE_ADMIN_PASSWORD";

#[derive(clap::Subcommand)]
pub enum Command {
    /// Register a MariaDB server with an administrative account.
    Add {
        /// HOST:PORT (must be in the executor's allow_hosts; loopback by default).
        #[arg(long)]
        endpoint: String,
        #[arg(long)]
        zone: String,
        #[arg(long)]
        admin_user: String,
        /// A file holding the admin password (else QCGATE_ADMIN_PASSWORD).
        #[arg(long)]
        admin_password_file: Option<PathBuf>,
        /// The gateway's config file, for `[executor] allow_hosts`.
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        dir: DataDir,
    },
    /// List registered servers and whether each answers now.
    List {
        #[command(flatten)]
        dir: DataDir,
    },
    /// Forget a server that belongs to no cluster.
    Remove {
        endpoint: String,
        #[command(flatten)]
        dir: DataDir,
    },
}

pub fn run(cmd: Command) -> CliResult {
    match cmd {
        Command::Add {
            endpoint,
            zone,
            admin_user,
            admin_password_file,
            config,
            dir,
        } => add(
            &endpoint,
            &zone,
            &admin_user,
            admin_password_file,
            config,
            &dir,
        ),
        Command::List { dir } => list(&dir),
        Command::Remove { endpoint, dir } => {
            match dir.open()?.change(|m| m.remove_server(&endpoint))? {
                Ok(true) => outln!("removed {endpoint}")?,
                Ok(false) => return Err(format!("no server {endpoint} is registered").into()),
                Err(cluster) => {
                    return Err(format!(
                        "{endpoint} is a node of cluster {cluster}; remove the cluster first"
                    )
                    .into());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn password(file: Option<PathBuf>) -> Result<Secret, Box<dyn std::error::Error>> {
    let text = match file {
        Some(path) => std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        None => std::env::var(PASSWORD_ENV).map_err(|_| {
            format!("give the admin password in --admin-password-file or {PASSWORD_ENV}")
        })?,
    };
    let secret = Secret::new(text.trim_end_matches(['\r', '\n']));
    if secret.expose().is_empty() {
        return Err("the admin password is empty".into());
    }
    Ok(secret)
}

fn add(
    endpoint: &str,
    zone: &str,
    admin_user: &str,
    password_file: Option<PathBuf>,
    config: Option<PathBuf>,
    dir: &DataDir,
) -> CliResult {
    let cfg = Config::load(config.as_deref())?;
    let password = password(password_file)?;
    let text = crate::admin::servers::register(
        &mut dir.open()?,
        &cfg,
        endpoint,
        zone,
        admin_user,
        password,
    )?;
    outln!("{text}")?;
    Ok(ExitCode::SUCCESS)
}

fn list(dir: &DataDir) -> CliResult {
    let db = dir.open()?;
    let all = db.read(|m| m.servers())?;
    let master = (!all.is_empty()).then(|| db.master());
    let rt = super::runtime()?;
    outln!(
        "{:<22} {:<8} {:<10} {:<32} {:<14} ANSWERS",
        "ENDPOINT",
        "ZONE",
        "SERVER_ID",
        "VERSION",
        "CLUSTER"
    )?;
    for s in all {
        let answers = match (&master, Endpoint::parse(&s.endpoint)) {
            (Some(m), Some(ep)) => {
                let login = servers::open_password(m, &s).map(|password| Login {
                    user: s.admin_user.clone(),
                    password,
                });
                match login {
                    Ok(login) => rt.block_on(async {
                        match Node::connect_within(&ep, &login, Duration::from_secs(2)).await {
                            Ok(n) => {
                                n.close().await;
                                "yes".to_string()
                            }
                            Err(e) => format!("no ({e})"),
                        }
                    }),
                    Err(_) => "unknown (the password does not open with this master key)".into(),
                }
            }
            _ => "unknown".into(),
        };
        outln!(
            "{:<22} {:<8} {:<10} {:<32} {:<14} {}",
            s.endpoint,
            s.zone,
            s.server_id,
            s.version,
            s.cluster_id.as_deref().unwrap_or("free"),
            answers
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
