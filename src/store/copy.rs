//! `keywarden db copy --to URL|FILE`: every row of one database into an
//! empty one, SQLite to PostgreSQL or back (SPEC §14), then checked row for
//! row. The source is read in one snapshot (a read transaction), the target
//! written in one transaction, so a copy is whole or absent.

use super::backend::{Conn, on_conn};
use super::{Dialect, Store};
use futures::TryStreamExt as _;
use sqlx::Row as _;

/// How a column is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// BIGINT (SQLite INTEGER).
    Int,
    /// DOUBLE PRECISION (SQLite REAL).
    Real,
    /// TEXT.
    Text,
}

/// One table of keywarden's schema, as copied.
struct Table {
    name: &'static str,
    columns: &'static [(&'static str, Kind)],
    /// Whether `id` is an identity column (its sequence is moved past the
    /// copied ids on PostgreSQL).
    identity: bool,
}

use Kind::{Int, Real, Text};

/// Every table, parents before the tables that refer to them. The test
/// `every_table_and_column_of_the_schema_is_copied` keeps this in step with
/// the migrations.
const TABLES: &[Table] = &[
    Table {
        name: "rules",
        columns: &[
            ("name", Text),
            ("origin", Text),
            ("enabled", Int),
            ("priority", Int),
            ("definition", Text),
            ("created_at", Text),
            ("updated_at", Text),
        ],
        identity: false,
    },
    Table {
        name: "rule_revisions",
        columns: &[
            ("id", Int),
            ("rule", Text),
            ("at", Text),
            ("who", Text),
            ("before", Text),
            ("after", Text),
        ],
        identity: true,
    },
    Table {
        name: "rule_state",
        columns: &[("rule", Text), ("evaluated_at", Text), ("holding", Text)],
        identity: false,
    },
    Table {
        name: "runs",
        columns: &[
            ("id", Int),
            ("started_at", Text),
            ("finished_at", Text),
            ("trigger", Text),
            ("dry_run", Int),
            ("keys_seen", Int),
            ("rules_evaluated", Int),
            ("changes", Int),
            ("applied", Int),
            ("failed", Int),
            ("held", Int),
            ("status", Text),
            ("error", Text),
            ("notes", Text),
        ],
        identity: true,
    },
    Table {
        name: "changes",
        columns: &[
            ("id", Int),
            ("run_id", Int),
            ("at", Text),
            ("rule", Text),
            ("key_hash", Text),
            ("key_name", Text),
            ("kind", Text),
            ("fields", Text),
            ("reason", Text),
            ("outcome", Text),
            ("error", Text),
            ("http_status", Int),
            ("attempts", Int),
            ("request_id", Text),
            ("disabled_move", Int),
        ],
        identity: true,
    },
    Table {
        name: "change_tallies",
        columns: &[("at", Text), ("kind", Text), ("outcome", Text), ("n", Int)],
        identity: false,
    },
    Table {
        name: "claims",
        columns: &[
            ("key_hash", Text),
            ("field", Text),
            ("rule", Text),
            ("original", Text),
            ("value", Text),
            ("change_id", Int),
            ("since", Text),
        ],
        identity: false,
    },
    Table {
        name: "exemptions",
        columns: &[
            ("id", Int),
            ("key_hash", Text),
            ("rule", Text),
            ("until", Text),
            ("reason", Text),
            ("created_at", Text),
            ("held_at", Text),
        ],
        identity: true,
    },
    Table {
        name: "source_values",
        columns: &[
            ("source_id", Text),
            ("value", Real),
            ("fetched_at", Text),
            ("error", Text),
            ("error_since", Text),
        ],
        identity: false,
    },
    Table {
        name: "events",
        columns: &[
            ("id", Int),
            ("run_id", Int),
            ("at", Text),
            ("kind", Text),
            ("rule", Text),
            ("key_hash", Text),
            ("detail", Text),
        ],
        identity: true,
    },
    Table {
        name: "snapshots",
        columns: &[
            ("id", Int),
            ("at", Text),
            ("key_hash", Text),
            ("disabled", Int),
            ("limit_usd", Real),
            ("limit_remaining", Real),
            ("usage", Real),
            ("usage_daily", Real),
            ("usage_weekly", Real),
            ("usage_monthly", Real),
            ("byok_usage", Real),
            ("byok_usage_daily", Real),
            ("byok_usage_weekly", Real),
            ("byok_usage_monthly", Real),
        ],
        identity: true,
    },
    Table {
        name: "outbox",
        columns: &[
            ("id", Int),
            ("event", Text),
            ("at", Text),
            ("payload", Text),
            ("change_id", Int),
            ("event_id", Int),
        ],
        identity: true,
    },
    Table {
        name: "notify_cursor",
        columns: &[("id", Int), ("last_change_id", Int), ("last_event_id", Int)],
        identity: false,
    },
    Table {
        name: "deliveries",
        columns: &[
            ("webhook", Text),
            ("target", Text),
            ("last_outbox_id", Int),
            ("attempts", Int),
            ("failing_since", Text),
            ("next_attempt_at", Text),
        ],
        identity: false,
    },
    Table {
        name: "delivery_attempts",
        columns: &[
            ("id", Int),
            ("outbox_id", Int),
            ("webhook", Text),
            ("at", Text),
            ("status", Text),
            ("http_status", Int),
            ("error", Text),
        ],
        identity: true,
    },
    Table {
        name: "budget_warnings",
        columns: &[
            ("rule", Text),
            ("subject", Text),
            ("window", Text),
            ("window_start", Text),
            ("fraction", Real),
            ("at", Text),
        ],
        identity: false,
    },
    Table {
        name: "outages",
        columns: &[
            ("kind", Text),
            ("subject", Text),
            ("since", Text),
            ("run_id", Int),
        ],
        identity: false,
    },
    Table {
        name: "budget_readings",
        columns: &[
            ("run_id", Int),
            ("at", Text),
            ("rule", Text),
            ("key_hash", Text),
            ("window", Text),
            ("spend_usd", Real),
            ("budget_usd", Real),
        ],
        identity: false,
    },
    Table {
        name: "open_conflicts",
        columns: &[
            ("key_hash", Text),
            ("field", Text),
            ("winner", Text),
            ("loser", Text),
            ("since", Text),
        ],
        identity: false,
    },
    Table {
        name: "budget_reading_marks",
        columns: &[("rule", Text), ("at", Text)],
        identity: false,
    },
    Table {
        name: "forecast_warnings",
        columns: &[
            ("rule", Text),
            ("subject", Text),
            ("window", Text),
            ("window_start", Text),
            ("horizon_secs", Int),
            ("at", Text),
        ],
        identity: false,
    },
];

/// Rows written per `INSERT` (well under either backend's parameter limit).
const BATCH_ROWS: usize = 500;

/// One stored value.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<String>),
}

/// What a copy moved, table by table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopySummary {
    /// (table, rows) in copy order.
    pub tables: Vec<(String, u64)>,
}

/// A table that was not copied faithfully (the target is then rolled
/// back), or a target that is not empty.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The target already holds rows.
    #[error(
        "{target} is not empty ({table} has {rows} rows); keywarden copies only into an empty \
         database, so that two histories are never mixed"
    )]
    NotEmpty {
        /// Where.
        target: String,
        /// The first table found with rows.
        table: String,
        /// How many.
        rows: i64,
    },
    /// A row read back differs from its source.
    #[error("{table}: row {row} differs after the copy; nothing was written")]
    Mismatch {
        /// The table.
        table: String,
        /// Its position in the table's order (from 1).
        row: u64,
    },
}

/// A column list, each quoted (`"window"` is reserved on PostgreSQL).
fn column_list(table: &Table) -> String {
    table
        .columns
        .iter()
        .map(|(name, _)| format!("\"{name}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `SELECT` of every column in an order both backends agree on: every
/// column, NULLs first (text compares bytewise on both).
fn select_all(table: &Table) -> String {
    let order = table
        .columns
        .iter()
        .map(|(name, _)| format!("\"{name}\" NULLS FIRST"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT {} FROM {} ORDER BY {order}",
        column_list(table),
        table.name
    )
}

/// Decodes the row of `table` that `row` is, on either backend.
macro_rules! decode_row {
    ($row:expr, $table:expr) => {{
        let row = $row;
        $table
            .columns
            .iter()
            .enumerate()
            .map(|(i, (_, kind))| {
                Ok(match kind {
                    Kind::Int => Value::Int(row.try_get(i)?),
                    Kind::Real => Value::Real(row.try_get(i)?),
                    Kind::Text => Value::Text(row.try_get(i)?),
                })
            })
            .collect::<Result<Vec<Value>, sqlx::Error>>()?
    }};
}

impl Store {
    /// Copies every row of this database into `target`, which must be
    /// empty (freshly migrated), checks every row read back from `target`
    /// equals its source, and commits only then.
    pub async fn copy_to(&self, target: &Store) -> anyhow::Result<CopySummary> {
        target.refuse_unless_empty().await?;
        let mut source = self.snapshot().await?;
        let mut sink = target.write().await?;
        // The migration's own cursor row is replaced by the source's.
        on_conn!(sink.conn(), |c| {
            sqlx::query("DELETE FROM notify_cursor")
                .execute(&mut *c)
                .await?;
        });
        let mut summary = CopySummary::default();
        for table in TABLES {
            let rows = copy_table(source.conn(), sink.conn(), table).await?;
            verify_table(source.conn(), sink.conn(), table).await?;
            summary.tables.push((table.name.to_string(), rows));
        }
        if target.dialect() == Dialect::Postgres {
            for table in TABLES.iter().filter(|t| t.identity) {
                let sql = format!(
                    "SELECT setval(pg_get_serial_sequence('{0}', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM {0}",
                    table.name
                );
                on_conn!(sink.conn(), |c| {
                    sqlx::query(&sql).execute(&mut *c).await?;
                });
            }
        }
        sink.commit().await?;
        Ok(summary)
    }

    /// Refuses (with [`CopyError::NotEmpty`]) a database that holds rows
    /// (its `notify_cursor` row aside).
    async fn refuse_unless_empty(&self) -> anyhow::Result<()> {
        for table in TABLES.iter().filter(|t| t.name != "notify_cursor") {
            let sql = format!("SELECT COUNT(*) FROM {}", table.name);
            let rows: i64 = super::backend::on_pool!(self, |db| {
                sqlx::query_scalar(&sql).fetch_one(db).await?
            });
            if rows > 0 {
                return Err(CopyError::NotEmpty {
                    target: self.database().to_string(),
                    table: table.name.to_string(),
                    rows,
                }
                .into());
            }
        }
        Ok(())
    }
}

/// Streams `table` from `source` into `sink` in multi-row `INSERT`s.
async fn copy_table(source: Conn<'_>, mut sink: Conn<'_>, table: &Table) -> anyhow::Result<u64> {
    let select = select_all(table);
    let mut batch: Vec<Vec<Value>> = Vec::with_capacity(BATCH_ROWS);
    let mut copied = 0u64;
    on_conn!(source, |s| {
        let mut rows = sqlx::query(&select).fetch(&mut *s);
        while let Some(row) = rows.try_next().await? {
            batch.push(decode_row!(&row, table));
            if batch.len() == BATCH_ROWS {
                copied += insert(sink.reborrow(), table, &batch).await?;
                batch.clear();
            }
        }
    });
    if !batch.is_empty() {
        copied += insert(sink, table, &batch).await?;
    }
    Ok(copied)
}

/// Inserts `rows` of `table` in one statement.
async fn insert(sink: Conn<'_>, table: &Table, rows: &[Vec<Value>]) -> anyhow::Result<u64> {
    let head = format!("INSERT INTO {} ({}) ", table.name, column_list(table));
    on_conn!(sink, |c| {
        let mut query = sqlx::QueryBuilder::new(head);
        query.push_values(rows, |mut b, row| {
            for value in row {
                match value {
                    Value::Int(v) => b.push_bind(*v),
                    Value::Real(v) => b.push_bind(*v),
                    Value::Text(v) => b.push_bind(v.clone()),
                };
            }
        });
        Ok(query.build().execute(&mut *c).await?.rows_affected())
    })
}

/// Reads `table` back from both sides side by side, in the same order,
/// and compares it row for row.
async fn verify_table(source: Conn<'_>, sink: Conn<'_>, table: &Table) -> anyhow::Result<()> {
    let select = select_all(table);
    let mut row = 0u64;
    let same = on_conn!(source, |s| {
        on_conn!(sink, |t| {
            let mut from = sqlx::query(&select).fetch(&mut *s);
            let mut to = sqlx::query(&select).fetch(&mut *t);
            loop {
                row += 1;
                match (from.try_next().await?, to.try_next().await?) {
                    (None, None) => break true,
                    (Some(a), Some(b)) if decode_row!(&a, table) == decode_row!(&b, table) => {}
                    _ => break false,
                }
            }
        })
    });
    if same {
        return Ok(());
    }
    Err(CopyError::Mismatch {
        table: table.name.to_string(),
        row,
    }
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::backend::on_pool;

    /// A migration that adds a table or a column must add it here too, or
    /// `db copy` would leave it behind.
    #[tokio::test]
    async fn every_table_and_column_of_the_schema_is_copied() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("kw.db")).await.unwrap();
        let schema: Vec<(String, Vec<String>)> = on_pool!(store, |db| {
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE '\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite%' ORDER BY rowid",
            )
            .fetch_all(db)
            .await
            .unwrap();
            let mut schema = Vec::new();
            for table in tables {
                let columns: Vec<String> =
                    sqlx::query_scalar(&format!("SELECT name FROM pragma_table_info('{table}')"))
                        .fetch_all(db)
                        .await
                        .unwrap();
                schema.push((table, columns));
            }
            schema
        });
        let mut copied: Vec<(String, Vec<String>)> = TABLES
            .iter()
            .map(|t| {
                let columns = t.columns.iter().map(|(c, _)| c.to_string()).collect();
                (t.name.to_string(), columns)
            })
            .collect();
        let mut schema = schema;
        copied.sort();
        schema.sort();
        assert_eq!(copied, schema);
    }
}
