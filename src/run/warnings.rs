//! What a run warns of, recorded once per window (SPEC §3.2, §11): a
//! `budget_warning` for every `warn_at` fraction a budget reading crossed,
//! and a `budget_forecast` for every `warn_before` horizon the projected
//! crossing came within. Warnings change nothing; the notification worker
//! sends them on.

use super::RunOutlook;
use super::Runner;
use super::gather::Gathered;
use crate::engine::Plan;
use crate::engine::outlook::Outlook;
use crate::engine::warnings::{ForecastWarning, forecast_warnings};
use crate::rules::model::Rule;
use crate::store::outbox::BudgetWarning;
use chrono::{DateTime, Utc};

impl Runner {
    /// Records the warnings of run `run_id` over the rules it evaluated
    /// (whose figures are `outlook`), and returns the early warnings
    /// recorded for the first time.
    pub(super) async fn record_warnings(
        &self,
        run_id: i64,
        now: DateTime<Utc>,
        g: &Gathered,
        plan: &Plan,
        outlook: &RunOutlook,
    ) -> anyhow::Result<Vec<ForecastWarning>> {
        self.record_budget_warnings(run_id, now, &g.rules, plan)
            .await?;
        // The run's own figures ([`RunOutlook`]) hold a row for every due
        // rule; only those with `warn_before` horizons warn.
        let forecasts = Outlook {
            at: now,
            forecasts: outlook.rows.clone(),
        };
        let mut recorded = Vec::new();
        for warning in forecast_warnings(&g.rules, &forecasts) {
            if self
                .store
                .record_forecast_warning(Some(run_id), now, &warning)
                .await?
            {
                let f = &warning.forecast;
                tracing::info!(rule = %f.rule, key = ?f.key_name, window = %f.window,
                    horizon = warning.horizon_secs, crossing_at = ?f.crossing_at, "budget forecast");
                recorded.push(warning);
            }
        }
        Ok(recorded)
    }

    /// Records a `budget_warning` for every `warn_at` fraction a reading of
    /// `plan` crossed, once per window per key or group.
    async fn record_budget_warnings(
        &self,
        run_id: i64,
        now: DateTime<Utc>,
        rules: &[Rule],
        plan: &Plan,
    ) -> anyhow::Result<()> {
        for b in &plan.budgets {
            let Some(rule) = rules.iter().find(|r| r.name == *b.rule) else {
                continue;
            };
            let window_start = b
                .window
                .bounds(now)
                .map_or(DateTime::UNIX_EPOCH, |w| w.start);
            for &fraction in &rule.warn_at {
                if b.budget_usd <= 0.0 || b.spend_usd < fraction * b.budget_usd {
                    continue;
                }
                let warning = BudgetWarning {
                    rule: &b.rule,
                    key_hash: b.key_hash.as_deref(),
                    window: b.window.as_str(),
                    window_start,
                    fraction,
                    spend_usd: b.spend_usd,
                    budget_usd: b.budget_usd,
                };
                if self
                    .store
                    .record_budget_warning(Some(run_id), now, &warning)
                    .await?
                {
                    tracing::info!(rule = %b.rule, key = ?b.key_hash, window = %b.window, fraction, "budget warning");
                }
            }
        }
        Ok(())
    }
}
