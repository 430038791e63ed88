//! `qcgate servers add|list|remove`: the MariaDB servers qcgate may manage.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::{CliResult, DataDir};
use crate::cli::outln;
use crate::config::Config;
use crate::ids::is_zone;
use crate::mariadb::{Endpoint, Login, Node};
use crate::sealing::MasterKey;
use crate::secret::Secret;
use crate::store::{self, servers};
use crate::worker::allow::AllowList;

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
            let mut conn = store::open_rw(&store::db_path(&dir.data_dir))?;
            match store::with_tx(&mut conn, |c| servers::remove(c, &endpoint))? {
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

/// Privileges the executor uses on every server (MaxScale's 11.x list, plus
/// what seeding and accounts need); `ALL PRIVILEGES` covers them.
const NEEDED: [&str; 9] = [
    "RELOAD",
    "PROCESS",
    "SUPER",
    "REPLICATION SLAVE ADMIN",
    "READ_ONLY ADMIN",
    "CONNECTION ADMIN",
    "BINLOG ADMIN",
    "CREATE USER",
    "SELECT",
];

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
    let text = register(&dir.data_dir, &cfg, endpoint, zone, admin_user, password)?;
    outln!("{text}")?;
    Ok(ExitCode::SUCCESS)
}

/// Checks a server and registers it; returns what to tell the person.
/// Runs its own runtime: call it off any async runtime.
pub fn register(
    data_dir: &std::path::Path,
    cfg: &Config,
    endpoint: &str,
    zone: &str,
    admin_user: &str,
    password: Secret,
) -> Result<String, Box<dyn std::error::Error>> {
    let ep = Endpoint::parse(endpoint)
        .ok_or_else(|| format!("--endpoint must be HOST:PORT, got {endpoint:?}"))?;
    if !is_zone(zone) {
        return Err(format!("--zone must be a lower-case zone id, got {zone:?}").into());
    }
    let allow = AllowList::parse(&cfg.executor.allow_hosts)?;
    if !allow.allows(&ep.host) {
        return Err(format!(
            "{} is not in the executor's allow_hosts ({}); qcgate never dials it",
            ep.host,
            cfg.executor.allow_hosts.join(", ")
        )
        .into());
    }
    let login = Login {
        user: admin_user.to_string(),
        password,
    };
    let (state, grants) = super::runtime()?.block_on(async {
        let mut node = Node::connect(&ep, &login).await?;
        let state = node.state().await?;
        let grants = node.rows("SHOW GRANTS").await?;
        node.close().await;
        Ok::<_, crate::mariadb::DbError>((state, grants))
    })?;
    let grants: Vec<String> = grants
        .iter()
        .map(|r| crate::mariadb::cell(r, 0).to_ascii_uppercase())
        .filter(|g| g.contains(" ON *.* "))
        .collect();
    let mut problems = state.missing_settings();
    if !grants.iter().any(|g| g.contains("ALL PRIVILEGES")) {
        for p in NEEDED {
            if !grants.iter().any(|g| g.contains(p)) {
                problems.push(format!("{admin_user} lacks the {p} privilege on *.*"));
            }
        }
    }
    let mut conn = store::open_rw(&store::db_path(data_dir))?;
    for other in servers::list(&conn)? {
        if other.server_id == state.server_id && other.endpoint != ep.to_string() {
            problems.push(format!(
                "server_id {} is already used by {}; give each server its own",
                state.server_id, other.endpoint
            ));
        }
    }
    if !problems.is_empty() {
        return Err(format!(
            "{ep} cannot be managed yet:\n  - {}",
            problems.join("\n  - ")
        )
        .into());
    }
    let master = MasterKey::load_or_create(data_dir)?;
    let key = ep.to_string();
    let added = store::with_tx(&mut conn, |c| {
        servers::add(
            c,
            &master,
            &servers::NewServer {
                endpoint: &key,
                zone,
                admin_user,
                admin_password: &login.password,
                server_id: state.server_id,
                version: &state.version,
            },
        )
    })?;
    if !added {
        return Err(format!("{ep} is already registered").into());
    }
    let mut text = format!(
        "registered {ep} in {zone}: MariaDB {}, server_id {}, {}",
        state.version,
        state.server_id,
        match &state.replica {
            Some(r) => format!("replicating from {}:{}", r.source_host, r.source_port),
            None if state.read_only => "read-only, not replicating".to_string(),
            None => "writable".to_string(),
        }
    );
    if !state.gtid_strict_mode {
        text.push_str(
            "\nwarning: gtid_strict_mode is OFF; turn it on so diverging histories are refused",
        );
    }
    Ok(text)
}

fn list(dir: &DataDir) -> CliResult {
    let conn = store::open_rw(&store::db_path(&dir.data_dir))?;
    let all = servers::list(&conn)?;
    let master = if all.is_empty() {
        None
    } else {
        Some(MasterKey::load_or_create(&dir.data_dir)?)
    };
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
