//! The checks run before a standby starts replicating from a source (DRS's
//! pre-check, notes §B.2–B.3): each an item PASSED, ALARM or FAILED, with
//! the reason and the fix. `start_standby` refuses on any FAILED item;
//! a DR task shows them all (`DescribeDRTaskPrechecks`).

mod data;

use serde_json::{Value, json};

use data::{increment, non_innodb, tables_without_pk};

use super::checks::{same_host, version};
use super::fleet::{Fleet, Members};
use crate::mariadb::{Endpoint, GtidPos, Login, Node, NodeState, cell, runbook};

#[derive(Debug, Clone, serde::Serialize)]
pub struct Item {
    pub item: &'static str,
    pub group: &'static str,
    /// `PASSED`, `ALARM` or `FAILED`.
    pub result: &'static str,
    pub failed_reason: String,
    pub fix: String,
    pub data: Value,
}

/// What is checked: a source, the account on it, and the standby cluster.
pub struct Sides<'a> {
    pub source: Endpoint,
    pub login: Login,
    pub full: bool,
    pub standby: &'a Members,
    /// The registered source cluster, when there is one.
    pub source_cluster: Option<&'a Members>,
}

pub struct Checked {
    pub items: Vec<Item>,
    pub source_state: Option<NodeState>,
    /// What a full copy takes (`runbook::copy_schemas`).
    pub schemas: Vec<String>,
}

impl Checked {
    pub fn failed(&self) -> Vec<&Item> {
        self.items.iter().filter(|i| i.result == "FAILED").collect()
    }

    /// DRS's `total_passed_rate`: the share of items not FAILED, in percent.
    pub fn passed_rate(&self) -> f64 {
        if self.items.is_empty() {
            return 0.0;
        }
        let ok = self.items.iter().filter(|i| i.result != "FAILED").count();
        (ok as f64 * 1000.0 / self.items.len() as f64).round() / 10.0
    }

    /// The reasons of the FAILED items, as one refusal.
    pub fn refusal(&self) -> Option<String> {
        let failed = self.failed();
        (!failed.is_empty()).then(|| {
            failed
                .iter()
                .map(|i| i.failed_reason.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    pub fn json(&self) -> Value {
        json!({
            "precheck_result_set": self.items,
            "total_passed_rate": self.passed_rate(),
            "result": self.failed().is_empty(),
            "alarms": self.items.iter().filter(|i| i.result == "ALARM").count(),
        })
    }
}

struct Items(Vec<Item>);

impl Items {
    fn pass(&mut self, item: &'static str, group: &'static str, data: Value) {
        self.0.push(Item {
            item,
            group,
            result: "PASSED",
            failed_reason: String::new(),
            fix: String::new(),
            data,
        });
    }

    fn fail(&mut self, item: &'static str, group: &'static str, why: String, fix: &str) {
        self.0.push(Item {
            item,
            group,
            result: "FAILED",
            failed_reason: why,
            fix: fix.to_string(),
            data: Value::Null,
        });
    }

    fn alarm(&mut self, item: &'static str, group: &'static str, why: String, fix: &str) {
        self.0.push(Item {
            item,
            group,
            result: "ALARM",
            failed_reason: why,
            fix: fix.to_string(),
            data: Value::Null,
        });
    }

    fn check(&mut self, item: &'static str, group: &'static str, problems: Vec<String>, fix: &str) {
        if problems.is_empty() {
            self.pass(item, group, Value::Null);
        } else {
            self.fail(item, group, problems.join("; "), fix);
        }
    }
}

pub async fn run(fleet: &Fleet, s: &Sides<'_>) -> Checked {
    let mut items = Items(Vec::new());
    let source = &s.source;
    let b = s.standby.id();
    // Where the source is.
    if let Err(f) = fleet.check_allowed(source) {
        items.fail(
            "srcDbAllowed",
            "connection",
            f.message,
            "add the host to [executor] allow_hosts, or use a source on an allowed network",
        );
        return Checked {
            items: items.0,
            source_state: None,
            schemas: Vec::new(),
        };
    }
    let mut relation = Vec::new();
    if s.standby.all().any(|m| m.endpoint == *source) {
        relation.push(format!("the source {source} is a node of [{b}] itself"));
    }
    if let Some(src) = s.source_cluster {
        let p = &src.primary.endpoint;
        if p.port != source.port || !same_host(&p.host, &source.host) {
            relation.push(format!(
                "{source} is not the primary of [{}], which is {p}",
                src.id()
            ));
        }
        let mut up = Some(src.id().to_string());
        let mut hops = 0;
        while let Some(c) = up {
            if c == b {
                relation.push(format!(
                    "[{}] replicates from [{b}]: a standby of it would make a cycle",
                    src.id()
                ));
                break;
            }
            up = fleet.cluster(&c).ok().flatten().and_then(|c| c.standby_of);
            hops += 1;
            if hops > 64 {
                break;
            }
        }
    }
    items.check(
        "relationship",
        "topology",
        relation,
        "name the source cluster's primary, and no cluster that follows the standby",
    );

    // The source, as the replication account sees it.
    let mut src = match Node::connect(source, &s.login).await {
        Ok(n) => {
            items.pass(
                "srcDbConnection",
                "connection",
                json!({"endpoint": source.to_string()}),
            );
            n
        }
        Err(e) => {
            items.fail(
                "srcDbConnection",
                "connection",
                format!(
                    "cannot connect to the source {source} as [{}]: {e}",
                    s.login.user
                ),
                "check the address, that the server runs, and the account's password",
            );
            return Checked {
                items: items.0,
                source_state: None,
                schemas: Vec::new(),
            };
        }
    };
    let gathered = async {
        let st = src.state().await?;
        let grants: Vec<String> = src
            .rows("SHOW GRANTS")
            .await?
            .iter()
            .map(|r| cell(r, 0).to_ascii_uppercase())
            .filter(|g| g.contains(" ON *.* "))
            .collect();
        let schemas = runbook::copy_schemas(&mut src).await?;
        // Read apart: an account without BINLOG MONITOR cannot list binlogs.
        let oldest = if s.full {
            Ok(GtidPos::default())
        } else {
            runbook::oldest_binlog_start(&mut src).await
        };
        let charset = src
            .rows("SELECT @@character_set_server, @@collation_server")
            .await?;
        let charset = charset
            .first()
            .map(|r| (cell(r, 0), cell(r, 1)))
            .unwrap_or_default();
        let no_pk = tables_without_pk(&mut src, &schemas).await?;
        let other_engines = non_innodb(&mut src, &schemas).await?;
        Ok::<_, crate::mariadb::DbError>((
            st,
            grants,
            schemas,
            oldest,
            charset,
            no_pk,
            other_engines,
        ))
    }
    .await;
    src.close().await;
    let (st, grants, schemas, oldest, charset, no_pk, other_engines) = match gathered {
        Ok(g) => g,
        Err(e) => {
            items.fail(
                "srcDbState",
                "connection",
                format!("reading the source {source}: {e}"),
                "give the account SELECT and BINLOG MONITOR",
            );
            return Checked {
                items: items.0,
                source_state: None,
                schemas: Vec::new(),
            };
        }
    };
    let oldest = match oldest {
        Ok(o) => Some(o),
        Err(e) => {
            items.fail(
                "srcDbBinlogReadable",
                "source",
                format!(
                    "the source's binlogs cannot be listed as [{}]: {e}",
                    s.login.user
                ),
                "GRANT BINLOG MONITOR (and REPLICATION SLAVE) to the account",
            );
            None
        }
    };
    let all = grants.iter().any(|g| g.contains("ALL PRIVILEGES"));
    let needed: &[&str] = if s.full {
        &[
            "REPLICATION SLAVE",
            "SELECT",
            "SHOW VIEW",
            "TRIGGER",
            "EVENT",
        ]
    } else {
        &["REPLICATION SLAVE"]
    };
    let lacking: Vec<String> = needed
        .iter()
        .filter(|p| !all && !grants.iter().any(|g| g.contains(*p)))
        .map(|p| format!("[{}] lacks {p} on the source", s.login.user))
        .collect();
    items.check("srcDbPrivileges", "account", lacking, "GRANT REPLICATION SLAVE, SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES, RELOAD ON *.* to the account");
    let mut binlog = Vec::new();
    if !st.log_bin {
        binlog.push(format!("the source {source}: log_bin is OFF"));
    }
    items.check(
        "srcDbBinlogIsOn",
        "source",
        binlog,
        "set log_bin in the source's config and restart it",
    );
    let format = if st.binlog_format.eq_ignore_ascii_case("ROW") {
        Vec::new()
    } else {
        vec![format!(
            "the source {source}: binlog_format is {}, not ROW",
            st.binlog_format
        )]
    };
    items.check(
        "srcBinlogFormatCheck",
        "source",
        format,
        "SET GLOBAL binlog_format=ROW, and in its config",
    );
    if st.log_slave_updates {
        items.pass("srclogSlaveUpdatesCheck", "source", Value::Null);
    } else {
        items.alarm(
            "srclogSlaveUpdatesCheck",
            "source",
            format!(
                "the source {source}: log_slave_updates is OFF (needed if it is itself a standby)"
            ),
            "set log_slave_updates=ON",
        );
    }

    // The standby's nodes.
    let mut reach = Vec::new();
    let mut settings = Vec::new();
    let mut ids = Vec::new();
    let mut versions = Vec::new();
    let mut empty = Vec::new();
    let mut history = Vec::new();
    let mut charsets = Vec::new();
    let mut replicating = Vec::new();
    for m in s.standby.all() {
        let name = m.name();
        let mut n = match fleet.connect(m).await {
            Ok(n) => n,
            Err(f) => {
                reach.push(format!("{name}: {}", f.message));
                continue;
            }
        };
        let Ok(mst) = n.state().await else {
            reach.push(format!("{name} does not answer"));
            continue;
        };
        settings.extend(
            mst.missing_settings()
                .into_iter()
                .map(|p| format!("{name}: {p}")),
        );
        if mst.server_id == st.server_id {
            ids.push(format!(
                "{name} has server_id {}, the same as the source",
                mst.server_id
            ));
        }
        if version(&mst.version) < version(&st.version) {
            versions.push(format!(
                "{name} runs {}, older than the source's {}",
                mst.version, st.version
            ));
        }
        if s.full {
            if let Ok(theirs) = runbook::user_schemas(&mut n).await
                && !theirs.is_empty()
            {
                empty.push(format!(
                    "{name} holds databases {}: a full copy needs empty standby nodes (drop them, or use sync_way increment)",
                    theirs.join(", ")
                ));
            }
        } else if m.node_id == s.standby.primary.node_id {
            match &oldest {
                Some(oldest) => increment(&name, &mst, &st, oldest, &mut history),
                None => history.push("the source's history could not be read".to_string()),
            }
        }
        if m.node_id == s.standby.primary.node_id {
            if let Some(r) = &mst.replica
                && !(r.source_port == source.port && same_host(&r.source_host, &source.host))
            {
                replicating.push(format!(
                    "{name} already replicates from {}:{}; run stop_standby first",
                    r.source_host, r.source_port
                ));
            }
            if let Ok(rows) = n
                .rows("SELECT @@character_set_server, @@collation_server")
                .await
                && let Some(r) = rows.first()
                && (cell(r, 0), cell(r, 1)) != charset
            {
                charsets.push(format!(
                    "{name} uses {} / {}, the source {} / {}",
                    cell(r, 0),
                    cell(r, 1),
                    charset.0,
                    charset.1
                ));
            }
        }
        n.close().await;
    }
    items.check(
        "dstDbConnection",
        "connection",
        reach,
        "check that the standby's servers run and answer the admin account",
    );
    items.check(
        "dstDbSettings",
        "standby",
        settings,
        "set log_bin, binlog_format=ROW and log_slave_updates=ON on every node",
    );
    items.check(
        "srcDbServerIdCheck",
        "standby",
        ids,
        "give every server its own server_id",
    );
    items.check(
        "dbVersionMeetRequirement",
        "standby",
        versions,
        "upgrade the standby to the source's version or later",
    );
    items.check(
        "dstDbReplicating",
        "standby",
        replicating,
        "run stop_standby on the standby first",
    );
    if s.full {
        items.check(
            "dstDbIsEmpty",
            "standby",
            empty,
            "drop the standby's databases, or use sync_way increment",
        );
    } else {
        items.check(
            "gtidHistoryCheck",
            "standby",
            history,
            "copy the standby again with sync_way full",
        );
    }
    if charsets.is_empty() {
        items.pass(
            "dbCharacterSetConsistency",
            "data",
            json!({"character_set": charset.0, "collation": charset.1}),
        );
    } else {
        items.alarm(
            "dbCharacterSetConsistency",
            "data",
            charsets.join("; "),
            "use the same character_set_server and collation_server on both sides",
        );
    }
    if no_pk.is_empty() {
        items.pass("tablesWithoutPrimaryKey", "data", Value::Null);
    } else {
        items.alarm(
            "tablesWithoutPrimaryKey",
            "data",
            format!(
                "tables without a primary key: {} (a content compare cannot cover them)",
                no_pk.join(", ")
            ),
            "add a primary key to each",
        );
    }
    if other_engines.is_empty() {
        items.pass("srcDbExistUnsupportEngineTable", "data", Value::Null);
    } else {
        items.alarm(
            "srcDbExistUnsupportEngineTable",
            "data",
            format!(
                "non-InnoDB tables: {} (a copy is not consistent for them)",
                other_engines.join(", ")
            ),
            "convert them to InnoDB",
        );
    }
    Checked {
        items: items.0,
        source_state: Some(st),
        schemas,
    }
}
