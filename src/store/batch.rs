//! Batched statements within the limit both backends put on the parameters
//! of one statement, and row sets passed as one JSON parameter.

use super::backend::Dialect;
use sqlx::query_builder::Separated;
use sqlx::{Database, PgConnection, Postgres, QueryBuilder, Sqlite, SqliteConnection};
use std::future::Future;

/// The smaller of the two backends' limits on the parameters of one
/// statement: SQLite's (`SQLITE_MAX_VARIABLE_NUMBER` of the bundled SQLite,
/// 3.32 and later; PostgreSQL's is 65,535).
const MAX_BINDS: usize = 32_766;

/// A connection that runs a built statement: SQLite's or PostgreSQL's.
pub(super) trait BatchConnection: Send {
    /// The connection's database.
    type Database: Database;

    /// Runs the statement `query` has built.
    fn run<'q>(
        &mut self,
        query: &mut QueryBuilder<'q, Self::Database>,
    ) -> impl Future<Output = sqlx::Result<()>> + Send;
}

impl BatchConnection for SqliteConnection {
    type Database = Sqlite;

    async fn run<'q>(&mut self, query: &mut QueryBuilder<'q, Sqlite>) -> sqlx::Result<()> {
        query.build().execute(self).await.map(drop)
    }
}

impl BatchConnection for PgConnection {
    type Database = Postgres;

    async fn run<'q>(&mut self, query: &mut QueryBuilder<'q, Postgres>) -> sqlx::Result<()> {
        query.build().execute(self).await.map(drop)
    }
}

/// Runs `head VALUES (…), (…) tail` over `items`, each item a tuple of
/// `binds` parameters pushed by `push`, in as few statements as the
/// parameter limit allows (none for no items).
pub(super) async fn in_chunks<'a, C: BatchConnection, T: Sync>(
    conn: &mut C,
    head: &str,
    tail: &str,
    binds: usize,
    items: &'a [T],
    mut push: impl FnMut(Separated<'_, 'a, C::Database, &'static str>, &'a T),
) -> anyhow::Result<()> {
    for chunk in items.chunks(MAX_BINDS / binds) {
        let mut query = QueryBuilder::new(head);
        query.push_values(chunk, &mut push).push(tail);
        conn.run(&mut query).await?;
    }
    Ok(())
}

/// Rows passed as one bound parameter, a JSON array of arrays, and read
/// back in SQL as a table with one row per element: one bind instead of
/// one per value, and one small statement for any number of rows.
#[derive(Debug, Clone, Copy)]
pub(super) struct JsonRows {
    /// The backend's JSON functions.
    pub dialect: Dialect,
    /// The parameter holding the array (`$param`).
    pub param: usize,
}

impl JsonRows {
    /// The table of the array's elements, each as the column `value`.
    pub fn table(self) -> String {
        let param = self.param;
        self.dialect.pick(
            format!("json_each(${param})"),
            format!("jsonb_array_elements(${param}::jsonb)"),
        )
    }

    /// The element's `i`th item as text (NULL for a JSON `null`).
    pub fn text(self, i: usize) -> String {
        format!("(value ->> {i})")
    }

    /// The element's `i`th item as an integer.
    pub fn int(self, i: usize) -> String {
        format!("CAST(value ->> {i} AS BIGINT)")
    }
}
