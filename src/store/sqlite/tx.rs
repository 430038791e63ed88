//! A write connection with its hot statements prepared once.
//!
//! rusqlite's statement cache finds a statement by hashing its whole text
//! and stores an owned copy of that text as the key on every use: for the
//! ~500-byte job insert that was ~6% of the writer's time. Statements here
//! are `&'static str`s, found by their address.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};

use rusqlite::{Connection, Statement};

/// A connection (inside a transaction, usually) and its prepared statements.
/// Dereferences to the connection for everything else.
pub struct Tx<'c> {
    conn: &'c Connection,
    idle: RefCell<Vec<(&'static str, Statement<'c>)>>,
}

impl<'c> Tx<'c> {
    pub fn new(conn: &'c Connection) -> Tx<'c> {
        Tx {
            conn,
            idle: RefCell::new(Vec::new()),
        }
    }

    /// `sql` prepared, from an earlier use when there was one. While the
    /// returned statement lives, asking for the same text prepares another.
    pub fn cached(&self, sql: &'static str) -> rusqlite::Result<Hot<'_, 'c>> {
        let found = {
            let mut idle = self.idle.borrow_mut();
            idle.iter()
                .position(|(s, _)| std::ptr::eq(*s, sql))
                .map(|i| idle.swap_remove(i).1)
        };
        let stmt = match found {
            Some(stmt) => stmt,
            None => self.conn.prepare(sql)?,
        };
        Ok(Hot {
            sql,
            stmt: Some(stmt),
            home: &self.idle,
        })
    }
}

impl<'c> Deref for Tx<'c> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

/// A statement on loan from a [`Tx`]; it goes back when dropped.
pub struct Hot<'t, 'c> {
    sql: &'static str,
    /// Always `Some` until dropped.
    stmt: Option<Statement<'c>>,
    home: &'t RefCell<Vec<(&'static str, Statement<'c>)>>,
}

impl<'c> Deref for Hot<'_, 'c> {
    type Target = Statement<'c>;

    fn deref(&self) -> &Statement<'c> {
        self.stmt.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl<'c> DerefMut for Hot<'_, 'c> {
    fn deref_mut(&mut self) -> &mut Statement<'c> {
        self.stmt.as_mut().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for Hot<'_, '_> {
    fn drop(&mut self) {
        if let Some(stmt) = self.stmt.take() {
            self.home.borrow_mut().push((self.sql, stmt));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_is_prepared_once_and_nested_uses_get_their_own() {
        let conn = Connection::open_in_memory().expect("open");
        conn.execute_batch("CREATE TABLE t (x INTEGER)")
            .expect("schema");
        let tx = Tx::new(&conn);
        const INSERT: &str = "INSERT INTO t (x) VALUES (?1)";
        for x in 0..3 {
            tx.cached(INSERT)
                .expect("insert")
                .execute([x])
                .expect("run");
        }
        assert_eq!(tx.idle.borrow().len(), 1, "one statement, reused");
        {
            let mut outer = tx.cached("SELECT x FROM t ORDER BY x").expect("select");
            let mut rows = outer.query([]).expect("query");
            while let Some(row) = rows.next().expect("row") {
                let x: i64 = row.get(0).expect("x");
                // Used while another statement is stepping.
                tx.cached(INSERT)
                    .expect("insert")
                    .execute([x + 10])
                    .expect("run");
            }
        }
        let n: i64 = tx
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .expect("count");
        assert_eq!(n, 6);
        assert_eq!(tx.idle.borrow().len(), 2);
    }
}
