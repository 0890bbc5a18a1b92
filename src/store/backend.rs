//! The two backends behind one [`Store`](super::Store): SQLite (one host,
//! the default) and PostgreSQL (several replicas, SPEC §14). Each query is
//! written once, in SQL both understand (`$1` placeholders, `ON CONFLICT`,
//! `CAST(… AS BIGINT)` where PostgreSQL's types are stricter), and run on
//! the backend's own driver: [`on_pool!`] and [`on_conn!`] expand their body
//! once per backend, so each is type-checked against its driver and no row
//! goes through a driver-agnostic layer. Where the dialects differ, the
//! query picks its text with [`Dialect::pick`].

use sqlx::{PgConnection, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool, Transaction};

/// A pool of connections to one database.
#[derive(Debug, Clone)]
pub(crate) enum Pool {
    /// A SQLite file.
    Sqlite(SqlitePool),
    /// A PostgreSQL database.
    Postgres(PgPool),
}

/// A write transaction (see `Store::write`).
pub(crate) enum Tx {
    /// Opened with `BEGIN IMMEDIATE`.
    Sqlite(Transaction<'static, Sqlite>),
    /// Holding the store's write lock (`pg_advisory_xact_lock`).
    Postgres(Transaction<'static, Postgres>),
}

/// One connection, borrowed from a transaction or a pool.
pub(crate) enum Conn<'a> {
    /// A SQLite connection.
    Sqlite(&'a mut SqliteConnection),
    /// A PostgreSQL connection.
    Postgres(&'a mut PgConnection),
}

/// Which SQL a backend speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite 3.46 (bundled by libsqlite3-sys).
    Sqlite,
    /// PostgreSQL 13 and later.
    Postgres,
}

impl Dialect {
    /// `sqlite` on SQLite, `postgres` on PostgreSQL.
    pub(crate) fn pick<T>(self, sqlite: T, postgres: T) -> T {
        match self {
            Dialect::Sqlite => sqlite,
            Dialect::Postgres => postgres,
        }
    }
}

impl Pool {
    /// The pool's dialect.
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Pool::Sqlite(_) => Dialect::Sqlite,
            Pool::Postgres(_) => Dialect::Postgres,
        }
    }
}

impl Tx {
    /// The transaction's connection.
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match self {
            Tx::Sqlite(tx) => Conn::Sqlite(&mut *tx),
            Tx::Postgres(tx) => Conn::Postgres(&mut *tx),
        }
    }

    /// Commits.
    pub(crate) async fn commit(self) -> sqlx::Result<()> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await,
            Tx::Postgres(tx) => tx.commit().await,
        }
    }
}

impl Conn<'_> {
    /// The same connection, borrowed again for one call.
    pub(crate) fn reborrow(&mut self) -> Conn<'_> {
        match self {
            Conn::Sqlite(c) => Conn::Sqlite(c),
            Conn::Postgres(c) => Conn::Postgres(c),
        }
    }
}

/// Runs `$body` with `$db` bound to the pool of `$store` (a `&Store`), once
/// per backend: `on_pool!(self, |db| query.fetch_all(db).await?)`.
macro_rules! on_pool {
    ($store:expr, |$db:ident| $body:expr) => {
        match &$store.pool {
            $crate::store::backend::Pool::Sqlite($db) => $body,
            $crate::store::backend::Pool::Postgres($db) => $body,
        }
    };
}

/// Runs `$body` with `$c` bound to the `&mut` connection of `$conn` (a
/// [`Conn`]), once per backend: `on_conn!(tx.conn(), |c| q.execute(&mut *c).await?)`.
macro_rules! on_conn {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::store::backend::Conn::Sqlite($c) => $body,
            $crate::store::backend::Conn::Postgres($c) => $body,
        }
    };
}

pub(crate) use {on_conn, on_pool};
