//! Gathering a run's inputs: the enabled rules, the listed keys, the
//! account's credits when a rule needs them, and the due rules' budget
//! sources (SPEC §3.2, §4.1).

use super::{RunError, Runner, sources};
use crate::domain::{Credits, Key};
use crate::engine::evaluate::Amounts;
use crate::openrouter::ApiError;
use crate::rules::model::{Amount, Rule};
use crate::rules::source::{self, Resolution};
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

/// What a run plans from, besides what the store holds.
pub(super) struct Gathered {
    /// Every watched key, as listed now.
    pub(super) keys: Vec<Key>,
    /// The account's credits, when a rule needs them and they could be read.
    pub(super) credits: Option<Credits>,
    /// The budget amounts read from sources.
    pub(super) amounts: Amounts,
    /// The enabled rules.
    pub(super) rules: Vec<Rule>,
}

impl Runner {
    /// Lists keys, reads credits when needed and the due rules' budget sources.
    /// `record`: store sources' values and errors (not for `plan`).
    pub(super) async fn gather(
        &self,
        due: Option<&BTreeSet<String>>,
        run_id: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<Gathered, RunError> {
        let rules: Vec<Rule> = self
            .store
            .rules()
            .await?
            .into_iter()
            .map(|s| s.rule)
            .filter(|r| r.enabled)
            .collect();
        let keys = match self.client.list_keys().await {
            Ok(keys) => keys,
            Err(e) if matches!(e, ApiError::AuthFailed { .. }) => {
                return Err(RunError::AuthFailed(e));
            }
            Err(e) => return Err(RunError::Api(e)),
        };
        let credits = if rules.iter().any(|r| r.when.credits_below.is_some()) {
            match self.client.credits().await {
                Ok(c) => Some(c),
                Err(e) if matches!(e, ApiError::AuthFailed { .. }) => {
                    return Err(RunError::AuthFailed(e));
                }
                Err(e) => {
                    tracing::warn!("cannot read the account's credits: {e}");
                    None
                }
            }
        } else {
            None
        };
        let amounts = self.read_budget_sources(&rules, due, run_id, now).await?;
        Ok(Gathered {
            keys,
            credits,
            amounts,
            rules,
        })
    }

    /// Reads the budget sources of the due rules (each source once), falling
    /// back on the stored last good value by [`source::resolve`]'s policy.
    async fn read_budget_sources(
        &self,
        rules: &[Rule],
        due: Option<&BTreeSet<String>>,
        run_id: Option<i64>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Amounts> {
        let mut amounts = Amounts::new();
        for rule in rules
            .iter()
            .filter(|r| due.is_none_or(|d| d.contains(&r.name)))
        {
            let sources = [
                rule.when.budget.as_ref().map(|b| &b.usd),
                rule.when.credits_below.as_ref(),
            ];
            for amount in sources.into_iter().flatten() {
                let Amount::Source(src) = amount else {
                    continue;
                };
                let id = src.id();
                if amounts.contains_key(&id) {
                    continue;
                }
                let fresh = sources::read(src, &self.http).await;
                let stored = self.store.source_value(&id).await?;
                let max_age = std::time::Duration::from_secs(src.max_age_secs);
                let value = match source::resolve(fresh, stored, max_age, now) {
                    Resolution::Fresh(v) => {
                        if run_id.is_some() {
                            self.store.save_source_value(&id, v, now).await?;
                        }
                        Some(v)
                    }
                    Resolution::Stale { value, error } => {
                        self.source_failed(
                            run_id,
                            &rule.name,
                            &id,
                            &error.to_string(),
                            Some(value),
                            now,
                        )
                        .await?;
                        Some(value)
                    }
                    Resolution::Unavailable { error } => {
                        self.source_failed(run_id, &rule.name, &id, &error.to_string(), None, now)
                            .await?;
                        None
                    }
                };
                amounts.insert(id, value);
            }
        }
        Ok(amounts)
    }

    async fn source_failed(
        &self,
        run_id: Option<i64>,
        rule: &str,
        source_id: &str,
        error: &str,
        used: Option<f64>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let Some(run_id) = run_id else {
            tracing::warn!(rule, source = source_id, "budget source failed: {error}");
            return Ok(());
        };
        // Recorded (and so notified) once per outage; every run notes it in its skips.
        if self.store.save_source_error(source_id, error, now).await? {
            tracing::warn!(rule, source = source_id, "budget source failed: {error}");
            let detail = serde_json::json!({
                "source": source_id, "error": error, "stored_value_used": used, "new_outage": true,
            });
            self.store
                .record_event(Some(run_id), now, "source_error", Some(rule), None, &detail)
                .await?;
        } else {
            tracing::debug!(
                rule,
                source = source_id,
                "budget source still failing: {error}"
            );
        }
        Ok(())
    }
}
