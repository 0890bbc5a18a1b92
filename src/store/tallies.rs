//! `change_tallies` (migration 0010): how many changes settled per run
//! instant, kind and outcome, kept as rows are recorded and completed, so
//! that a long report counts a tally a run instead of an entry a change
//! (`Store::report_change_counts`). Open rows (`pending`, `unknown`) are
//! tallied only once they settle.

use super::backend::{Dialect, Tx, on_conn};
use super::batch::JsonRows;
use crate::engine::{ChangeKind, Outcome};
use std::collections::BTreeMap;

/// Rows settled in one transaction, counted by instant, then by (kind,
/// outcome).
#[derive(Debug, Default)]
pub(super) struct Tallies(BTreeMap<String, BTreeMap<(&'static str, &'static str), i64>>);

impl Tallies {
    /// Counts a row of `kind` at `at` (as stored) that is recorded or
    /// completed with `outcome`, unless that outcome is still open.
    pub fn add(&mut self, at: &str, kind: ChangeKind, outcome: Outcome) {
        if matches!(outcome, Outcome::Pending | Outcome::Unknown) {
            return;
        }
        // A run's rows share their instant: look it up before copying it.
        let at_once = match self.0.get_mut(at) {
            Some(counts) => counts,
            None => self.0.entry(at.to_owned()).or_default(),
        };
        *at_once
            .entry((kind.as_str(), outcome.as_str()))
            .or_insert(0) += 1;
    }

    /// Adds the counts to `change_tallies` within `tx`: one statement.
    pub async fn apply(self, tx: &mut Tx, dialect: Dialect) -> anyhow::Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        let rows = JsonRows { dialect, param: 1 };
        // `WHERE true`: SQLite's parser would read `ON` as a join's.
        let sql = format!(
            "INSERT INTO change_tallies (at, kind, outcome, n)
             SELECT {}, {}, {}, {} FROM {} WHERE true
             ON CONFLICT (at, kind, outcome) DO UPDATE SET n = change_tallies.n + excluded.n",
            rows.text(0),
            rows.text(1),
            rows.text(2),
            rows.int(3),
            rows.table(),
        );
        let json: Vec<_> = self
            .0
            .iter()
            .flat_map(|(at, counts)| {
                counts
                    .iter()
                    .map(move |((kind, outcome), n)| (at, kind, outcome, n))
            })
            .collect();
        let json = serde_json::to_string(&json)?;
        on_conn!(tx.conn(), |c| {
            sqlx::query(&sql).bind(&json).execute(&mut *c).await?;
        });
        Ok(())
    }
}
