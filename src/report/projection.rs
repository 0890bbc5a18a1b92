//! Where each budget rule's spend is heading (SPEC §11), for a report that
//! reaches the present: the burn rate of the spend readings of the current
//! window inside the rule's lookback (a `budget` rule's is 6 hours), the
//! spend projected from the last reading to the window's end, and when it
//! reaches `at` × the budget. A report of the past has none: its windows are
//! over, or were when it ends.

use crate::domain::Window;
use crate::domain::timestamp;
use crate::engine::forecast::{Reading, Status, burn_rate, project};
use crate::engine::outlook::tidy;
use crate::rules::model::{DEFAULT_LOOKBACK_SECS, Rule};
use crate::store::report::BudgetPoint;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

/// Where the spend of one budget rule and window is heading.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Projection {
    /// The rule.
    pub rule: String,
    /// `daily`, `weekly`, `monthly` or `total`.
    pub window: String,
    /// The last reading, which the projection starts from.
    #[serde(serialize_with = "timestamp::serialize")]
    pub at: DateTime<Utc>,
    /// Spend in the window at the last reading, USD (for scope `each`, the
    /// highest of the keys').
    pub spend_usd: f64,
    /// The spend that counts as reaching the budget: `at` × the budget.
    pub threshold_usd: f64,
    /// The burn rate, USD per hour.
    pub rate_usd_per_hour: f64,
    /// When the window ends; `null` for `total`.
    #[serde(serialize_with = "timestamp::serialize_opt")]
    pub window_end: Option<DateTime<Utc>>,
    /// Spend at the window's end at this rate; `null` for `total`.
    pub projected_usd: Option<f64>,
    /// When spend reaches the threshold before the window ends; `null` when
    /// it does not.
    #[serde(serialize_with = "timestamp::serialize_opt")]
    pub crossing_at: Option<DateTime<Utc>>,
}

/// The projections at `now` of the budget `points` of each rule (by rule,
/// window and time, as [`crate::store::Store::report_budget_points`] gives
/// them by rule); a series whose rate is unknown has none.
pub fn projections(points: &[BudgetPoint], rules: &[Rule], now: DateTime<Utc>) -> Vec<Projection> {
    points
        .chunk_by(|a, b| (&a.rule, &a.window) == (&b.rule, &b.window))
        .filter_map(|series| projection(series, rules, now))
        .collect()
}

/// The projection of one rule's series, when its rate is known.
fn projection(series: &[BudgetPoint], rules: &[Rule], now: DateTime<Utc>) -> Option<Projection> {
    let first = series.first()?;
    let window = Window::parse(&first.window)?;
    let (lookback, at_fraction) = rules
        .iter()
        .find(|r| r.name == first.rule)
        .and_then(Rule::forecast_terms)
        .map_or(
            (Duration::seconds(DEFAULT_LOOKBACK_SECS as i64), 1.0),
            |(b, l)| (l, b.at),
        );
    let bounds = window.bounds(now);
    let current: Vec<&BudgetPoint> = series
        .iter()
        .filter(|p| p.at <= now && bounds.is_none_or(|b| p.at >= b.start))
        .collect();
    let last = *current.last()?;
    let readings: Vec<Reading> = current
        .iter()
        .map(|p| Reading {
            at: p.at,
            usd: p.spend_usd,
        })
        .collect();
    let rate = burn_rate(&readings, now, lookback).ok()?;
    let threshold_usd = at_fraction * last.budget_usd;
    let window_end = bounds.map(|b| b.end);
    let p = project(
        last.spend_usd,
        Some(rate),
        threshold_usd,
        last.at,
        window_end,
    );
    Some(Projection {
        rule: last.rule.clone(),
        window: last.window.clone(),
        at: last.at,
        spend_usd: tidy(last.spend_usd),
        threshold_usd,
        rate_usd_per_hour: tidy(rate),
        window_end,
        projected_usd: p.projected_usd.map(tidy),
        crossing_at: p
            .crossing_at
            .filter(|_| matches!(p.status, Status::WillCross | Status::Crossed)),
    })
}
