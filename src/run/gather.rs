//! Gathering a run's inputs: the enabled rules, the listed keys, the
//! account's credits when a rule needs them, the due rules' budget
//! sources, the usage series forecasts read, and the guardrails and their
//! assignments when a rule or a claim needs them (SPEC §3.2, §4.1, §11, §12).

use super::{RunError, Runner};
use crate::domain::{Credits, Field, Key};
use crate::engine::evaluate::Amounts;
use crate::engine::inputs::{Guardrails, Series};
use crate::openrouter::ApiError;
use crate::rules::model::{Rule, longest_lookback};
use crate::rules::selector::SelectorIndex;
use chrono::{DateTime, Utc};
use std::collections::{BTreeSet, HashSet};

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
    /// The usage snapshots inside the longest forecast lookback.
    pub(super) series: Series,
    /// The account's guardrails, when read (the keys then carry theirs).
    pub(super) guardrails: Guardrails,
    /// The keys (hashes) a forecast rule selects: snapshotted even when
    /// their usage did not move.
    pub(super) forecast_keys: HashSet<String>,
}

/// The hashes of the keys that the enabled forecast rules select.
fn forecast_keys(rules: &[Rule], keys: &[Key]) -> HashSet<String> {
    let selectors = rules
        .iter()
        .filter(|r| r.when.forecast.is_some())
        .map(|r| &r.keys);
    SelectorIndex::new(selectors)
        .select(keys)
        .into_iter()
        .flatten()
        .map(|i| keys[i].hash.clone())
        .collect()
}

impl Runner {
    /// Lists keys, reads credits when needed and the due rules' budget
    /// sources. `run_id`: the run recording what the sources gave (`None`
    /// for `plan`, which records nothing).
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
        let mut keys = match self.client.list_keys().await {
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
        let guardrails = self.read_guardrails(&rules, &mut keys).await?;
        let amounts = self.read_budget_sources(&rules, due, run_id, now).await?;
        let series = match longest_lookback(&rules) {
            Some(lookback) => self.store.usage_series(now - lookback, now).await?,
            None => Series::new(),
        };
        Ok(Gathered {
            forecast_keys: forecast_keys(&rules, &keys),
            keys,
            credits,
            amounts,
            rules,
            series,
            guardrails,
        })
    }

    /// The account's guardrails, each key given the one it holds, when an
    /// enabled rule sets `guardrail` or keywarden holds a claim on one (to
    /// release it); both listings are read whole or not at all.
    async fn read_guardrails(
        &self,
        rules: &[Rule],
        keys: &mut [Key],
    ) -> Result<Guardrails, RunError> {
        let claimed = || async {
            anyhow::Ok(
                self.store
                    .claims()
                    .await?
                    .iter()
                    .any(|c| c.field == Field::Guardrail),
            )
        };
        if !rules.iter().any(|r| r.set.guardrail.is_some()) && !claimed().await? {
            return Ok(Guardrails::NotRead);
        }
        let read = async {
            let listed = self.client.list_guardrails().await?;
            let assignments = self.client.list_assignments().await?;
            Ok::<_, ApiError>((listed, assignments))
        };
        match read.await {
            Ok((listed, assignments)) => {
                for key in keys.iter_mut() {
                    key.guardrail = assignments.get(&key.hash).copied();
                }
                Ok(Guardrails::Read(listed))
            }
            Err(e) => {
                tracing::warn!("cannot read the guardrails and their assignments: {e}");
                Ok(Guardrails::Unreadable(e.to_string()))
            }
        }
    }
}
