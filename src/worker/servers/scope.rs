//! A DR task's `objects`: the databases and tables it copies, replicates and
//! compares. The copy leaves the rest out (`--ignore-table`), the standby's
//! applier skips the rest (`replicate_wild_do_table`), and comparisons look
//! at the selection only.

use serde_json::Value;

use crate::mariadb::runbook::{self, META_DB};
use crate::mariadb::{DbError, Node, cell};

/// One selected database: all of it, or some of its tables.
#[derive(Debug, Clone, PartialEq)]
pub struct Selected {
    pub db: String,
    pub tables: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    All,
    Some(Vec<Selected>),
}

/// What a copy takes: whole schemas, minus the tables to leave out.
pub struct Copy {
    pub schemas: Vec<String>,
    /// `db.table`, for `mariadb-dump --ignore-table`.
    pub ignore: Vec<String>,
}

impl Scope {
    /// From the task's stored `objects` (validated when it was created).
    pub fn from_objects(v: &Value) -> Scope {
        let picked: Vec<Selected> = v
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| {
                let db = o["db_name"].as_str()?.to_string();
                let tables = o["table_name"].as_array().map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str().map(str::to_string))
                        .collect()
                });
                Some(Selected { db, tables })
            })
            .collect();
        if picked.is_empty() {
            Scope::All
        } else {
            Scope::Some(picked)
        }
    }

    pub fn covers(&self, db: &str, table: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Some(s) => s.iter().any(|x| {
                x.db == db
                    && x.tables
                        .as_ref()
                        .is_none_or(|t| t.iter().any(|t| t == table))
            }),
        }
    }

    /// The standby's `replicate_wild_do_table`: empty for everything, else
    /// the selection and qcgate's own schema (heartbeats, journal).
    pub fn wild_do_table(&self) -> String {
        let Scope::Some(s) = self else {
            return String::new();
        };
        // `_` and `%` are wildcards there; a name's own are escaped.
        let esc = |n: &str| {
            n.replace('\\', "\\\\")
                .replace('_', "\\_")
                .replace('%', "\\%")
        };
        let mut patterns = Vec::new();
        for x in s {
            match &x.tables {
                None => patterns.push(format!("{}.%", esc(&x.db))),
                Some(t) => patterns.extend(t.iter().map(|t| format!("{}.{}", esc(&x.db), esc(t)))),
            }
        }
        patterns.push(format!("{}.%", esc(META_DB)));
        patterns.join(",")
    }

    /// The selection as it stands on the source: what to copy, and an
    /// error naming whatever the source does not have.
    pub async fn resolve(&self, src: &mut Node) -> Result<Result<Copy, String>, DbError> {
        let mut schemas = runbook::copy_schemas(src).await?;
        let Scope::Some(sel) = self else {
            return Ok(Ok(Copy {
                schemas,
                ignore: Vec::new(),
            }));
        };
        let mut missing = Vec::new();
        let mut ignore = Vec::new();
        let mut picked = Vec::new();
        for x in sel {
            if !schemas.contains(&x.db) {
                missing.push(x.db.clone());
                continue;
            }
            picked.push(x.db.clone());
            let Some(wanted) = &x.tables else { continue };
            let have = tables(src, &x.db).await?;
            missing.extend(
                wanted
                    .iter()
                    .filter(|t| !have.contains(t))
                    .map(|t| format!("{}.{t}", x.db)),
            );
            ignore.extend(
                have.iter()
                    .filter(|t| !wanted.contains(t))
                    .map(|t| format!("{}.{t}", x.db)),
            );
        }
        if !missing.is_empty() {
            return Ok(Err(format!(
                "objects not on the source: {}",
                missing.join(", ")
            )));
        }
        if schemas.iter().any(|s| s == META_DB) {
            picked.push(META_DB.to_string());
        }
        schemas = picked;
        Ok(Ok(Copy { schemas, ignore }))
    }
}

/// Tables and views of a schema.
async fn tables(n: &mut Node, schema: &str) -> Result<Vec<String>, DbError> {
    let rows = n
        .rows(&format!(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} ORDER BY 1",
            n.lit(schema)
        ))
        .await?;
    Ok(rows.iter().map(|r| cell(r, 0)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_filter_names_the_selection_and_escapes_wildcards() {
        let s = Scope::from_objects(&json!([
            {"db_name": "app"},
            {"db_name": "my_shop", "table_name": ["orders", "a%b"]}
        ]));
        assert_eq!(
            s.wild_do_table(),
            "app.%,my\\_shop.orders,my\\_shop.a\\%b,qcgate\\_meta.%"
        );
        assert!(s.covers("app", "x") && s.covers("my_shop", "orders"));
        assert!(!s.covers("my_shop", "carts") && !s.covers("other", "x"));
        let all = Scope::from_objects(&json!(["*"]));
        assert_eq!(all, Scope::All);
        assert_eq!(all.wild_do_table(), "");
        assert!(all.covers("any", "thing"));
    }
}
