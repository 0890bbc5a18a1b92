//! Forecasts (SPEC §11): how fast a key or group is spending, when it will
//! cross its budget, and what it will have spent when the window ends.
//! Pure: the readings come in, the figures come out.
//!
//! The burn rate is the least-squares slope of lifetime usage over the
//! readings inside the lookback (the usage snapshots and this run's
//! reading), in USD per hour. Lifetime usage never resets, so a window
//! rolling over inside the lookback does not disturb it. The rate is
//! unknown — never zero — when the readings are too few or cover too little
//! of the lookback to say.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

/// One reading of a key's lifetime usage (plus BYOK usage where the
/// forecast counts it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// When it was read.
    pub at: DateTime<Utc>,
    /// Lifetime usage then, in USD.
    pub usd: f64,
}

/// Fewer readings than this inside the lookback: the rate is unknown.
pub const MIN_READINGS: usize = 3;

/// Why a burn rate is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownRate {
    /// Fewer than [`MIN_READINGS`] readings inside the lookback.
    TooFewReadings {
        /// How many there are.
        readings: usize,
    },
    /// The readings inside the lookback span less than half of it.
    TooShort {
        /// The span they cover.
        covered: Duration,
    },
}

impl std::fmt::Display for UnknownRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnknownRate::TooFewReadings { readings } => write!(
                f,
                "burn rate unknown: {readings} usage readings in the lookback, {MIN_READINGS} needed"
            ),
            UnknownRate::TooShort { covered } => write!(
                f,
                "burn rate unknown: the usage readings cover {} of the lookback, half of it needed",
                humantime::format_duration(covered.to_std().unwrap_or_default())
            ),
        }
    }
}

/// The burn rate in USD per hour over the `lookback` before `now`: the
/// least-squares slope of the readings inside it (readings after `now` are
/// ignored, so `plan --at` and backtests see only the past).
pub fn burn_rate(
    readings: &[Reading],
    now: DateTime<Utc>,
    lookback: Duration,
) -> Result<f64, UnknownRate> {
    let from = now - lookback;
    let inside: Vec<Reading> = readings
        .iter()
        .copied()
        .filter(|r| r.at >= from && r.at <= now)
        .collect();
    if inside.len() < MIN_READINGS {
        return Err(UnknownRate::TooFewReadings {
            readings: inside.len(),
        });
    }
    let first = inside.iter().map(|r| r.at).min().unwrap_or(now);
    let last = inside.iter().map(|r| r.at).max().unwrap_or(now);
    let covered = last - first;
    if covered * 2 < lookback {
        return Err(UnknownRate::TooShort { covered });
    }
    // Each reading's time in hours from `now`, worked out once from its
    // timestamp: date arithmetic costs more than the sums (a week's
    // lookback holds 672 snapshots a key at the default interval).
    let now_ms = now.timestamp_millis();
    let points: Vec<Point> = inside
        .iter()
        .map(|r| Point {
            hours: (r.at.timestamp_millis() - now_ms) as f64 / 3_600_000.0,
            usd: r.usd,
        })
        .collect();
    let n = points.len() as f64;
    let mean_t = points.iter().map(|p| p.hours).sum::<f64>() / n;
    let mean_u = points.iter().map(|p| p.usd).sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for p in &points {
        let dt = p.hours - mean_t;
        sxy += dt * (p.usd - mean_u);
        sxx += dt * dt;
    }
    // Lifetime usage only grows: a negative slope is noise (or a reset of
    // the account's counters), not money coming back.
    Ok((sxy / sxx).max(0.0))
}

/// A reading as the least squares see it: hours from `now`, and USD.
struct Point {
    hours: f64,
    usd: f64,
}

/// Where a budget is heading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// No crossing before the window ends.
    Ok,
    /// It will cross before the window ends.
    WillCross,
    /// Spend is already at or over the budget.
    Crossed,
    /// The rate is unknown.
    Unknown,
}

/// The figures of one forecast (a key, or a group's sum).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Projection {
    /// Spend in the window now.
    pub spend_usd: f64,
    /// USD per hour; `None` when unknown.
    pub rate_usd_per_hour: Option<f64>,
    /// Spend at the window's end at this rate; `None` when the rate is
    /// unknown or the window (`total`) has no end.
    pub projected_usd: Option<f64>,
    /// When spend reaches the budget at this rate (`now` when it already
    /// has); `None` when it never does or the rate is unknown.
    pub crossing_at: Option<DateTime<Utc>>,
    /// Where it is heading.
    pub status: Status,
}

/// Projects spend `spend_usd` at `rate` (USD per hour, `None` when unknown)
/// against `threshold_usd` (the budget times its `at`) from `now` to
/// `window_end` (`None`: the window never ends).
pub fn project(
    spend_usd: f64,
    rate: Option<f64>,
    threshold_usd: f64,
    now: DateTime<Utc>,
    window_end: Option<DateTime<Utc>>,
) -> Projection {
    let Some(rate) = rate else {
        return Projection {
            spend_usd,
            rate_usd_per_hour: None,
            projected_usd: None,
            crossing_at: None,
            status: if spend_usd >= threshold_usd {
                Status::Crossed
            } else {
                Status::Unknown
            },
        };
    };
    let projected_usd = window_end.map(|end| spend_usd + rate * hours_between(now, end));
    let crossing_at = if spend_usd >= threshold_usd {
        Some(now)
    } else if rate > 0.0 {
        let hours = (threshold_usd - spend_usd) / rate;
        Duration::try_milliseconds((hours * 3_600_000.0).round() as i64)
            .and_then(|d| now.checked_add_signed(d))
    } else {
        None
    };
    let status = match crossing_at {
        _ if spend_usd >= threshold_usd => Status::Crossed,
        Some(at) if window_end.is_none_or(|end| at < end) => Status::WillCross,
        _ => Status::Ok,
    };
    Projection {
        spend_usd,
        rate_usd_per_hour: Some(rate),
        projected_usd,
        crossing_at,
        status,
    }
}

impl Projection {
    /// Whether a `forecast` condition holds: the crossing comes before the
    /// window's end and, with `within`, no later than `now + within`.
    pub fn holds(&self, now: DateTime<Utc>, within: Option<Duration>) -> bool {
        matches!(self.status, Status::WillCross | Status::Crossed)
            && self
                .crossing_at
                .is_some_and(|at| within.is_none_or(|w| at <= now + w))
    }
}

/// Hours from `a` to `b` (negative when `b` is earlier).
fn hours_between(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_milliseconds() as f64 / 3_600_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// Readings every `every` minutes from `from` to `to`, spending `rate` USD/h from `start_usd`.
    fn steady(from: &str, to: &str, every: i64, start_usd: f64, rate: f64) -> Vec<Reading> {
        let (from, to) = (t(from), t(to));
        let mut out = Vec::new();
        let mut at = from;
        while at <= to {
            out.push(Reading {
                at,
                usd: start_usd + rate * hours_between(from, at),
            });
            at += Duration::minutes(every);
        }
        out
    }

    #[test]
    fn a_steady_spender_has_its_rate_whatever_the_window_did() {
        // Lifetime usage goes on across midnight, where the daily window rolled over.
        let readings = steady(
            "2026-12-16T20:00:00Z",
            "2026-12-17T02:00:00Z",
            15,
            100.0,
            1.1,
        );
        let rate = burn_rate(&readings, t("2026-12-17T02:00:00Z"), Duration::hours(6)).unwrap();
        assert!((rate - 1.1).abs() < 1e-9, "{rate}");
    }

    #[test]
    fn too_little_history_is_unknown_never_zero() {
        let now = t("2026-12-17T02:00:00Z");
        let two = steady("2026-12-17T01:00:00Z", "2026-12-17T01:15:00Z", 15, 0.0, 1.0);
        assert_eq!(
            burn_rate(&two, now, Duration::hours(6)),
            Err(UnknownRate::TooFewReadings { readings: 2 })
        );
        let short = steady("2026-12-17T00:00:00Z", "2026-12-17T02:00:00Z", 15, 0.0, 1.0);
        assert_eq!(
            burn_rate(&short, now, Duration::hours(6)),
            Err(UnknownRate::TooShort {
                covered: Duration::hours(2)
            })
        );
        assert_eq!(
            UnknownRate::TooShort {
                covered: Duration::hours(2)
            }
            .to_string(),
            "burn rate unknown: the usage readings cover 2h of the lookback, half of it needed"
        );
    }

    #[test]
    fn a_key_that_stopped_spending_is_seen_to_stop_and_readings_after_now_are_ignored() {
        let now = t("2026-12-17T12:00:00Z");
        let stopped = steady(
            "2026-12-17T06:00:00Z",
            "2026-12-17T12:00:00Z",
            15,
            40.0,
            0.0,
        );
        assert_eq!(burn_rate(&stopped, now, Duration::hours(6)), Ok(0.0));
        let mut later = stopped.clone();
        later.push(Reading {
            at: t("2026-12-17T13:00:00Z"),
            usd: 1_000.0,
        });
        assert_eq!(burn_rate(&later, now, Duration::hours(6)), Ok(0.0));
    }

    #[test]
    fn the_spec_example_projects_and_crosses_where_it_says() {
        // group monthly spend 31.30 USD at 1.10 USD/h reaches 50.00 USD in 17 h.
        let now = t("2026-12-16T16:00:00Z");
        let end = t("2027-01-01T00:00:00Z");
        let p = project(31.3, Some(1.1), 50.0, now, Some(end));
        assert_eq!(p.status, Status::WillCross);
        assert_eq!(p.crossing_at, Some(t("2026-12-17T09:00:00Z")));
        assert!((p.projected_usd.unwrap() - 436.1).abs() < 1e-9);
        assert!(p.holds(now, None));
        assert!(p.holds(now, Some(Duration::hours(24))));
        assert!(!p.holds(now, Some(Duration::hours(12))));
    }

    #[test]
    fn no_crossing_before_the_end_is_ok_crossed_is_now_and_unknown_stays_unknown() {
        let now = t("2026-12-31T20:00:00Z");
        let end = t("2027-01-01T00:00:00Z");
        let ok = project(10.0, Some(1.0), 50.0, now, Some(end));
        assert_eq!(ok.status, Status::Ok);
        assert!(!ok.holds(now, None));
        let crossed = project(50.0, Some(0.0), 50.0, now, Some(end));
        assert_eq!(
            (crossed.status, crossed.crossing_at),
            (Status::Crossed, Some(now))
        );
        assert!(crossed.holds(now, Some(Duration::hours(1))));
        let idle = project(10.0, Some(0.0), 50.0, now, Some(end));
        assert_eq!((idle.status, idle.crossing_at), (Status::Ok, None));
        let unknown = project(10.0, None, 50.0, now, Some(end));
        assert_eq!(unknown.status, Status::Unknown);
        assert_eq!((unknown.projected_usd, unknown.crossing_at), (None, None));
        assert!(!unknown.holds(now, None));
    }

    #[test]
    fn a_total_budget_has_no_end_and_needs_within() {
        let now = t("2026-12-16T16:00:00Z");
        let p = project(90.0, Some(1.0), 100.0, now, None);
        assert_eq!(p.projected_usd, None);
        assert_eq!(p.status, Status::WillCross);
        assert!(p.holds(now, Some(Duration::hours(10))));
        assert!(!p.holds(now, Some(Duration::hours(9))));
    }
}
