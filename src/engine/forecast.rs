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
//!
//! The projection spreads spend over the hours ahead at that rate: flat,
//! or (`profile = "weekly"`) shaped like the same hours of the week before
//! the lookback, scaled by how the lookback compares with its own hours
//! then — see [`WeeklyProfile`] and [`Pace`].

use chrono::{DateTime, Duration, DurationRound, Utc};
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

/// The hours of a week.
const WEEK_HOURS: usize = 168;

/// The span a weekly profile is drawn from.
fn week() -> Duration {
    Duration::days(7)
}

/// The hour of the week `t` is in: 0 is Monday 00:00–01:00 UTC (the
/// epoch was a Thursday, 72 hours into its week).
fn hour_of_week(t: DateTime<Utc>) -> usize {
    (t.timestamp().div_euclid(3600) + 72).rem_euclid(WEEK_HOURS as i64) as usize
}

/// How a key (or a group: the sum of its keys') spent over each hour of
/// the week before a lookback, in USD per hour, and what the lookback
/// spent against what those hours spent a week earlier.
#[derive(Debug, Clone, PartialEq)]
pub struct WeeklyProfile {
    usd_per_hour: [f64; WEEK_HOURS],
    /// What the readings inside the lookback spent.
    recent_usd: f64,
    /// What the profile spends between the same instants.
    expected_usd: f64,
}

impl WeeklyProfile {
    /// The profile of the week before the `lookback` before `now`, from
    /// `readings` in time order: each step between two readings counts in
    /// the hour it starts in, an hour with no step at the week's average.
    /// `None` when the readings cover less than that week (less an hour).
    pub fn of(readings: &[Reading], now: DateTime<Utc>, lookback: Duration) -> Option<Self> {
        let end = now - lookback;
        let start = end - week();
        let inside: Vec<&Reading> = readings
            .iter()
            .filter(|r| r.at >= start && r.at <= end)
            .collect();
        let covered = match (inside.first(), inside.last()) {
            (Some(first), Some(last)) => last.at - first.at,
            _ => Duration::zero(),
        };
        if covered < week() - Duration::hours(1) {
            return None;
        }
        let (mut usd, mut hours) = ([0.0; WEEK_HOURS], [0.0; WEEK_HOURS]);
        for step in inside.windows(2) {
            let hour = hour_of_week(step[0].at);
            usd[hour] += (step[1].usd - step[0].usd).max(0.0);
            hours[hour] += hours_between(step[0].at, step[1].at);
        }
        let seen: Vec<f64> = (0..WEEK_HOURS)
            .filter(|&h| hours[h] > 0.0)
            .map(|h| usd[h] / hours[h])
            .collect();
        let average = seen.iter().sum::<f64>() / seen.len().max(1) as f64;
        let mut usd_per_hour = [average; WEEK_HOURS];
        for (rate, (usd, hours)) in usd_per_hour.iter_mut().zip(usd.iter().zip(hours)) {
            if hours > 0.0 {
                *rate = usd / hours;
            }
        }
        let mut profile = WeeklyProfile {
            usd_per_hour,
            recent_usd: 0.0,
            expected_usd: 0.0,
        };
        let recent: Vec<&Reading> = readings
            .iter()
            .filter(|r| r.at >= end && r.at <= now)
            .collect();
        if let (Some(first), Some(last)) = (recent.first(), recent.last()) {
            profile.recent_usd = (last.usd - first.usd).max(0.0);
            profile.expected_usd = profile.usd_between(first.at, last.at);
        }
        Some(profile)
    }

    /// How much more (or less) the lookback spent than the same hours a
    /// week earlier: 1 where those hours spent nothing.
    fn scale(&self) -> f64 {
        if self.expected_usd > 1e-9 {
            self.recent_usd / self.expected_usd
        } else {
            1.0
        }
    }

    /// The profile of a group: the sum of its keys' profiles; `None` when
    /// one of them has none.
    pub fn sum(profiles: impl IntoIterator<Item = Option<WeeklyProfile>>) -> Option<Self> {
        profiles.into_iter().try_fold(
            WeeklyProfile {
                usd_per_hour: [0.0; WEEK_HOURS],
                recent_usd: 0.0,
                expected_usd: 0.0,
            },
            |mut total, p| {
                let p = p?;
                for (t, r) in total.usd_per_hour.iter_mut().zip(p.usd_per_hour) {
                    *t += r;
                }
                total.recent_usd += p.recent_usd;
                total.expected_usd += p.expected_usd;
                Some(total)
            },
        )
    }

    /// What the profile spends from `from` to `to`, hour by hour.
    fn usd_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
        hour_steps(from, to)
            .map(|(at, next)| self.usd_per_hour[hour_of_week(at)] * hours_between(at, next))
            .sum()
    }
}

/// The steps from `from` to `to` cut at each full hour.
fn hour_steps(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)> {
    let next = move |at: DateTime<Utc>| {
        let hour = at.duration_trunc(Duration::hours(1)).unwrap_or(at);
        (hour + Duration::hours(1)).min(to)
    };
    std::iter::successors(Some(from), move |&at| Some(next(at)))
        .take_while(move |&at| at < to)
        .map(move |at| (at, next(at)))
}

/// How far a shaped crossing is looked for when the window has no end
/// (with one, until a week after it ends).
fn longest_horizon() -> Duration {
    Duration::days(366)
}

/// How spend goes on after now: flat at the burn rate, or shaped by a
/// weekly profile.
#[derive(Debug, Clone, PartialEq)]
pub enum Pace {
    /// Every hour at the rate, USD per hour.
    Flat(f64),
    /// Each hour as its hour of the week in the profile, times `scale`.
    Weekly {
        /// The burn rate over the lookback (what is reported as the rate).
        rate: f64,
        /// The week the hours ahead are shaped like.
        profile: Box<WeeklyProfile>,
        /// What the lookback spent over what the profile spends in the
        /// same hours of its week (1 where those hours spent nothing).
        scale: f64,
    },
}

impl Pace {
    /// The pace of the burn rate `rate` shaped by `profile` when there is
    /// one, else flat.
    pub fn new(rate: f64, profile: Option<WeeklyProfile>) -> Pace {
        let Some(profile) = profile else {
            return Pace::Flat(rate);
        };
        let scale = profile.scale();
        Pace::Weekly {
            rate,
            profile: Box::new(profile),
            scale,
        }
    }

    /// The burn rate, USD per hour.
    pub fn rate(&self) -> f64 {
        match self {
            Pace::Flat(rate) | Pace::Weekly { rate, .. } => *rate,
        }
    }

    /// What is spent from `from` to `to` at this pace.
    pub fn usd_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
        match self {
            Pace::Flat(rate) => rate * hours_between(from, to),
            Pace::Weekly { profile, scale, .. } => scale * profile.usd_between(from, to),
        }
    }

    /// When `usd` more has been spent from `now`; `None` when never (for
    /// a shaped pace: not by `until`).
    fn reaches(&self, usd: f64, now: DateTime<Utc>, until: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let after_hours = |hours: f64| {
            Duration::try_milliseconds((hours * 3_600_000.0).round() as i64)
                .and_then(|d| now.checked_add_signed(d))
        };
        let Pace::Weekly { profile, scale, .. } = self else {
            let rate = self.rate();
            return (rate > 0.0).then(|| after_hours(usd / rate)).flatten();
        };
        let mut left = usd;
        for (at, next) in hour_steps(now, until) {
            let rate = scale * profile.usd_per_hour[hour_of_week(at)];
            let step = rate * hours_between(at, next);
            if step >= left && rate > 0.0 {
                return after_hours(hours_between(now, at) + left / rate);
            }
            left -= step;
        }
        None
    }
}

/// Projects spend `spend_usd` at `rate` (USD per hour, `None` when unknown)
/// against `threshold_usd` (the budget times its `at`) from `now` to
/// `window_end` (`None`: the window never ends), flat.
pub fn project(
    spend_usd: f64,
    rate: Option<f64>,
    threshold_usd: f64,
    now: DateTime<Utc>,
    window_end: Option<DateTime<Utc>>,
) -> Projection {
    project_at(
        spend_usd,
        rate.map(Pace::Flat).as_ref(),
        threshold_usd,
        now,
        window_end,
    )
}

/// Projects spend `spend_usd` going on at `pace` (`None` when the rate is
/// unknown) against `threshold_usd` from `now` to `window_end`.
pub fn project_at(
    spend_usd: f64,
    pace: Option<&Pace>,
    threshold_usd: f64,
    now: DateTime<Utc>,
    window_end: Option<DateTime<Utc>>,
) -> Projection {
    let Some(pace) = pace else {
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
    let projected_usd = window_end.map(|end| spend_usd + pace.usd_between(now, end));
    let crossing_at = if spend_usd >= threshold_usd {
        Some(now)
    } else {
        let until = window_end.map_or(now + longest_horizon(), |end| end + week());
        pace.reaches(threshold_usd - spend_usd, now, until)
    };
    let status = match crossing_at {
        _ if spend_usd >= threshold_usd => Status::Crossed,
        Some(at) if window_end.is_none_or(|end| at < end) => Status::WillCross,
        _ => Status::Ok,
    };
    Projection {
        spend_usd,
        rate_usd_per_hour: Some(pace.rate()),
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

    /// Working-day traffic: 2 USD/h from 09:00 to 17:00 UTC on weekdays,
    /// 0.1 USD/h otherwise, `times` as heavy.
    fn working_day(at: DateTime<Utc>, times: f64) -> f64 {
        use chrono::{Datelike, Timelike};
        let busy = at.weekday().num_days_from_monday() < 5 && (9..17).contains(&at.hour());
        times * if busy { 2.0 } else { 0.1 }
    }

    /// Readings every 15 minutes from `from` to `to` of working-day traffic.
    fn working_days(from: &str, to: &str, times: f64) -> Vec<Reading> {
        let (mut at, to) = (t(from), t(to));
        let mut usd = 0.0;
        let mut out = Vec::new();
        while at <= to {
            out.push(Reading { at, usd });
            usd += working_day(at, times) * 0.25;
            at += Duration::minutes(15);
        }
        out
    }

    /// What working-day traffic spends from `from` to `to`.
    fn spent(from: DateTime<Utc>, to: DateTime<Utc>, times: f64) -> f64 {
        let mut at = from;
        let mut usd = 0.0;
        while at < to {
            usd += working_day(at, times) * 0.25;
            at += Duration::minutes(15);
        }
        usd
    }

    #[test]
    fn a_weekly_profile_projects_working_day_traffic_where_flat_overshoots() {
        // Wednesday noon, after eight days of working-day traffic.
        let now = t("2026-12-16T12:00:00Z");
        let end = t("2026-12-21T00:00:00Z");
        let readings = working_days("2026-12-08T00:00:00Z", "2026-12-16T12:00:00Z", 1.0);
        let lookback = Duration::hours(6);
        let rate = burn_rate(&readings, now, lookback).unwrap();
        let profile = WeeklyProfile::of(&readings, now, lookback).unwrap();
        let truth = 40.0 + spent(now, end, 1.0);
        let weekly = project_at(
            40.0,
            Some(&Pace::new(rate, Some(profile))),
            1e6,
            now,
            Some(end),
        );
        let flat = project(40.0, Some(rate), 1e6, now, Some(end));
        assert_eq!(weekly.rate_usd_per_hour, Some(rate));
        assert!(
            (weekly.projected_usd.unwrap() - truth).abs() < 1e-6,
            "{weekly:?} vs {truth}"
        );
        assert!(
            flat.projected_usd.unwrap() > truth * 1.5,
            "{flat:?} vs {truth}"
        );
        // The crossing comes where the traffic really reaches the budget.
        let crossing = project_at(
            40.0,
            Some(&Pace::new(
                rate,
                WeeklyProfile::of(&readings, now, lookback),
            )),
            70.0,
            now,
            Some(end),
        );
        let expected = 40.0 + spent(now, crossing.crossing_at.unwrap(), 1.0);
        assert!((expected - 70.0).abs() < 0.5, "{crossing:?}");
        assert_eq!(crossing.status, Status::WillCross);
    }

    #[test]
    fn a_busier_week_scales_the_profile_and_a_group_sums_its_keys() {
        let now = t("2026-12-16T12:00:00Z");
        let lookback = Duration::hours(6);
        // The week before the lookback at the usual pace, the lookback twice as busy.
        let mut readings = working_days("2026-12-08T00:00:00Z", "2026-12-16T06:00:00Z", 1.0);
        let last = *readings.last().unwrap();
        readings.extend(
            working_days("2026-12-16T06:00:00Z", "2026-12-16T12:00:00Z", 2.0)
                .iter()
                .skip(1)
                .map(|r| Reading {
                    at: r.at,
                    usd: last.usd + r.usd,
                }),
        );
        let one = WeeklyProfile::of(&readings, now, lookback);
        let pace = Pace::new(1.0, one.clone());
        let end = t("2026-12-17T00:00:00Z");
        assert!((pace.usd_between(now, end) - spent(now, end, 2.0)).abs() < 1e-6);
        let group = Pace::new(2.0, WeeklyProfile::sum([one.clone(), one]));
        assert!((group.usd_between(now, end) - 2.0 * spent(now, end, 2.0)).abs() < 1e-6);
    }

    #[test]
    fn less_than_a_week_before_the_lookback_has_no_profile_and_stays_flat() {
        let now = t("2026-12-16T12:00:00Z");
        let readings = working_days("2026-12-10T00:00:00Z", "2026-12-16T12:00:00Z", 1.0);
        let profile = WeeklyProfile::of(&readings, now, Duration::hours(6));
        assert_eq!(profile, None);
        assert_eq!(WeeklyProfile::sum([profile]), None);
        assert_eq!(Pace::new(1.5, None), Pace::Flat(1.5));
    }
}
