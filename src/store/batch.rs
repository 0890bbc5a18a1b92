//! Batched inserts within SQLite's limit on the parameters of one statement.

use sqlx::query_builder::Separated;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

/// SQLite's limit on the parameters of one statement
/// (`SQLITE_MAX_VARIABLE_NUMBER` of the bundled SQLite, 3.32 and later).
const MAX_BINDS: usize = 32_766;

/// Runs `head VALUES (…), (…) tail` over `items`, each item a tuple of
/// `binds` parameters pushed by `push`, in as few statements as SQLite's
/// parameter limit allows (none for no items).
pub(super) async fn in_chunks<'a, T>(
    conn: &mut SqliteConnection,
    head: &str,
    tail: &str,
    binds: usize,
    items: &'a [T],
    mut push: impl FnMut(Separated<'_, 'a, Sqlite, &'static str>, &'a T),
) -> anyhow::Result<()> {
    for chunk in items.chunks(MAX_BINDS / binds) {
        let mut query = QueryBuilder::new(head);
        query.push_values(chunk, &mut push).push(tail);
        query.build().execute(&mut *conn).await?;
    }
    Ok(())
}
