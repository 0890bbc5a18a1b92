//! The `budget_readings` table: the budget figures each run read, for
//! `keywarden report` (SPEC §5).

use super::{Store, ts};
use crate::engine::plan::BudgetReading;
use chrono::{DateTime, Utc};

impl Store {
    /// Records the budget readings of run `run_id` started at `at`, in one
    /// transaction.
    pub async fn record_budget_readings(
        &self,
        run_id: i64,
        at: DateTime<Utc>,
        readings: &[BudgetReading],
    ) -> anyhow::Result<()> {
        if readings.is_empty() {
            return Ok(());
        }
        let at = ts(at);
        let mut tx = self.pool.begin().await?;
        for r in readings {
            sqlx::query(
                "INSERT INTO budget_readings
                     (run_id, at, rule, key_hash, window, spend_usd, budget_usd)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(run_id)
            .bind(&at)
            .bind(&r.rule)
            .bind(&r.key_hash)
            .bind(&r.window)
            .bind(r.spend_usd)
            .bind(r.budget_usd)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
