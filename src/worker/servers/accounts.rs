//! `add_user` and `del_user` on servers: real accounts, created on the
//! primary node with the binlog on, so they reach its HA nodes and DR
//! standbys. Application accounts never get `READ_ONLY ADMIN`, which
//! `read_only` does not stop (notes §B.0).

use super::Op;
use super::fleet::{db, refused};
use crate::mariadb::{Node, ident};
use crate::services;
use crate::worker::executor::{Done, Failure};

/// What `StandardAccount` may do on its database.
const STANDARD: &str = "SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER, \
    CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, \
    ALTER ROUTINE, EVENT, TRIGGER";

/// A host as MariaDB names it: `%`, an address, or `a.b.c.d/netmask`.
fn host_spec(host: &str) -> Result<String, Failure> {
    let Some((addr, bits)) = host.split_once('/') else {
        return Ok(host.to_string());
    };
    let (Ok(ip), Ok(bits)) = (addr.parse::<std::net::Ipv4Addr>(), bits.parse::<u32>()) else {
        return Err(refused(format!(
            "host [{host}]: MariaDB accounts take IPv4 networks only"
        )));
    };
    let mask = u32::MAX.checked_shl(32 - bits.min(32)).unwrap_or(0);
    Ok(format!("{ip}/{}", std::net::Ipv4Addr::from(mask)))
}

fn who(n: &Node, user: &str, host: &str) -> String {
    format!("{}@{}", n.lit(user), n.lit(host))
}

async fn primary(op: &Op, what: &str) -> Result<Node, Failure> {
    let members = op.fleet.members_of(&op.task.cluster)?;
    if members.cluster.standby_of.is_some() {
        return Err(refused(format!(
            "[{}] is a DR standby: accounts come from its primary; {what} there",
            members.id()
        )));
    }
    op.fleet.connect(&members.primary).await
}

fn done(op: &Op, name: &str) -> Result<Done, Failure> {
    let service = services::find(name).ok_or_else(|| {
        Failure::new(
            5000,
            format!("InternalError, {name} is not registered"),
            false,
        )
    })?;
    Ok(Done {
        effect: services::effect(service, &op.task.cluster, &op.task.params),
        output: op
            .steps
            .output(&serde_json::json!({"user": op.param_str("user")})),
    })
}

pub async fn add_user(mut op: Op) -> Result<Done, Failure> {
    let mut n = primary(&op, "add it on the primary cluster").await?;
    let user = op.param_str("user").to_string();
    let password = op.secret("passwd").unwrap_or_default();
    let database = op.param_str("database").to_string();
    let on = if database == "*" {
        "*.*".to_string()
    } else {
        format!("{}.*", ident(&database))
    };
    let superuser = op.param_str("priv") == "SuperuserAccount";
    let ssl = if op.param_str("ssl") == "YES" {
        " REQUIRE SSL"
    } else {
        ""
    };
    let hosts: Vec<String> = op
        .param_str("host")
        .split(';')
        .map(str::to_string)
        .collect();
    for host in &hosts {
        let spec = host_spec(host)?;
        let account = who(&n, &user, &spec);
        op.steps
            .begin("create_user", format!("{user}@{spec}"))
            .await?;
        let sql = format!(
            "CREATE USER {account} IDENTIFIED BY {}{ssl}",
            n.lit(password.expose())
        );
        let created = n.exec_hiding(&sql, password.expose()).await;
        match created {
            Ok(()) => {}
            Err(e) if e.code() == Some(1396) => {
                return Err(refused(format!(
                    "account [{user}@{spec}] already exists on the server"
                )));
            }
            Err(e) => return Err(db(e)),
        }
        let grants = if superuser {
            format!(
                "GRANT ALL PRIVILEGES ON *.* TO {account}; REVOKE READ_ONLY ADMIN ON *.* FROM {account}"
            )
        } else {
            format!("GRANT {STANDARD} ON {on} TO {account}")
        };
        n.exec(&grants).await.map_err(db)?;
        op.steps.done("create_user", "").await?;
    }
    n.close().await;
    done(&op, "add_user")
}

pub async fn del_user(mut op: Op) -> Result<Done, Failure> {
    let mut n = primary(&op, "drop it on the primary cluster").await?;
    let user = op.param_str("user").to_string();
    let hosts: Vec<String> = op
        .param_str("host")
        .split(';')
        .map(str::to_string)
        .collect();
    for host in &hosts {
        let spec = host_spec(host)?;
        op.steps
            .begin("drop_user", format!("{user}@{spec}"))
            .await?;
        // Dropping what is already gone is not an error: the service is
        // retried after an interruption.
        n.exec(&format!("DROP USER IF EXISTS {}", who(&n, &user, &spec)))
            .await
            .map_err(db)?;
        op.steps.done("drop_user", "").await?;
    }
    n.close().await;
    done(&op, "del_user")
}
