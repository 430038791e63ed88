//! What the pre-check reads of the data: the standby's place in the
//! source's history, tables without a primary key, non-InnoDB tables.

use crate::mariadb::{DbError, GtidPos, Node, NodeState, cell};

/// `increment`: the standby holds part of the source's history, nothing
/// else, and the source still has every transaction after it (notes §B.3).
pub fn increment(
    name: &str,
    st: &NodeState,
    source: &NodeState,
    oldest: &GtidPos,
    problems: &mut Vec<String>,
) {
    if st.current_pos.is_empty() {
        problems.push(format!(
            "{name} has no GTID position: increment would silently start from the source's oldest binlog; use sync_way full"
        ));
        return;
    }
    let errant = st.binlog_state.errant_against(&source.binlog_state);
    if !errant.is_empty() {
        problems.push(format!(
            "{name} has transactions the source never had ({}); it must be copied again with sync_way full",
            errant.join(", ")
        ));
    }
    for d in oldest.domains() {
        if st.current_pos.seq(d) < oldest.seq(d) {
            problems.push(format!(
                "the source's binlogs start after {name}'s position in domain {d} ({} < {}): transactions were purged; use sync_way full",
                st.current_pos.seq(d),
                oldest.seq(d)
            ));
        }
    }
    if !source.binlog_pos.covers(&st.current_pos) {
        problems.push(format!(
            "{name} is ahead of the source ({} against {})",
            st.current_pos, source.binlog_pos
        ));
    }
}

fn schema_list(n: &Node, schemas: &[String]) -> String {
    schemas
        .iter()
        .map(|s| n.lit(s))
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn tables_without_pk(n: &mut Node, schemas: &[String]) -> Result<Vec<String>, DbError> {
    if schemas.is_empty() {
        return Ok(Vec::new());
    }
    let rows = n
        .rows(&format!(
            "SELECT t.TABLE_SCHEMA, t.TABLE_NAME FROM information_schema.TABLES t \
             WHERE t.TABLE_SCHEMA IN ({}) AND t.TABLE_TYPE = 'BASE TABLE' AND NOT EXISTS ( \
               SELECT 1 FROM information_schema.TABLE_CONSTRAINTS c WHERE c.TABLE_SCHEMA = t.TABLE_SCHEMA \
               AND c.TABLE_NAME = t.TABLE_NAME AND c.CONSTRAINT_TYPE = 'PRIMARY KEY') ORDER BY 1, 2",
            schema_list(n, schemas)
        ))
        .await?;
    Ok(rows
        .iter()
        .map(|r| format!("{}.{}", cell(r, 0), cell(r, 1)))
        .collect())
}

pub async fn non_innodb(n: &mut Node, schemas: &[String]) -> Result<Vec<String>, DbError> {
    if schemas.is_empty() {
        return Ok(Vec::new());
    }
    let rows = n
        .rows(&format!(
            "SELECT TABLE_SCHEMA, TABLE_NAME, ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA IN ({}) \
             AND TABLE_TYPE = 'BASE TABLE' AND ENGINE <> 'InnoDB' ORDER BY 1, 2",
            schema_list(n, schemas)
        ))
        .await?;
    Ok(rows
        .iter()
        .map(|r| format!("{}.{} ({})", cell(r, 0), cell(r, 1), cell(r, 2)))
        .collect())
}
