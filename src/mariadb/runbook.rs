//! The MariaDB statements of each DR step (notes §B), one function each.
//! Operations compose these; nothing here decides anything.

use std::time::Duration;

use super::{DbError, Endpoint, GtidPos, Login, Node, cell, ident};

/// The schema qcgate keeps its journal in, on the primaries it manages.
pub const META_DB: &str = "qcgate_meta";

/// Schemas that are the server's own, never user data.
pub const SYSTEM_SCHEMAS: [&str; 5] = [
    "mysql",
    "information_schema",
    "performance_schema",
    "sys",
    META_DB,
];

/// Privileges of a replication account (notes §B.0).
pub const REPL_GRANTS: &str = "REPLICATION SLAVE, REPLICATION SLAVE ADMIN, BINLOG MONITOR";

/// Creates (or re-keys) an account without writing the binlog, so it adds
/// no transaction to the server's GTID history.
pub async fn ensure_account(node: &mut Node, login: &Login, grants: &str) -> Result<(), DbError> {
    ensure_account_on(node, login, grants, "*.*").await
}

/// [`ensure_account`] with privileges on `on` (`db`.* or *.*) only.
pub async fn ensure_account_on(
    node: &mut Node,
    login: &Login,
    grants: &str,
    on: &str,
) -> Result<(), DbError> {
    let who = format!("{}@'%'", node.lit(&login.user));
    let pw = node.lit(login.password.expose());
    let sql = format!(
        "SET SESSION sql_log_bin=0; \
         CREATE USER IF NOT EXISTS {who} IDENTIFIED BY {pw}; \
         ALTER USER {who} IDENTIFIED BY {pw}; \
         GRANT {grants} ON {on} TO {who}; \
         SET SESSION sql_log_bin=1"
    );
    let done = node.exec_hiding(&sql, login.password.expose()).await;
    // The session may be reused: binlogging back on whatever happened.
    let _ = node.exec("SET SESSION sql_log_bin=1").await;
    done
}

/// Whether an account exists on the server.
pub async fn account_exists(node: &mut Node, user: &str) -> Result<bool, DbError> {
    let sql = format!(
        "SELECT COUNT(*) FROM mysql.user WHERE User = {}",
        node.lit(user)
    );
    Ok(node.text(&sql).await? != "0")
}

/// Points a server at `source` by GTID and starts replicating.
/// `demote`: merge its own binlog position into its replica position once
/// (MASTER_DEMOTE_TO_SLAVE, 10.10+), for a former primary.
pub async fn replicate_from(
    node: &mut Node,
    source: &Endpoint,
    login: &Login,
    demote: bool,
) -> Result<(), DbError> {
    node.exec("STOP SLAVE").await?;
    let sql = format!(
        "CHANGE MASTER TO MASTER_HOST={}, MASTER_PORT={}, MASTER_USER={}, MASTER_PASSWORD={}, \
         MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1{}",
        node.lit(&source.host),
        source.port,
        node.lit(&login.user),
        node.lit(login.password.expose()),
        if demote {
            ", MASTER_DEMOTE_TO_SLAVE=1"
        } else {
            ""
        }
    );
    node.exec_hiding(&sql, login.password.expose()).await?;
    node.exec("START SLAVE").await
}

/// Sets which tables the applier takes (`replicate_wild_do_table`; empty:
/// all). The applier must be stopped for it, so replication stops here.
pub async fn set_filter(node: &mut Node, patterns: &str) -> Result<(), DbError> {
    node.exec("STOP SLAVE").await?;
    let lit = node.lit(patterns);
    node.exec(&format!("SET GLOBAL replicate_wild_do_table={lit}"))
        .await
}

/// Stops replicating for good and takes writes.
pub async fn promote(node: &mut Node) -> Result<(), DbError> {
    node.exec("STOP SLAVE").await?;
    node.exec("RESET SLAVE ALL").await?;
    node.exec("SET GLOBAL read_only=OFF").await
}

/// Stops replicating for good, staying read-only.
pub async fn detach(node: &mut Node) -> Result<(), DbError> {
    node.exec("STOP SLAVE").await?;
    node.exec("RESET SLAVE ALL").await
}

/// Fences a primary: a global read lock held by this session (it stops
/// every writer, `READ_ONLY ADMIN` ones included), then `read_only`.
pub async fn fence(node: &mut Node, lock_wait: Duration) -> Result<(), DbError> {
    node.exec(&format!(
        "SET SESSION lock_wait_timeout={}",
        lock_wait.as_secs().max(1)
    ))
    .await?;
    node.exec_within(
        "FLUSH TABLES WITH READ LOCK",
        lock_wait + Duration::from_secs(2),
    )
    .await?;
    node.exec("SET GLOBAL read_only=ON").await
}

/// Undoes [`fence`]: writable again.
pub async fn unfence(node: &mut Node) -> Result<(), DbError> {
    node.exec("SET GLOBAL read_only=OFF").await?;
    node.exec("UNLOCK TABLES").await
}

/// Ends the sessions of accounts that `read_only` does not stop (those
/// holding `READ_ONLY ADMIN`), except this one and replication threads.
/// Returns how many were killed.
pub async fn kill_read_only_admins(node: &mut Node) -> Result<usize, DbError> {
    let rows = node
        .rows(
            "SELECT p.ID FROM information_schema.PROCESSLIST p \
             WHERE p.ID <> CONNECTION_ID() \
               AND p.COMMAND NOT IN ('Binlog Dump', 'Daemon', 'Slave_IO', 'Slave_SQL', 'Slave_worker') \
               AND p.USER NOT IN ('system user', 'event_scheduler', 'unauthenticated user') \
               AND EXISTS (SELECT 1 FROM information_schema.USER_PRIVILEGES u \
                           WHERE u.PRIVILEGE_TYPE = 'READ_ONLY ADMIN' \
                             AND u.GRANTEE LIKE CONCAT('''', p.USER, '''@%'))",
        )
        .await?;
    let mut n = 0;
    for r in rows {
        let id = cell(&r, 0);
        if id.chars().all(|c| c.is_ascii_digit()) && !id.is_empty() {
            // Gone already is fine.
            if node.exec(&format!("KILL CONNECTION {id}")).await.is_ok() {
                n += 1;
            }
        }
    }
    Ok(n)
}

/// The server's last binlogged position.
pub async fn binlog_pos(node: &mut Node) -> Result<GtidPos, DbError> {
    let text = node.text("SELECT @@gtid_binlog_pos").await?;
    GtidPos::parse(&text).map_err(|e| DbError::Unexpected(node.endpoint.to_string(), e.to_string()))
}

/// What the server has applied or written: `@@gtid_current_pos`.
pub async fn current_pos(node: &mut Node) -> Result<GtidPos, DbError> {
    let text = node.text("SELECT @@gtid_current_pos").await?;
    GtidPos::parse(&text).map_err(|e| DbError::Unexpected(node.endpoint.to_string(), e.to_string()))
}

/// Writes one journal row (binlogged, so it replicates) and returns the
/// GTID of that transaction.
pub async fn journal(
    node: &mut Node,
    op: &str,
    job_id: &str,
    detail: &str,
) -> Result<GtidPos, DbError> {
    let db = ident(META_DB);
    node.exec(&format!(
        "CREATE DATABASE IF NOT EXISTS {db}; \
         CREATE TABLE IF NOT EXISTS {db}.dr_journal (id BIGINT AUTO_INCREMENT PRIMARY KEY, \
           op VARCHAR(32) NOT NULL, job_id VARCHAR(32) NOT NULL, detail VARCHAR(512) NOT NULL, \
           at DATETIME(6) NOT NULL) ENGINE=InnoDB"
    ))
    .await?;
    node.exec(&format!(
        "INSERT INTO {db}.dr_journal (op, job_id, detail, at) VALUES ({}, {}, {}, NOW(6))",
        node.lit(op),
        node.lit(job_id),
        node.lit(detail)
    ))
    .await?;
    let text = node.text("SELECT @@last_gtid").await?;
    GtidPos::parse(&text).map_err(|e| DbError::Unexpected(node.endpoint.to_string(), e.to_string()))
}

/// User schemas (not the server's own, not qcgate's).
pub async fn user_schemas(node: &mut Node) -> Result<Vec<String>, DbError> {
    let list = SYSTEM_SCHEMAS
        .iter()
        .map(|s| node.lit(s))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = node
        .rows(&format!(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN ({list}) ORDER BY 1"
        ))
        .await?;
    Ok(rows.iter().map(|r| cell(r, 0)).collect())
}

/// What a full copy takes: the user schemas, and qcgate's own when the
/// source has it, since heartbeat and journal rows replicate into it later.
pub async fn copy_schemas(node: &mut Node) -> Result<Vec<String>, DbError> {
    let mut schemas = user_schemas(node).await?;
    let meta = node
        .rows(&format!(
            "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {}",
            node.lit(META_DB)
        ))
        .await?;
    if !meta.is_empty() {
        schemas.push(META_DB.to_string());
    }
    Ok(schemas)
}

/// Write transactions open longer than `secs` (they would hold the fence).
pub async fn long_write_transactions(node: &mut Node, secs: u64) -> Result<Vec<String>, DbError> {
    let rows = node
        .rows(&format!(
            "SELECT trx_mysql_thread_id, TIMESTAMPDIFF(SECOND, trx_started, NOW()) \
             FROM information_schema.INNODB_TRX \
             WHERE trx_rows_modified > 0 AND trx_started <= NOW() - INTERVAL {secs} SECOND"
        ))
        .await?;
    Ok(rows
        .iter()
        .map(|r| format!("session {} open {} s", cell(r, 0), cell(r, 1)))
        .collect())
}

/// Semi-sync on a primary (AFTER_SYNC) or a standby; `timeout` on primaries.
pub async fn semi_sync(node: &mut Node, primary: bool, timeout: Duration) -> Result<(), DbError> {
    if primary {
        node.exec(&format!(
            "SET GLOBAL rpl_semi_sync_slave_enabled=OFF; \
             SET GLOBAL rpl_semi_sync_master_wait_point='AFTER_SYNC'; \
             SET GLOBAL rpl_semi_sync_master_timeout={}; \
             SET GLOBAL rpl_semi_sync_master_enabled=ON",
            timeout.as_millis()
        ))
        .await
    } else {
        node.exec(
            "SET GLOBAL rpl_semi_sync_master_enabled=OFF; SET GLOBAL rpl_semi_sync_slave_enabled=ON",
        )
        .await
    }
}

/// The first GTID of the oldest binlog the server still holds, per domain
/// (from its `Gtid_list` and its first `Gtid` event): a replica positioned
/// before it would silently skip history (notes §B.3).
pub async fn oldest_binlog_start(node: &mut Node) -> Result<GtidPos, DbError> {
    let logs = node.rows("SHOW BINARY LOGS").await?;
    let Some(first) = logs.first().map(|r| cell(r, 0)) else {
        return Ok(GtidPos::default());
    };
    let events = node
        .rows(&format!(
            "SHOW BINLOG EVENTS IN {} LIMIT 200",
            node.lit(&first)
        ))
        .await?;
    let mut listed = GtidPos::default();
    let mut first_gtid = GtidPos::default();
    for e in &events {
        let kind = super::named(e, "Event_type");
        let info = super::named(e, "Info");
        if kind == "Gtid_list" {
            // Info looks like `[0-1-5,1-2-3]`.
            let inner = info.trim().trim_start_matches('[').trim_end_matches(']');
            listed = GtidPos::parse(inner).unwrap_or_default();
        } else if kind == "Gtid" {
            // Info looks like `BEGIN GTID 0-1-6` or `GTID 0-1-6`.
            if let Some(g) = info
                .split_whitespace()
                .find(|w| w.matches('-').count() == 2)
            {
                first_gtid = GtidPos::parse(g).unwrap_or_default();
            }
            break;
        }
    }
    // History starts after what the list says was before this file; the
    // first event tells where it really starts when the list is empty.
    let mut start = GtidPos::default();
    for d in listed.domains().chain(first_gtid.domains()) {
        let from_list = listed.seq(d);
        let from_event = first_gtid.seq(d).saturating_sub(1);
        start = start.with(d, from_list.max(from_event));
    }
    Ok(start)
}
