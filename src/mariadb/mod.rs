//! Talking to one MariaDB server: connect, run a statement, read its state.
//! Everything here uses the text protocol (`SHOW` output decodes as text),
//! and every call has a deadline: a server that stops answering fails the
//! step instead of hanging the job.

pub mod checksum;
pub mod gtid;
pub mod runbook;
pub mod state;

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Row, Value};

use crate::secret::Secret;
pub use gtid::{GtidPos, GtidState};
pub use state::{NodeState, Replica};

/// Longest a connection attempt or an ordinary statement may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a server listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    /// `HOST:PORT` (`[v6]:PORT` for IPv6).
    pub fn parse(text: &str) -> Option<Endpoint> {
        let (host, port) = text.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = port.parse::<u16>().ok().filter(|p| *p > 0)?;
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
            return None;
        }
        Some(Endpoint {
            host: host.to_string(),
            port,
        })
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// An account qcgate signs in with.
#[derive(Clone, Debug)]
pub struct Login {
    pub user: String,
    pub password: Secret,
}

/// What went wrong talking to a server; never carries a password.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DbError {
    #[error("[{0}] does not answer: {1}")]
    Unreachable(String, String),
    #[error("[{0}] did not answer within {1} ms")]
    Timeout(String, u128),
    #[error("[{endpoint}] refused `{what}`: {message}")]
    Server {
        endpoint: String,
        what: String,
        code: u16,
        message: String,
    },
    #[error("[{0}] answered something unexpected: {1}")]
    Unexpected(String, String),
}

impl DbError {
    /// The server's error number, when the server answered with one.
    pub fn code(&self) -> Option<u16> {
        match self {
            DbError::Server { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// One open session on a server.
pub struct Node {
    conn: Conn,
    pub endpoint: Endpoint,
    no_backslash_escapes: bool,
}

impl Node {
    pub async fn connect(endpoint: &Endpoint, login: &Login) -> Result<Node, DbError> {
        Self::connect_within(endpoint, login, DEFAULT_TIMEOUT).await
    }

    pub async fn connect_within(
        endpoint: &Endpoint,
        login: &Login,
        limit: Duration,
    ) -> Result<Node, DbError> {
        let opts = OptsBuilder::default()
            .ip_or_hostname(endpoint.host.clone())
            .tcp_port(endpoint.port)
            .user(Some(login.user.clone()))
            .pass(Some(login.password.expose().to_string()))
            .prefer_socket(false)
            .stmt_cache_size(0);
        let ep = endpoint.to_string();
        let conn = match tokio::time::timeout(limit, Conn::new(opts)).await {
            Err(_) => return Err(DbError::Timeout(ep, limit.as_millis())),
            Ok(Err(e)) => return Err(DbError::Unreachable(ep, describe(&e))),
            Ok(Ok(c)) => c,
        };
        let mut node = Node {
            conn,
            endpoint: endpoint.clone(),
            no_backslash_escapes: false,
        };
        let mode = node.text("SELECT @@session.sql_mode").await?;
        node.no_backslash_escapes = mode.contains("NO_BACKSLASH_ESCAPES");
        Ok(node)
    }

    /// This session's id (for `KILL`, and to spare it).
    pub fn connection_id(&self) -> u32 {
        self.conn.id()
    }

    /// A string literal for this session's SQL mode.
    pub fn lit(&self, s: &str) -> String {
        Value::from(s).as_sql(self.no_backslash_escapes)
    }

    pub async fn exec(&mut self, sql: &str) -> Result<(), DbError> {
        self.exec_within(sql, DEFAULT_TIMEOUT).await
    }

    pub async fn exec_within(&mut self, sql: &str, limit: Duration) -> Result<(), DbError> {
        let ep = self.endpoint.to_string();
        match tokio::time::timeout(limit, self.conn.query_drop(sql)).await {
            Err(_) => Err(DbError::Timeout(ep, limit.as_millis())),
            Ok(r) => r.map_err(|e| server_error(ep, sql, &e)),
        }
    }

    /// [`Node::exec`] for a statement that carries `secret`: a server error
    /// quoting the statement (a syntax error does) never shows it.
    pub async fn exec_hiding(&mut self, sql: &str, secret: &str) -> Result<(), DbError> {
        self.exec(sql).await.map_err(|e| match e {
            DbError::Server {
                endpoint,
                what,
                code,
                message,
            } if !secret.is_empty() => {
                let quoted = self.lit(secret);
                let bare = quoted.trim_matches('\'');
                DbError::Server {
                    endpoint,
                    what,
                    code,
                    message: message.replace(bare, "******").replace(secret, "******"),
                }
            }
            other => other,
        })
    }

    pub async fn rows(&mut self, sql: &str) -> Result<Vec<Row>, DbError> {
        self.rows_within(sql, DEFAULT_TIMEOUT).await
    }

    pub async fn rows_within(&mut self, sql: &str, limit: Duration) -> Result<Vec<Row>, DbError> {
        let ep = self.endpoint.to_string();
        match tokio::time::timeout(limit, self.conn.query::<Row, _>(sql)).await {
            Err(_) => Err(DbError::Timeout(ep, limit.as_millis())),
            Ok(r) => r.map_err(|e| server_error(ep, sql, &e)),
        }
    }

    /// The first column of the first row, as text ("" for NULL or no row).
    pub async fn text(&mut self, sql: &str) -> Result<String, DbError> {
        Ok(self
            .rows(sql)
            .await?
            .first()
            .map(|r| cell(r, 0))
            .unwrap_or_default())
    }

    /// Waits until this server has applied `pos`; false on timeout.
    pub async fn gtid_wait(&mut self, pos: &GtidPos, limit: Duration) -> Result<bool, DbError> {
        if pos.is_empty() {
            return Ok(true);
        }
        let secs = limit.as_secs_f64();
        let sql = format!(
            "SELECT MASTER_GTID_WAIT({}, {secs:.3})",
            self.lit(&pos.to_string())
        );
        let answer = self
            .rows_within(&sql, limit + Duration::from_secs(2))
            .await?;
        Ok(answer.first().map(|r| cell(r, 0)).as_deref() == Some("0"))
    }

    pub async fn state(&mut self) -> Result<NodeState, DbError> {
        state::read(self).await
    }

    pub async fn close(self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.conn.disconnect()).await;
    }
}

/// One cell as text: NULL is "", numbers print as numbers.
pub fn cell(row: &Row, i: usize) -> String {
    match row.as_ref(i) {
        Some(Value::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(Value::Int(n)) => n.to_string(),
        Some(Value::UInt(n)) => n.to_string(),
        Some(Value::Float(x)) => x.to_string(),
        Some(Value::Double(x)) => x.to_string(),
        Some(Value::NULL) | None => String::new(),
        Some(other) => other.as_sql(false).trim_matches('\'').to_string(),
    }
}

/// A cell by column name ("" when the column is absent).
pub fn named(row: &Row, name: &str) -> String {
    row.columns_ref()
        .iter()
        .position(|c| c.name_str() == name)
        .map(|i| cell(row, i))
        .unwrap_or_default()
}

/// An identifier in backquotes.
pub fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn describe(e: &mysql_async::Error) -> String {
    match e {
        mysql_async::Error::Server(s) => format!("error {}: {}", s.code, s.message),
        mysql_async::Error::Io(io) => format!("{io}"),
        other => format!("{other}"),
    }
}

/// The statement is named by its first words only: some carry passwords.
fn server_error(endpoint: String, sql: &str, e: &mysql_async::Error) -> DbError {
    let what: String = sql.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    match e {
        mysql_async::Error::Server(s) => DbError::Server {
            endpoint,
            what,
            code: s.code,
            message: s.message.clone(),
        },
        other => DbError::Unreachable(endpoint, describe(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_and_print() {
        let e = Endpoint::parse("127.0.0.1:3306").expect("v4");
        assert_eq!((e.host.as_str(), e.port), ("127.0.0.1", 3306));
        assert_eq!(
            Endpoint::parse("[::1]:3307").expect("v6").to_string(),
            "[::1]:3307"
        );
        for bad in ["127.0.0.1", "h:0", ":3306", "h:99999", "a b:1"] {
            assert!(Endpoint::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(ident("a`b"), "`a``b`");
    }
}
