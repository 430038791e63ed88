//! Registering a MariaDB server qcgate may manage: it is checked once
//! (account, settings DR needs, a unique `server_id`) and its admin
//! password sealed. Used by `qcgate servers add` and the DR benchmarks.

use crate::config::Config;
use crate::ids::is_zone;
use crate::mariadb::{Endpoint, Login, Node};
use crate::secret::Secret;
use crate::store::local::Local;
use crate::store::servers;
use crate::worker::allow::AllowList;

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

/// Checks a server and registers it; returns what to tell the person.
/// Runs its own runtime: call it off any async runtime.
pub fn register(
    db: &mut Local,
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
    for other in db.read(|m| m.servers())? {
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
    let key = ep.to_string();
    let master = db.master();
    let added = db.change(|m| {
        m.add_server(
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
