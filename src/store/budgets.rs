//! The `budget_readings` table: the budget figures runs read, for
//! `keywarden report` (SPEC §5), sampled like usage snapshots
//! (`budget_reading_marks` keeps when each rule's were last recorded).

use super::backend::on_conn;
use super::batch::in_chunks;
use super::{Store, parse_ts, ts};
use crate::engine::plan::BudgetReading;
use chrono::{DateTime, Utc};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

impl Store {
    /// Records the budget readings of run `run_id` started at `at`, per
    /// rule: all of a rule's readings when the rule is in `changed` (the run
    /// changed a key under it: the moment a budget is reached is exact) or
    /// at least `interval` has passed since its readings were last recorded
    /// (or they never were); none of them otherwise. One transaction.
    /// Returns how many readings were written.
    pub async fn record_budget_readings(
        &self,
        run_id: i64,
        at: DateTime<Utc>,
        readings: &[BudgetReading],
        changed: &BTreeSet<&str>,
        interval: Duration,
    ) -> anyhow::Result<usize> {
        if readings.is_empty() {
            return Ok(0);
        }
        let interval = chrono::Duration::from_std(interval)?;
        let mut tx = self.write().await?;
        let marks: Vec<(String, String)> = on_conn!(tx.conn(), |c| {
            sqlx::query_as("SELECT rule, at FROM budget_reading_marks")
                .fetch_all(&mut *c)
                .await?
        });
        let last: HashMap<&str, DateTime<Utc>> = marks
            .iter()
            .map(|(rule, then)| Ok((rule.as_str(), parse_ts(then)?)))
            .collect::<anyhow::Result<_>>()?;
        let due: BTreeSet<&str> = readings
            .iter()
            .map(|r| &*r.rule)
            .filter(|rule| {
                changed.contains(rule) || last.get(rule).is_none_or(|&then| at >= then + interval)
            })
            .collect();
        let written: Vec<&BudgetReading> =
            readings.iter().filter(|r| due.contains(&*r.rule)).collect();
        let due: Vec<&str> = due.into_iter().collect();
        let at = ts(at);
        on_conn!(tx.conn(), |c| {
            in_chunks(
                c,
                "INSERT INTO budget_readings
                     (run_id, at, rule, key_hash, \"window\", spend_usd, budget_usd) ",
                "",
                7,
                &written,
                |mut values, r| {
                    values
                        .push_bind(run_id)
                        .push_bind(&at)
                        .push_bind(&*r.rule)
                        .push_bind(r.key_hash.as_deref())
                        .push_bind(r.window.as_str())
                        .push_bind(r.spend_usd)
                        .push_bind(r.budget_usd);
                },
            )
            .await?;
            in_chunks(
                c,
                "INSERT INTO budget_reading_marks (rule, at) ",
                " ON CONFLICT (rule) DO UPDATE SET at = excluded.at",
                2,
                &due,
                |mut values, &rule| {
                    values.push_bind(rule).push_bind(&at);
                },
            )
            .await?
        });
        tx.commit().await?;
        Ok(written.len())
    }
}
