//! Where the store's statements run, and how: directly on the pool, or,
//! behind a connection pooler in transaction mode (`[database] pooler =
//! "transaction"`, docs/many-regions.md "Through a connection pooler"),
//! unprepared and inside a transaction.
//!
//! A pooler in transaction mode (PgBouncer's `pool_mode = transaction`)
//! lends a server connection for one transaction at a time. Two things sqlx
//! does by default break there:
//!
//! - it keeps named prepared statements (`sqlx_s_1`, ...) on the server
//!   connection, which the next transaction may not have, or which another
//!   client's connection already holds under the same name;
//! - it prepares a statement with one message exchange and runs it with
//!   another; outside a transaction the pooler may hand the second to
//!   another server connection.
//!
//! So in that mode every statement is unnamed (prepared afresh each time)
//! and runs inside a transaction: the caller's, or one of its own.

use futures_util::{StreamExt, TryStreamExt, future::BoxFuture, stream::BoxStream};
use sqlx::error::BoxDynError;
use sqlx::pool::PoolConnection;
use sqlx::{Database, Describe, Either, Execute, Executor, Pool, SqlStr};

use super::sql::dialect::Dialect;

/// A pool, and whether its statements must go unprepared, each in a
/// transaction.
#[derive(Debug)]
pub struct Db<DB: Database> {
    pool: Pool<DB>,
    unnamed: bool,
}

// Not derived: that would ask `DB: Clone`.
impl<DB: Database> Clone for Db<DB> {
    fn clone(&self) -> Self {
        Db {
            pool: self.pool.clone(),
            unnamed: self.unnamed,
        }
    }
}

impl<DB: Dialect> Db<DB> {
    pub fn new(pool: Pool<DB>, unnamed: bool) -> Self {
        Db { pool, unnamed }
    }

    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }

    /// For a statement that cannot run inside a transaction (`VACUUM`,
    /// `REINDEX CONCURRENTLY`), sent alone as one simple query
    /// (`sqlx::raw_sql`): never prepared, and a pooler in transaction mode
    /// runs it as a transaction of its own.
    pub fn outside_transactions(&self) -> &Pool<DB> {
        &self.pool
    }

    /// Whether statements go unprepared (behind a transaction pooler).
    pub fn unnamed(&self) -> bool {
        self.unnamed
    }

    /// Starts a transaction with `statement` on a connection of the pool.
    pub async fn begin_with(
        &self,
        statement: &'static str,
    ) -> Result<Tx<'static, DB>, sqlx::Error> {
        Ok(Tx {
            inner: self.pool.begin_with(statement).await?,
            unnamed: self.unnamed,
        })
    }

    /// Starts a transaction with `statement` on a connection already taken
    /// from the pool.
    pub async fn begin_on<'c>(
        &self,
        conn: &'c mut PoolConnection<DB>,
        statement: &'static str,
    ) -> Result<Tx<'c, DB>, sqlx::Error> {
        Ok(Tx {
            inner: sqlx::Connection::begin_with(&mut **conn, statement).await?,
            unnamed: self.unnamed,
        })
    }

    pub async fn acquire(&self) -> Result<PoolConnection<DB>, sqlx::Error> {
        self.pool.acquire().await
    }
}

/// A transaction that knows whether its statements go unprepared.
pub struct Tx<'c, DB: Database> {
    inner: sqlx::Transaction<'c, DB>,
    unnamed: bool,
}

impl<'c, DB: Database> Tx<'c, DB> {
    /// The transaction's connection, as an executor.
    pub fn on(&mut self) -> On<'_, DB> {
        On {
            conn: &mut *self.inner,
            unnamed: self.unnamed,
        }
    }

    /// The connection itself, for what sqlx runs on its own (migrations).
    pub fn connection(&mut self) -> &mut DB::Connection {
        &mut self.inner
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.inner.commit().await
    }
}

/// One connection, in a transaction, as an executor: each statement
/// unprepared where the connection says so.
pub struct On<'c, DB: Database> {
    conn: &'c mut DB::Connection,
    unnamed: bool,
}

impl<DB: Database> std::fmt::Debug for On<'_, DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("On")
            .field("unnamed", &self.unnamed)
            .finish()
    }
}

impl<'c, DB: Database> Executor<'c> for On<'c, DB>
where
    for<'e> &'e mut DB::Connection: Executor<'e, Database = DB>,
{
    type Database = DB;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<DB::QueryResult, DB::Row>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, DB>,
    {
        if self.unnamed {
            self.conn.fetch_many(Unnamed(query))
        } else {
            self.conn.fetch_many(query)
        }
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<DB::Row>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, DB>,
    {
        if self.unnamed {
            self.conn.fetch_optional(Unnamed(query))
        } else {
            self.conn.fetch_optional(query)
        }
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [DB::TypeInfo],
    ) -> BoxFuture<'e, Result<DB::Statement, sqlx::Error>>
    where
        'c: 'e,
    {
        self.conn.prepare_with(sql, parameters)
    }

    fn describe<'e>(self, sql: SqlStr) -> BoxFuture<'e, Result<Describe<DB>, sqlx::Error>>
    where
        'c: 'e,
    {
        self.conn.describe(sql)
    }
}

/// Statements on the pool itself: as sqlx runs them, or, unprepared, in a
/// transaction of their own, whose rows are read whole before it commits
/// (the long reads, `Store::visit_evidence` and `Store::visit_attempts`,
/// stream inside a transaction of the caller's instead).
impl<'p, DB: Dialect> Executor<'p> for &'_ Db<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    type Database = DB;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<DB::QueryResult, DB::Row>, sqlx::Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, DB>,
    {
        if !self.unnamed {
            return self.pool.fetch_many(query);
        }
        let db = self.clone();
        futures_util::stream::once(async move {
            let mut tx = db.begin_with(DB::BEGIN_WRITE).await?;
            let all: Vec<_> = tx.on().fetch_many(query).try_collect().await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(futures_util::stream::iter(all.into_iter().map(Ok)))
        })
        .try_flatten()
        .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<DB::Row>, sqlx::Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, DB>,
    {
        if !self.unnamed {
            return self.pool.fetch_optional(query);
        }
        let db = self.clone();
        Box::pin(async move {
            let mut tx = db.begin_with(DB::BEGIN_WRITE).await?;
            let row = tx.on().fetch_optional(query).await?;
            tx.commit().await?;
            Ok(row)
        })
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [DB::TypeInfo],
    ) -> BoxFuture<'e, Result<DB::Statement, sqlx::Error>>
    where
        'p: 'e,
    {
        self.pool.prepare_with(sql, parameters)
    }

    fn describe<'e>(self, sql: SqlStr) -> BoxFuture<'e, Result<Describe<DB>, sqlx::Error>>
    where
        'p: 'e,
    {
        self.pool.describe(sql)
    }
}

/// A statement that is never kept prepared: sqlx sends it as the unnamed
/// statement, which the next one replaces.
struct Unnamed<E>(E);

impl<'q, DB: Database, E: Execute<'q, DB>> Execute<'q, DB> for Unnamed<E> {
    fn sql(self) -> SqlStr {
        self.0.sql()
    }

    fn statement(&self) -> Option<&DB::Statement> {
        self.0.statement()
    }

    fn take_arguments(&mut self) -> Result<Option<DB::Arguments>, BoxDynError> {
        self.0.take_arguments()
    }

    fn persistent(&self) -> bool {
        false
    }
}
