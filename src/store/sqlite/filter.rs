//! The WHERE clause of the listing queries: one place builds
//! `owner = ? AND col IN (…) AND (instr(id, ?) …)` with its arguments.

use rusqlite::types::Value as SqlValue;

pub struct Where {
    pub clause: String,
    pub args: Vec<SqlValue>,
}

impl Where {
    pub fn new(col: &str, value: &str) -> Self {
        Where {
            clause: format!("{col} = ?"),
            args: vec![SqlValue::Text(value.to_string())],
        }
    }

    pub fn and(&mut self, sql: &str) -> &mut Self {
        self.clause.push_str(" AND ");
        self.clause.push_str(sql);
        self
    }

    pub fn eq(&mut self, col: &str, value: Option<&String>) -> &mut Self {
        if let Some(v) = value {
            self.and(&format!("{col} = ?"));
            self.args.push(SqlValue::Text(v.clone()));
        }
        self
    }

    /// No condition when `values` is empty: an empty filter means any.
    pub fn any_of(&mut self, col: &str, values: &[String]) -> &mut Self {
        if !values.is_empty() {
            self.and(&format!("{col} IN ({})", vec!["?"; values.len()].join(",")));
            self.args.extend(values.iter().cloned().map(SqlValue::Text));
        }
        self
    }

    /// The word appears in the id or the name.
    pub fn search(&mut self, id: &str, name: &str, word: Option<&String>) -> &mut Self {
        if let Some(w) = word {
            self.and(&format!("(instr({id}, ?) > 0 OR instr({name}, ?) > 0)"));
            self.args.push(SqlValue::Text(w.clone()));
            self.args.push(SqlValue::Text(w.clone()));
        }
        self
    }
}
