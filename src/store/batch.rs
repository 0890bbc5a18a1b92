//! Batched inserts within the backends' limits on the parameters of one
//! statement.

use sqlx::query_builder::Separated;
use sqlx::{Connection, Database, Postgres, QueryBuilder, Sqlite};

/// The parameters one statement may have on both backends: SQLite's limit
/// (`SQLITE_MAX_VARIABLE_NUMBER` of the bundled SQLite, 3.32 and later),
/// below PostgreSQL's 65,535.
const MAX_BINDS: usize = 32_766;

/// A backend that runs a built statement on one of its connections.
pub(super) trait Batched: Database {
    /// Runs `query` on `conn`.
    fn run(
        query: QueryBuilder<'_, Self>,
        conn: &mut Self::Connection,
    ) -> impl Future<Output = sqlx::Result<()>> + Send;
}

/// Implements [`Batched`] for a backend (the same body, type-checked
/// against each driver, where its arguments' lifetime may shrink).
macro_rules! batched {
    ($($db:ty),*) => {$(
        impl Batched for $db {
            async fn run(
                mut query: QueryBuilder<'_, Self>,
                conn: &mut Self::Connection,
            ) -> sqlx::Result<()> {
                query.build().execute(conn).await.map(drop)
            }
        }
    )*};
}

batched!(Sqlite, Postgres);

/// Runs `head VALUES (…), (…) tail` on `conn` over `items`, each item a
/// tuple of `binds` parameters pushed by `push`, in as few statements as the
/// parameter limit allows (none for no items). Generic over the backend, so
/// that it is called the same way in both arms of `on_conn!`.
pub(super) async fn in_chunks<'a, C, T>(
    conn: &mut C,
    head: &str,
    tail: &str,
    binds: usize,
    items: &'a [T],
    mut push: impl FnMut(Separated<'_, 'a, C::Database, &'static str>, &'a T),
) -> anyhow::Result<()>
where
    C: Connection,
    C::Database: Batched,
{
    for chunk in items.chunks(MAX_BINDS / binds) {
        let mut query = QueryBuilder::new(head);
        query.push_values(chunk, &mut push).push(tail);
        <C::Database as Batched>::run(query, conn).await?;
    }
    Ok(())
}
