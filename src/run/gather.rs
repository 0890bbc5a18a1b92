//! Gathering a run's inputs: the enabled rules, the listed keys, the
//! account's credits when a rule needs them, the due rules' budget
//! sources, the usage series forecasts read, and the guardrails and their
//! assignments when a rule or a claim needs them (SPEC §3.2, §4.1, §11, §12).

use super::{RunError, Runner};
use crate::domain::{Credits, Field, Key, Workspace};
use crate::engine::evaluate::Amounts;
use crate::engine::inputs::{Guardrails, Series};
use crate::openrouter::{ApiError, Fallback};
use crate::rules::model::{DEFAULT_LOOKBACK_SECS, Rule, longest_lookback};
use crate::rules::selector::SelectorIndex;
use chrono::{DateTime, Duration, Utc};
use std::collections::{BTreeSet, HashSet};

/// What a run plans from, besides what the store holds.
pub(super) struct Gathered {
    /// Every watched key, as listed now.
    pub(super) keys: Vec<Key>,
    /// The account's workspaces, as listed now (empty when they were not).
    pub(super) workspaces: Vec<Workspace>,
    /// Set when `GET /workspaces` was refused (the dashboard says so).
    pub(super) fallback: Option<Fallback>,
    /// The account's credits, when a rule needs them and they could be read.
    pub(super) credits: Option<Credits>,
    /// The budget amounts read from sources.
    pub(super) amounts: Amounts,
    /// The enabled rules.
    pub(super) rules: Vec<Rule>,
    /// The usage snapshots inside the longest lookback of the budget and
    /// forecast rules ([`series_lookback`]).
    pub(super) series: Series,
    /// The account's guardrails, when read (the keys then carry theirs).
    pub(super) guardrails: Guardrails,
    /// The keys (hashes) a rule that forecasts selects: snapshotted even
    /// when their usage did not move.
    pub(super) forecast_keys: HashSet<String>,
}

/// How far back the usage series of the figures reaches: the longest
/// lookback of a rule that forecasts, and at least a `budget` rule's
/// default; `None` when no enabled rule has a budget or forecast condition.
pub(super) fn series_lookback(rules: &[Rule]) -> Option<Duration> {
    let default = Duration::seconds(DEFAULT_LOOKBACK_SECS as i64);
    rules
        .iter()
        .any(|r| r.enabled && (r.when.budget.is_some() || r.when.forecast.is_some()))
        .then(|| longest_lookback(rules).unwrap_or_default().max(default))
}

/// The hashes of the keys (of the account's `workspaces`) that the enabled
/// rules which forecast (a forecast condition, or early warnings) select.
fn forecast_keys(rules: &[Rule], keys: &[Key], workspaces: &[Workspace]) -> HashSet<String> {
    let selectors = rules
        .iter()
        .filter(|r| r.reads_series().is_some())
        .map(|r| &r.keys);
    SelectorIndex::new(selectors)
        .select(keys, workspaces)
        .into_iter()
        .flatten()
        .map(|i| keys[i].hash.clone())
        .collect()
}

impl Runner {
    /// The enabled rules, as stored.
    pub(super) async fn enabled_rules(&self) -> anyhow::Result<Vec<Rule>> {
        let rules = self.store.rules().await?;
        Ok(rules
            .into_iter()
            .map(|s| s.rule)
            .filter(|r| r.enabled)
            .collect())
    }

    /// Lists keys, reads credits when needed and the due rules' budget
    /// sources. `run_id`: the run recording what the sources gave (`None`
    /// for `plan`, which records nothing).
    pub(super) async fn gather(
        &self,
        due: Option<&BTreeSet<String>>,
        run_id: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<Gathered, RunError> {
        let rules = self.enabled_rules().await?;
        // The usage series is read while the keys are being listed.
        let series = async {
            match series_lookback(&rules) {
                Some(lookback) => self.store.usage_series(now - lookback, now).await,
                None => Ok(Series::new()),
            }
        };
        let (listing, series) = tokio::join!(self.client.list(), series);
        let mut listing = match listing {
            Ok(listing) => listing,
            Err(e) if matches!(e, ApiError::AuthFailed { .. }) => {
                return Err(RunError::AuthFailed(e));
            }
            Err(e) => return Err(RunError::Api(e)),
        };
        self.add_claimed_unlisted(&mut listing).await?;
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
        let guardrails = self.read_guardrails(&rules, &mut listing.keys).await?;
        let amounts = self.read_budget_sources(&rules, due, run_id, now).await?;
        let series = series?;
        Ok(Gathered {
            forecast_keys: forecast_keys(&rules, &listing.keys, &listing.workspaces),
            keys: listing.keys,
            workspaces: listing.workspaces,
            fallback: listing.fallback,
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
        if !rules.iter().any(|r| r.set.guardrail.is_some())
            && !self.store.has_claims_on(Field::Guardrail).await?
        {
            return Ok(Guardrails::NotRead);
        }
        // The guardrails of every workspace a watched key belongs to.
        let workspaces: BTreeSet<String> =
            keys.iter().filter_map(|k| k.workspace_id.clone()).collect();
        let workspaces: Vec<&str> = workspaces.iter().map(String::as_str).collect();
        let read = async {
            let listed = self.client.list_guardrails(&workspaces).await?;
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
