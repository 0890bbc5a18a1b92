//! The figures of `keywarden forecast` (SPEC §11): for every enabled rule
//! with a `budget` or `forecast` condition, each of its groups (scope
//! `group`) or keys (scope `each`), where spend is heading. Pure, like the
//! rest of the core: the shell gathers the keys, amounts and series.

use super::evaluate::forecast::key_rate;
use super::evaluate::{EPSILON, Observed, amount_value, spend};
use super::forecast::{Status, project};
use crate::domain::timestamp;
use crate::domain::{Key, Window, Workspace};
use crate::rules::model::{Budget, Rule, Scope};
use crate::rules::selector::SelectorIndex;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use std::cmp::Ordering;

/// What `keywarden forecast --format json` prints: the instant, and the rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outlook {
    /// The instant the figures are for.
    #[serde(serialize_with = "timestamp::serialize")]
    pub at: DateTime<Utc>,
    /// One row per rule and group (scope `group`) or key (scope `each`).
    pub forecasts: Vec<ForecastRow>,
}

/// One row of `keywarden forecast --format json`, field for field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForecastRow {
    /// The rule.
    pub rule: String,
    /// Per key or per group.
    pub scope: Scope,
    /// The key (scope `each`); `null` for a group.
    pub key_hash: Option<String>,
    /// The key's name (scope `each`); `null` for a group.
    pub key_name: Option<String>,
    /// The spend window.
    pub window: Window,
    /// When the window ends; `null` for `total`.
    #[serde(serialize_with = "timestamp::serialize_opt")]
    pub window_end: Option<DateTime<Utc>>,
    /// The budget; `null` when its source is unavailable.
    pub budget_usd: Option<f64>,
    /// The share of the budget that counts (`at`).
    pub at_fraction: f64,
    /// Spend in the window now; `null` when a counter is unknown.
    pub spend_usd: Option<f64>,
    /// The burn rate; `null` when unknown.
    pub rate_usd_per_hour: Option<f64>,
    /// How far back the rate looks, in hours.
    pub lookback_hours: f64,
    /// Spend at the window's end at this rate; `null` when unknown or `total`.
    pub projected_usd: Option<f64>,
    /// When spend reaches `at_fraction × budget_usd`; `null` when never or unknown.
    #[serde(serialize_with = "timestamp::serialize_opt")]
    pub crossing_at: Option<DateTime<Utc>>,
    /// Where it is heading.
    pub status: Status,
}

/// Rounds float noise off a figure (a least-squares 1.1 is 1.0999999…).
pub fn tidy(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// The forecasts of the enabled `rules` over `keys` (of the account's
/// `workspaces`, as listed) at `observed.now`, ordered by crossing time
/// (soonest first, none last), then rule, then key name.
pub fn outlook(
    rules: &[Rule],
    keys: &[Key],
    workspaces: &[Workspace],
    observed: &Observed<'_>,
) -> Outlook {
    outlook_ahead(rules, keys, workspaces, observed, observed.now)
}

/// The forecasts at `at`, later than `observed.now` (the latest readings):
/// each window's spend goes on at the rate drawn now — starting again from
/// 0 where its window rolls over before `at` — and is projected from
/// there. At `observed.now` itself, the same as [`outlook`].
pub fn outlook_ahead(
    rules: &[Rule],
    keys: &[Key],
    workspaces: &[Workspace],
    observed: &Observed<'_>,
    at: DateTime<Utc>,
) -> Outlook {
    let rules: Vec<(&Rule, &Budget, Duration)> = rules
        .iter()
        .filter(|r| r.enabled)
        .filter_map(|r| r.forecast_terms().map(|(b, l)| (r, b, l)))
        .collect();
    let selected =
        SelectorIndex::new(rules.iter().map(|(r, _, _)| &r.keys)).select(keys, workspaces);
    let mut rows = Vec::new();
    for ((rule, budget, lookback), selected) in rules.iter().zip(selected) {
        let groups: Vec<Vec<usize>> = match budget.scope {
            Scope::Group => vec![selected],
            Scope::Each => selected.into_iter().map(|i| vec![i]).collect(),
        };
        for members in groups {
            rows.push(row(rule, budget, *lookback, keys, &members, observed, at));
        }
    }
    rows.sort_by(|a, b| {
        let crossing = match (a.crossing_at, b.crossing_at) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        crossing
            .then_with(|| a.rule.cmp(&b.rule))
            .then_with(|| a.key_name.cmp(&b.key_name))
    });
    Outlook {
        at,
        forecasts: rows,
    }
}

/// Spend in the window holding `at`, from `spend` at `now` going on at
/// `rate`: it starts again from 0 where the window rolls over before `at`.
fn spend_ahead(
    spend: f64,
    rate: f64,
    window: Window,
    now: DateTime<Utc>,
    at: DateTime<Utc>,
) -> f64 {
    let hours = |from: DateTime<Utc>| (at - from).num_milliseconds() as f64 / 3_600_000.0;
    match window.bounds(at) {
        Some(b) if b.start > now => rate * hours(b.start),
        _ => spend + rate * hours(now),
    }
}

/// The row of one key (scope `each`) or one group (`members`) at `at`.
fn row(
    rule: &Rule,
    budget: &Budget,
    lookback: Duration,
    keys: &[Key],
    members: &[usize],
    observed: &Observed<'_>,
    at: DateTime<Utc>,
) -> ForecastRow {
    let now = observed.now;
    let window_end = budget.window.bounds(at).map(|b| b.end);
    let budget_usd = amount_value(&budget.usd, observed.amounts);
    let spend_now: Option<f64> = members
        .iter()
        .map(|&i| spend(&keys[i], budget.window, budget.include_byok))
        .sum();
    let rate: Option<f64> = members
        .iter()
        .map(|&i| {
            key_rate(
                &keys[i],
                observed.series,
                budget.include_byok,
                lookback,
                now,
            )
            .ok()
        })
        .sum();
    let spend_usd = match (spend_now, rate) {
        _ if at <= now => spend_now,
        (Some(s), Some(r)) => Some(spend_ahead(s, r, budget.window, now, at)),
        _ => None,
    };
    let (key_hash, key_name) = match (budget.scope, members) {
        (Scope::Each, [i]) => (Some(keys[*i].hash.clone()), Some(keys[*i].name.clone())),
        _ => (None, None),
    };
    let mut out = ForecastRow {
        rule: rule.name.clone(),
        scope: budget.scope,
        key_hash,
        key_name,
        window: budget.window,
        window_end,
        budget_usd,
        at_fraction: budget.at,
        spend_usd: spend_usd.map(tidy),
        rate_usd_per_hour: None,
        lookback_hours: lookback.num_seconds() as f64 / 3600.0,
        projected_usd: None,
        crossing_at: None,
        status: Status::Unknown,
    };
    if let (Some(usd), Some(spent)) = (budget_usd, spend_usd) {
        let p = project(spent, rate, budget.at * usd - EPSILON, at, window_end);
        out.rate_usd_per_hour = p.rate_usd_per_hour.map(tidy);
        out.projected_usd = p.projected_usd.map(tidy);
        out.crossing_at = p.crossing_at;
        out.status = p.status;
    }
    out
}

#[cfg(test)]
impl ForecastRow {
    /// A row for the tests of the surfaces that show rows: `rule` against
    /// a monthly budget of 50 USD at 2026-12-16T16:00Z, for the key `key`
    /// (scope `each`) or a group, spending `rate` USD/h with `spend` spent.
    pub(crate) fn example(rule: &str, key: Option<&str>, rate: Option<f64>, spend: f64) -> Self {
        let now = "2026-12-16T16:00:00Z".parse().unwrap();
        let end = "2027-01-01T00:00:00Z".parse().unwrap();
        let p = project(spend, rate, 50.0, now, Some(end));
        ForecastRow {
            rule: rule.into(),
            scope: if key.is_some() {
                Scope::Each
            } else {
                Scope::Group
            },
            key_hash: key.map(|k| format!("hash-{k}")),
            key_name: key.map(String::from),
            window: Window::Monthly,
            window_end: Some(end),
            budget_usd: Some(50.0),
            at_fraction: 1.0,
            spend_usd: Some(spend),
            rate_usd_per_hour: p.rate_usd_per_hour,
            lookback_hours: 6.0,
            projected_usd: p.projected_usd,
            crossing_at: p.crossing_at,
            status: p.status,
        }
    }
}
