//! The inputs of `keywarden forecast` (SPEC §11): gathered like a preview,
//! recording nothing, with the series of the longest lookback any rule's
//! forecast reads (a `budget` rule's is the default 6 hours). At a past
//! instant (`--at`) the keys' usage is their last snapshot before it; at a
//! future one, the figures are projected forward from the latest readings.
//! A run computes the same rows for the rules it evaluates
//! ([`RunOutlook`]), from what it gathered, for `/metrics`.

use super::gather::{Gathered, series_lookback};
use super::{RunError, Runner};
use crate::domain::{Credits, Guardrail, Key, Workspace};
use crate::engine::evaluate::{Amounts, Observed};
use crate::engine::inputs::Series;
use crate::engine::outlook::{ForecastRow, Outlook, outlook, outlook_ahead};
use crate::openrouter::KeyListing;
use crate::rules::model::Rule;
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

/// Where the spend of the rules a run evaluated is heading: the rows
/// `keywarden forecast` would print for them at the run's instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunOutlook {
    /// The rules the run evaluated (those without a budget or forecast
    /// condition have no rows).
    pub rules: BTreeSet<String>,
    /// Their rows.
    pub rows: Vec<ForecastRow>,
}

impl Runner {
    /// Where the spend of the `only` rules (`None`: every enabled rule)
    /// with a budget or forecast condition is heading at `at` (default now).
    pub async fn outlook(
        &self,
        only: Option<&BTreeSet<String>>,
        at: Option<DateTime<Utc>>,
    ) -> Result<Outlook, RunError> {
        let latest = self.clock.now();
        let at = at.unwrap_or(latest);
        // The figures are drawn at `now`: the instant asked for when it is
        // past, else the latest readings, projected forward to `at`.
        let now = at.min(latest);
        let mut g = self.gather(only, None, now).await?;
        if now < latest {
            self.store.rewind_usage(&mut g.keys, now).await?;
        }
        g.rules.retain(|r| only.is_none_or(|o| o.contains(&r.name)));
        Ok(self
            .figures(&g.rules, &g.keys, &g.workspaces, &g.amounts, now, at)
            .await?)
    }

    /// Where the spend of the enabled `rules` (read by the caller) is
    /// heading now, for `keys` (of the account's `workspaces`) listed
    /// already (`keys list`); records nothing.
    pub async fn outlook_of(
        &self,
        rules: &[Rule],
        keys: &[Key],
        workspaces: &[Workspace],
    ) -> anyhow::Result<Outlook> {
        let now = self.clock.now();
        let amounts = self.read_budget_sources(rules, None, None, now).await?;
        self.figures(rules, keys, workspaces, &amounts, now, now)
            .await
    }

    /// What the dashboard shows of the account now (SPEC §13): the keys as
    /// listed (with their workspaces and guardrails) and where each budget
    /// is heading, from one listing; records nothing.
    pub async fn observe(&self) -> Result<Observation, RunError> {
        let now = self.clock.now();
        let g = self.gather(None, None, now).await?;
        let outlook = self
            .figures(&g.rules, &g.keys, &g.workspaces, &g.amounts, now, now)
            .await?;
        let seen = Seen::of(g, now);
        Ok(Observation {
            listing: seen.listing,
            guardrails: seen.guardrails,
            outlook,
        })
    }

    /// The figures of `rules` over `keys` (of `workspaces`) drawn from the
    /// readings at `now`, projected forward to `at`, with the series they
    /// read.
    async fn figures(
        &self,
        rules: &[Rule],
        keys: &[Key],
        workspaces: &[Workspace],
        amounts: &Amounts,
        now: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> anyhow::Result<Outlook> {
        let lookback = series_lookback(rules).unwrap_or_default();
        let series = self.store.usage_series(now - lookback, now).await?;
        Ok(outlook_ahead(
            rules,
            keys,
            workspaces,
            &Observed {
                amounts,
                credits: None,
                series: &series,
                now,
            },
            at,
        ))
    }
}

/// The account as the dashboard shows it: [`Runner::observe`].
#[derive(Debug, Clone)]
pub struct Observation {
    /// Every key as listed, with the account's workspaces.
    pub listing: KeyListing,
    /// The account's guardrails, when they were read (a rule sets
    /// `guardrail` or keywarden holds one); the keys then carry theirs.
    pub guardrails: Vec<Guardrail>,
    /// Where each budget's spend is heading.
    pub outlook: Outlook,
}

/// What a run saw of the account, handed over when it ends so that the
/// dashboard of the same process shows it without listing the keys again
/// (SPEC §13): the keys as listed (before the run's PATCHes), the
/// account's guardrails and credits when read, the enabled rules and what
/// the figures read.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// Every key as listed, with the account's workspaces.
    pub listing: KeyListing,
    /// The account's guardrails, when they were read.
    pub guardrails: Vec<Guardrail>,
    /// The account's credits, when a rule needed them and they were read.
    pub credits: Option<Credits>,
    /// The enabled rules.
    pub rules: Vec<Rule>,
    /// The budget amounts the run read (its due rules' sources).
    pub amounts: Amounts,
    /// The usage series the figures read.
    pub series: Series,
    /// The run's instant.
    pub at: DateTime<Utc>,
}

impl Seen {
    /// What the run that `gathered` at `at` saw, moved out of it.
    pub(super) fn of(g: Gathered, at: DateTime<Utc>) -> Seen {
        Seen {
            guardrails: g.guardrails.listed().map(<[_]>::to_vec).unwrap_or_default(),
            listing: KeyListing {
                keys: g.keys,
                workspaces: g.workspaces,
                fallback: g.fallback,
            },
            credits: g.credits,
            rules: g.rules,
            amounts: g.amounts,
            series: g.series,
            at,
        }
    }
}

/// The figures of the `due` rules (`None`: all) from what a run gathered.
pub(super) fn run_outlook(
    g: &Gathered,
    due: Option<&BTreeSet<String>>,
    now: DateTime<Utc>,
) -> RunOutlook {
    let rules: Vec<Rule> = g
        .rules
        .iter()
        .filter(|r| due.is_none_or(|d| d.contains(&r.name)))
        .cloned()
        .collect();
    let observed = Observed {
        amounts: &g.amounts,
        credits: g.credits.as_ref(),
        series: &g.series,
        now,
    };
    RunOutlook {
        rows: outlook(&rules, &g.keys, &g.workspaces, &observed).forecasts,
        rules: rules.into_iter().map(|r| r.name).collect(),
    }
}
