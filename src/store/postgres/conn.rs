//! Where statements go: a connection or transaction the caller holds, or
//! one taken from the pool at the first statement (most requests that may
//! read the model never do, and should not wait for a connection).

use std::future::Future;

use deadpool_postgres::{Client, GenericClient, Transaction};
use tokio::sync::OnceCell;
use tokio_postgres::Row;

use super::Pg;
use crate::store::StoreError;

pub type Params<'p> = &'p [&'p (dyn tokio_postgres::types::ToSql + Sync)];

/// A connection or transaction whose statements are prepared once per
/// connection (a statement given as text costs a second round trip, to
/// prepare it, every time).
pub struct Cached<'a, C>(pub &'a C);

/// A transaction, as the store's functions are handed it.
pub type Tx<'a, 'b> = Cached<'a, Transaction<'b>>;

impl<C: GenericClient> Cached<'_, C> {
    pub async fn query(&self, sql: &str, p: Params<'_>) -> Result<Vec<Row>, tokio_postgres::Error> {
        let st = self.0.prepare_cached(sql).await?;
        self.0.query(&st, p).await
    }
    pub async fn query_opt(
        &self,
        sql: &str,
        p: Params<'_>,
    ) -> Result<Option<Row>, tokio_postgres::Error> {
        let st = self.0.prepare_cached(sql).await?;
        self.0.query_opt(&st, p).await
    }
    pub async fn query_one(&self, sql: &str, p: Params<'_>) -> Result<Row, tokio_postgres::Error> {
        let st = self.0.prepare_cached(sql).await?;
        self.0.query_one(&st, p).await
    }
    pub async fn execute(&self, sql: &str, p: Params<'_>) -> Result<u64, tokio_postgres::Error> {
        let st = self.0.prepare_cached(sql).await?;
        self.0.execute(&st, p).await
    }
    pub async fn batch_execute(&self, sql: &str) -> Result<(), tokio_postgres::Error> {
        self.0.batch_execute(sql).await
    }
}

/// What the model's statements are sent through.
pub trait Conn: Sync {
    fn rows<'s>(
        &'s self,
        sql: &'s str,
        p: Params<'s>,
    ) -> impl Future<Output = Result<Vec<Row>, StoreError>> + Send + 's;
    fn opt<'s>(
        &'s self,
        sql: &'s str,
        p: Params<'s>,
    ) -> impl Future<Output = Result<Option<Row>, StoreError>> + Send + 's;
    fn exec<'s>(
        &'s self,
        sql: &'s str,
        p: Params<'s>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send + 's;
}

impl<C: GenericClient> Conn for Cached<'_, C> {
    async fn rows<'s>(&'s self, sql: &'s str, p: Params<'s>) -> Result<Vec<Row>, StoreError> {
        Ok(self.query(sql, p).await?)
    }
    async fn opt<'s>(&'s self, sql: &'s str, p: Params<'s>) -> Result<Option<Row>, StoreError> {
        Ok(self.query_opt(sql, p).await?)
    }
    async fn exec<'s>(&'s self, sql: &'s str, p: Params<'s>) -> Result<u64, StoreError> {
        Ok(self.execute(sql, p).await?)
    }
}

/// A pooled connection taken at the first statement, for reads outside a
/// transaction.
pub struct Lazy<'a> {
    pg: &'a Pg,
    client: OnceCell<Client>,
}

impl<'a> Lazy<'a> {
    pub fn new(pg: &'a Pg) -> Self {
        Lazy {
            pg,
            client: OnceCell::new(),
        }
    }
    async fn get(&self) -> Result<Cached<'_, Client>, StoreError> {
        let c = self.client.get_or_try_init(|| self.pg.client()).await?;
        Ok(Cached(c))
    }
}

impl Conn for Lazy<'_> {
    async fn rows<'s>(&'s self, sql: &'s str, p: Params<'s>) -> Result<Vec<Row>, StoreError> {
        Ok(self.get().await?.query(sql, p).await?)
    }
    async fn opt<'s>(&'s self, sql: &'s str, p: Params<'s>) -> Result<Option<Row>, StoreError> {
        Ok(self.get().await?.query_opt(sql, p).await?)
    }
    async fn exec<'s>(&'s self, sql: &'s str, p: Params<'s>) -> Result<u64, StoreError> {
        Ok(self.get().await?.execute(sql, p).await?)
    }
}
