//! Comparing a table on two servers: the chunked checksum of
//! pt-table-checksum (`BIT_XOR(CRC32(CONCAT_WS('#', cols…, NULL bitmap)))`)
//! over primary-key ranges, then row by row within a chunk that differs.
//! These build the statements and read their answers; the caller runs them
//! inside a consistent snapshot on each side.

use super::{DbError, Node, cell, ident};

/// A table's shape as the comparison needs it.
#[derive(Debug, Clone)]
pub struct Shape {
    pub db: String,
    pub table: String,
    pub columns: Vec<String>,
    /// Empty: no primary key (its contents cannot be compared by range).
    pub key: Vec<String>,
}

impl Shape {
    pub fn name(&self) -> String {
        format!("{}.{}", ident(&self.db), ident(&self.table))
    }

    /// One row's hash: NULL and '' differ (the NULL bitmap), as in
    /// pt-table-checksum.
    fn row_hash(&self) -> String {
        let cols: Vec<String> = self.columns.iter().map(|c| ident(c)).collect();
        let nulls: Vec<String> = cols.iter().map(|c| format!("ISNULL({c})")).collect();
        format!(
            "CRC32(CONCAT_WS('#', {}, CONCAT({})))",
            cols.join(", "),
            nulls.join(", ")
        )
    }

    fn key_list(&self) -> String {
        self.key
            .iter()
            .map(|c| ident(c))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `(k1, k2) > (v1, v2)` for a bound (row constructor comparison).
    fn compare(&self, n: &Node, op: &str, values: &[String]) -> String {
        let vals: Vec<String> = values.iter().map(|v| n.lit(v)).collect();
        if self.key.len() == 1 {
            format!("{} {op} {}", ident(&self.key[0]), vals[0])
        } else {
            format!("({}) {op} ({})", self.key_list(), vals.join(", "))
        }
    }

    /// The range `(lo, hi]`; `None` bounds are open.
    pub fn range(&self, n: &Node, lo: Option<&[String]>, hi: Option<&[String]>) -> String {
        let mut parts = Vec::new();
        if let Some(lo) = lo {
            parts.push(self.compare(n, ">", lo));
        }
        if let Some(hi) = hi {
            parts.push(self.compare(n, "<=", hi));
        }
        if parts.is_empty() {
            "1=1".into()
        } else {
            parts.join(" AND ")
        }
    }
}

/// The columns and primary key of a table.
pub async fn shape(n: &mut Node, db: &str, table: &str) -> Result<Shape, DbError> {
    let cols = n
        .rows(&format!(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {} ORDER BY ORDINAL_POSITION",
            n.lit(db),
            n.lit(table)
        ))
        .await?;
    let key = n
        .rows(&format!(
            "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {} \
             AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX",
            n.lit(db),
            n.lit(table)
        ))
        .await?;
    Ok(Shape {
        db: db.to_string(),
        table: table.to_string(),
        columns: cols.iter().map(|r| cell(r, 0)).collect(),
        key: key.iter().map(|r| cell(r, 0)).collect(),
    })
}

/// The key of the row `size` rows after `lo` (the end of the next chunk);
/// `None` when fewer rows remain.
pub async fn next_bound(
    n: &mut Node,
    s: &Shape,
    lo: Option<&[String]>,
    size: u64,
) -> Result<Option<Vec<String>>, DbError> {
    let sql = format!(
        "SELECT {} FROM {} WHERE {} ORDER BY {} LIMIT 1 OFFSET {}",
        s.key_list(),
        s.name(),
        s.range(n, lo, None),
        s.key_list(),
        size.saturating_sub(1)
    );
    let rows = n
        .rows_within(&sql, std::time::Duration::from_secs(600))
        .await?;
    Ok(rows
        .first()
        .map(|r| (0..s.key.len()).map(|i| cell(r, i)).collect()))
}

/// Rows and checksum of one range.
pub async fn chunk(n: &mut Node, s: &Shape, range: &str) -> Result<(u64, String), DbError> {
    let sql = format!(
        "SELECT COUNT(*), COALESCE(BIT_XOR(CAST({} AS UNSIGNED)), 0) FROM {} WHERE {range}",
        s.row_hash(),
        s.name()
    );
    let rows = n
        .rows_within(&sql, std::time::Duration::from_secs(600))
        .await?;
    let r = rows.first();
    Ok((
        r.map(|r| cell(r, 0))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0),
        r.map(|r| cell(r, 1)).unwrap_or_default(),
    ))
}

/// Each row of a range: its key and its hash, in key order.
pub async fn rows(
    n: &mut Node,
    s: &Shape,
    range: &str,
) -> Result<Vec<(Vec<String>, String)>, DbError> {
    let sql = format!(
        "SELECT {}, {} FROM {} WHERE {range} ORDER BY {}",
        s.key_list(),
        s.row_hash(),
        s.name(),
        s.key_list()
    );
    let rows = n
        .rows_within(&sql, std::time::Duration::from_secs(600))
        .await?;
    let k = s.key.len();
    Ok(rows
        .iter()
        .map(|r| ((0..k).map(|i| cell(r, i)).collect(), cell(r, k)))
        .collect())
}

/// A `SELECT` that shows one row, for a person to run on either side.
pub fn select_row(n: &Node, s: &Shape, key: &[String]) -> String {
    let cond: Vec<String> = s
        .key
        .iter()
        .zip(key)
        .map(|(c, v)| format!("{} = {}", ident(c), n.lit(v)))
        .collect();
    format!("SELECT * FROM {} WHERE {}", s.name(), cond.join(" AND "))
}
