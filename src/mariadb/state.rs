//! What one server says about itself: settings DR needs, GTID positions,
//! and, when it replicates, its replication threads.

use super::{DbError, GtidPos, GtidState, Node, cell, named};

/// A server as read in one round of queries.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeState {
    pub server_id: u32,
    pub version: String,
    pub read_only: bool,
    pub log_bin: bool,
    pub binlog_format: String,
    pub log_slave_updates: bool,
    pub gtid_strict_mode: bool,
    /// `@@gtid_binlog_pos`: the last transaction in its binlog, per domain.
    #[serde(serialize_with = "as_text")]
    pub binlog_pos: GtidPos,
    /// `@@gtid_current_pos`.
    #[serde(serialize_with = "as_text")]
    pub current_pos: GtidPos,
    /// `@@gtid_slave_pos`: the last replicated transaction applied.
    #[serde(serialize_with = "as_text")]
    pub slave_pos: GtidPos,
    #[serde(skip)]
    pub binlog_state: GtidState,
    pub semi_sync_master: bool,
    pub semi_sync_slave: bool,
    /// Set while it is configured to replicate from a source.
    pub replica: Option<Replica>,
}

/// `SHOW SLAVE STATUS`, the fields DR decisions use.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Replica {
    pub source_host: String,
    pub source_port: u16,
    pub source_user: String,
    pub io_running: String,
    pub sql_running: bool,
    /// `Gtid_IO_Pos`: received from the source.
    #[serde(serialize_with = "as_text")]
    pub received: GtidPos,
    pub using_gtid: String,
    pub last_io_errno: u32,
    pub last_io_error: String,
    pub last_sql_errno: u32,
    pub last_sql_error: String,
    /// Shown, never used to decide anything (it reads 0 while transactions are missing).
    pub seconds_behind_master: Option<u64>,
}

impl Replica {
    pub fn io_running(&self) -> bool {
        self.io_running == "Yes"
    }

    /// The last error of either thread, if any.
    pub fn last_error(&self) -> Option<String> {
        if self.last_io_errno != 0 {
            Some(format!(
                "IO error {}: {}",
                self.last_io_errno, self.last_io_error
            ))
        } else if self.last_sql_errno != 0 {
            Some(format!(
                "SQL error {}: {}",
                self.last_sql_errno, self.last_sql_error
            ))
        } else {
            None
        }
    }
}

impl NodeState {
    /// Takes application writes: not read-only and not replicating.
    pub fn writable(&self) -> bool {
        !self.read_only
    }

    /// What DR needs from every managed server and this one lacks.
    pub fn missing_settings(&self) -> Vec<String> {
        let mut v = Vec::new();
        if !self.log_bin {
            v.push("log_bin is OFF (set log_bin in the server's config)".to_string());
        }
        if !self.binlog_format.eq_ignore_ascii_case("ROW") {
            v.push(format!("binlog_format is {}, not ROW", self.binlog_format));
        }
        if !self.log_slave_updates {
            v.push("log_slave_updates is OFF (chains and promotions need it)".to_string());
        }
        v
    }
}

fn as_text<S: serde::Serializer>(p: &impl std::fmt::Display, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&p.to_string())
}

fn parse_pos(endpoint: &str, text: &str) -> Result<GtidPos, DbError> {
    GtidPos::parse(text).map_err(|e| DbError::Unexpected(endpoint.to_string(), e.to_string()))
}

fn on(text: &str) -> bool {
    matches!(text, "1" | "ON" | "on" | "YES")
}

pub(super) async fn read(node: &mut Node) -> Result<NodeState, DbError> {
    let ep = node.endpoint.to_string();
    let rows = node
        .rows(
            "SELECT @@server_id, @@version, @@read_only, @@log_bin, @@binlog_format, \
             @@log_slave_updates, @@gtid_strict_mode, @@gtid_binlog_pos, @@gtid_current_pos, \
             @@gtid_slave_pos, @@gtid_binlog_state, @@rpl_semi_sync_master_enabled, \
             @@rpl_semi_sync_slave_enabled",
        )
        .await?;
    let r = rows
        .first()
        .ok_or_else(|| DbError::Unexpected(ep.clone(), "no row of server variables".into()))?;
    // An account without SLAVE MONITOR (a source's replication account)
    // cannot see it; the rest of the state still counts.
    let replica = match node.rows("SHOW SLAVE STATUS").await {
        Err(e) if e.code() == Some(1227) => Vec::new(),
        other => other?,
    };
    let replica = replica.first().map(|s| Replica {
        source_host: named(s, "Master_Host"),
        source_port: named(s, "Master_Port").parse().unwrap_or(0),
        source_user: named(s, "Master_User"),
        io_running: named(s, "Slave_IO_Running"),
        sql_running: named(s, "Slave_SQL_Running") == "Yes",
        received: GtidPos::parse(&named(s, "Gtid_IO_Pos")).unwrap_or_default(),
        using_gtid: named(s, "Using_Gtid"),
        last_io_errno: named(s, "Last_IO_Errno").parse().unwrap_or(0),
        last_io_error: named(s, "Last_IO_Error"),
        last_sql_errno: named(s, "Last_SQL_Errno").parse().unwrap_or(0),
        last_sql_error: named(s, "Last_SQL_Error"),
        seconds_behind_master: named(s, "Seconds_Behind_Master").parse().ok(),
    });
    Ok(NodeState {
        server_id: cell(r, 0).parse().unwrap_or(0),
        version: cell(r, 1),
        read_only: on(&cell(r, 2)),
        log_bin: on(&cell(r, 3)),
        binlog_format: cell(r, 4),
        log_slave_updates: on(&cell(r, 5)),
        gtid_strict_mode: on(&cell(r, 6)),
        binlog_pos: parse_pos(&ep, &cell(r, 7))?,
        current_pos: parse_pos(&ep, &cell(r, 8))?,
        slave_pos: parse_pos(&ep, &cell(r, 9))?,
        binlog_state: GtidState::parse(&cell(r, 10))
            .map_err(|e| DbError::Unexpected(ep.clone(), e.to_string()))?,
        semi_sync_master: on(&cell(r, 11)),
        semi_sync_slave: on(&cell(r, 12)),
        replica,
    })
}
