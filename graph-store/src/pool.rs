//! The store's connection pool and transactions: sqlx's, plus what a transaction pooler
//! in front of PostgreSQL needs (pgbouncer with `pool_mode = transaction`, which may give
//! each transaction of a client another server connection).
//!
//! sqlx runs a statement with parameters in two round trips (Parse … Sync, then Bind …
//! Sync) and keeps its statements named (`sqlx_s_1`, …) and prepared per connection. A
//! transaction pooler breaks both: the second round trip of a statement outside a
//! transaction may reach another server connection than the first, and a named statement
//! prepared on one server connection is missing on the next, or collides with another
//! client's. With [`Pooler::Transaction`]:
//!
//! - every statement is the unnamed one (prepared anew each time, never cached);
//! - a statement run on the pool itself (`.fetch_all(&pool)`, …) runs in a transaction of
//!   its own (BEGIN, the statement, COMMIT on one connection), its rows collected before
//!   the commit;
//! - a statement sqlx itself prepares named all the same (`describe`, the migrator's, its
//!   type look-ups) is closed by [`Transaction::commit`] or [`Transaction::rollback`],
//!   while the server connection is still this client's. A transaction merely dropped
//!   (rolled back by sqlx) cannot close them, so the two functions that let sqlx make
//!   them (`crate::sql::read_only`, `crate::db::migrate`) end their transactions
//!   explicitly on every path.
//!
//! Statements run either on the pool or in a [`Transaction`] from [`PgPool::begin`]: the
//! types here have no other way in, so no statement escapes the rule. Without a
//! transaction pooler ([`Pooler::None`], [`Pooler::Session`]) everything goes straight to
//! sqlx, named and cached as sqlx does it.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::str::FromStr;

use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};
use sqlx::postgres::{PgArguments, PgCopyIn, PgQueryResult, PgRow, PgStatement, PgTypeInfo};
use sqlx::{Connection, Describe, Either, Execute, Executor, Postgres};

/// What sits between edgewatch and PostgreSQL (`[database] pooler`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pooler {
    /// Nothing: edgewatch talks to PostgreSQL itself.
    #[default]
    None,
    /// A pooler that keeps a client on one server connection while it is connected
    /// (pgbouncer's `pool_mode = session`): nothing changes.
    Session,
    /// A pooler that may give each transaction another server connection (pgbouncer's
    /// `pool_mode = transaction`): unnamed statements, each in a transaction.
    Transaction,
}

impl Pooler {
    /// The names `[database] pooler` takes, for help texts.
    pub const NAMES: [&'static str; 3] = ["none", "session", "transaction"];

    /// Whether consecutive transactions of one client connection may run on different
    /// server connections.
    pub fn shares_connections(self) -> bool {
        self == Pooler::Transaction
    }
}

impl FromStr for Pooler {
    type Err = String;

    fn from_str(s: &str) -> Result<Pooler, String> {
        match s {
            "none" => Ok(Pooler::None),
            "session" => Ok(Pooler::Session),
            "transaction" => Ok(Pooler::Transaction),
            _ => Err(format!("{s:?} is not a pooler: one of none, session, transaction")),
        }
    }
}

impl fmt::Display for Pooler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Pooler::None => "none",
            Pooler::Session => "session",
            Pooler::Transaction => "transaction",
        })
    }
}

/// The store's pool: sqlx's pool and the pooler in front of the server. An executor like
/// sqlx's (`.fetch_all(&pool)`); [`PgPool::begin`] starts a [`Transaction`].
#[derive(Debug, Clone)]
pub struct PgPool {
    inner: sqlx::PgPool,
    pooler: Pooler,
}

impl PgPool {
    /// `inner`, whose connections go through `pooler`.
    pub fn new(inner: sqlx::PgPool, pooler: Pooler) -> PgPool {
        PgPool { inner, pooler }
    }

    /// The pooler its connections go through.
    pub fn pooler(&self) -> Pooler {
        self.pooler
    }

    /// Starts a transaction on one of the pool's connections.
    pub async fn begin(&self) -> sqlx::Result<Transaction> {
        let tx = self.inner.begin().await?;
        Ok(Transaction(PgConnection { tx, pooler: self.pooler }))
    }

    /// Closes the pool: waits for the connections in use to come back, then closes all.
    pub async fn close(&self) {
        self.inner.close().await
    }

    /// Whether [`PgPool::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Connections open now, idle or in use.
    pub fn size(&self) -> u32 {
        self.inner.size()
    }

    /// Connections open and idle now.
    pub fn num_idle(&self) -> usize {
        self.inner.num_idle()
    }

    /// The pool's options (its size, its time-outs).
    pub fn options(&self) -> &sqlx::pool::PoolOptions<Postgres> {
        self.inner.options()
    }

    /// Runs `query` in a transaction of its own and collects what it returns.
    async fn in_own_transaction<'q, E>(&self, query: E) -> sqlx::Result<Vec<Either<PgQueryResult, PgRow>>>
    where
        E: 'q + Execute<'q, Postgres>,
    {
        let mut tx = self.begin().await?;
        let steps = (&mut *tx).fetch_many(query).try_collect().await;
        finish(tx, steps).await
    }
}

/// Commits `tx` when `done` is a success, else rolls it back and returns the statement's
/// error (the one to report: a failed rollback closes the connection anyway).
async fn finish<T>(tx: Transaction, done: sqlx::Result<T>) -> sqlx::Result<T> {
    match done {
        Ok(value) => tx.commit().await.map(|()| value),
        Err(e) => {
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

impl<'p> Executor<'p> for &'_ PgPool {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, sqlx::Result<Either<PgQueryResult, PgRow>>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        if !self.pooler.shares_connections() {
            return (&self.inner).fetch_many(query);
        }
        let pool = self.clone();
        stream::once(async move { pool.in_own_transaction(query).await })
            .map_ok(|steps| stream::iter(steps.into_iter().map(Ok)))
            .try_flatten()
            .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, sqlx::Result<Option<PgRow>>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        if !self.pooler.shares_connections() {
            return (&self.inner).fetch_optional(query);
        }
        let pool = self.clone();
        Box::pin(async move {
            let mut tx = pool.begin().await?;
            let row = (&mut *tx).fetch_optional(query).await;
            finish(tx, row).await
        })
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [PgTypeInfo],
    ) -> BoxFuture<'e, sqlx::Result<PgStatement<'q>>>
    where
        'p: 'e,
    {
        if !self.pooler.shares_connections() {
            return (&self.inner).prepare_with(sql, parameters);
        }
        // Named, and closed again at the commit: good for its description only.
        let pool = self.clone();
        Box::pin(async move {
            let mut tx = pool.begin().await?;
            let statement = (&mut *tx).prepare_with(sql, parameters).await?;
            tx.commit().await?;
            Ok(statement)
        })
    }

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, sqlx::Result<Describe<Postgres>>>
    where
        'p: 'e,
    {
        if !self.pooler.shares_connections() {
            return (&self.inner).describe(sql);
        }
        let pool = self.clone();
        Box::pin(async move {
            let mut tx = pool.begin().await?;
            let described = (&mut *tx).describe(sql).await?;
            tx.commit().await?;
            Ok(described)
        })
    }
}

/// A connection in a transaction: what store functions that run several statements take
/// (`&mut PgConnection`), an executor like sqlx's (`.execute(&mut *conn)`).
#[derive(Debug)]
pub struct PgConnection {
    tx: sqlx::Transaction<'static, Postgres>,
    pooler: Pooler,
}

impl PgConnection {
    /// Starts `COPY … FROM STDIN` (see sqlx's `PgConnection::copy_in_raw`).
    pub async fn copy_in_raw(&mut self, statement: &str) -> sqlx::Result<PgCopyIn<&mut sqlx::PgConnection>> {
        self.tx.copy_in_raw(statement).await
    }

    /// sqlx's connection, for sqlx's own functions that want one (the migrator). Named
    /// statements they prepare are closed at the end of the transaction.
    pub(crate) fn sqlx(&mut self) -> &mut sqlx::PgConnection {
        &mut self.tx
    }

    /// Behind a transaction pooler, closes the named statements sqlx prepared in this
    /// transaction (its `describe`, its type look-ups, the migrator's), while the server
    /// connection is still this client's.
    async fn close_named(&mut self) -> sqlx::Result<()> {
        if self.pooler.shares_connections() && self.tx.cached_statements_size() > 0 {
            self.tx.clear_cached_statements().await?;
        }
        Ok(())
    }
}

impl<'c> Executor<'c> for &'c mut PgConnection {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, sqlx::Result<Either<PgQueryResult, PgRow>>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        let statement = Statement::new(query, self.pooler);
        (&mut *self.tx).fetch_many(statement)
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, sqlx::Result<Option<PgRow>>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        let statement = Statement::new(query, self.pooler);
        (&mut *self.tx).fetch_optional(statement)
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [PgTypeInfo],
    ) -> BoxFuture<'e, sqlx::Result<PgStatement<'q>>>
    where
        'c: 'e,
    {
        (&mut *self.tx).prepare_with(sql, parameters)
    }

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, sqlx::Result<Describe<Postgres>>>
    where
        'c: 'e,
    {
        (&mut *self.tx).describe(sql)
    }
}

/// A transaction from [`PgPool::begin`]: `&mut tx` is a `&mut PgConnection`. Dropped
/// without [`Transaction::commit`], it rolls back (as sqlx's does).
#[derive(Debug)]
pub struct Transaction(PgConnection);

impl Transaction {
    /// Commits.
    pub async fn commit(mut self) -> sqlx::Result<()> {
        self.0.close_named().await?;
        self.0.tx.commit().await
    }

    /// Rolls back.
    pub async fn rollback(mut self) -> sqlx::Result<()> {
        self.0.close_named().await?;
        self.0.tx.rollback().await
    }
}

impl Deref for Transaction {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        &self.0
    }
}

impl DerefMut for Transaction {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.0
    }
}

/// A query as sqlx's connection is given it: unnamed behind a transaction pooler.
struct Statement<E> {
    query: E,
    named: bool,
}

impl<E> Statement<E> {
    fn new(query: E, pooler: Pooler) -> Statement<E> {
        Statement { query, named: !pooler.shares_connections() }
    }
}

impl<'q, E: Execute<'q, Postgres>> Execute<'q, Postgres> for Statement<E> {
    fn sql(&self) -> &'q str {
        self.query.sql()
    }

    fn statement(&self) -> Option<&PgStatement<'q>> {
        self.query.statement()
    }

    fn take_arguments(&mut self) -> Result<Option<PgArguments>, sqlx::error::BoxDynError> {
        self.query.take_arguments()
    }

    fn persistent(&self) -> bool {
        self.named && self.query.persistent()
    }
}

#[cfg(test)]
mod tests {
    use super::Pooler;

    #[test]
    fn pooler_names_round_trip() {
        for name in Pooler::NAMES {
            assert_eq!(name.parse::<Pooler>().unwrap().to_string(), name);
        }
        assert!("statement".parse::<Pooler>().unwrap_err().contains("one of none, session, transaction"));
        assert!(Pooler::Transaction.shares_connections());
        assert!(!Pooler::Session.shares_connections() && !Pooler::None.shares_connections());
    }
}
