//! The estimators the backtest compares, each judged at a run from what
//! that run would see: the key as listed and the snapshots in the database.
//!
//! - plain least squares over a `lookback` (6h, the default; 24h; 7d): the
//!   real engine, `engine::outlook` over a `forecast` rule with that
//!   lookback, exactly what `keywarden forecast` prints and a run decides on;
//! - a weekday/hour-aware profile (a candidate): the share of spend of
//!   each hour of the week seen in the last 7 days, scaled by the week's
//!   average rate (`profile-7d`), or the shape of the week before the last
//!   6 hours scaled by what those hours spent against what it expected of
//!   them (`profile-7d×6h`), integrated over the hours ahead.

use super::traces::Trace;
use chrono::{DateTime, Duration, DurationRound, Utc};
use keywarden::domain::Key;
use keywarden::engine::evaluate::forecast::readings_of;
use keywarden::engine::evaluate::{Amounts, Observed};
use keywarden::engine::forecast::{Reading, Status, burn_rate};
use keywarden::engine::inputs::Series;
use keywarden::engine::outlook::outlook;
use keywarden::rules::model::Rule;

/// How far ahead a warning looks: `warn_before = "24h"`.
pub const WARN_BEFORE: Duration = Duration::hours(24);

/// The span of a profile.
const WEEK: Duration = Duration::days(7);

/// How far back `profile-7d×6h` looks for the level: the default lookback.
const RECENT: Duration = Duration::hours(6);

/// An estimator of the window-end spend and the crossing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Estimator {
    /// The engine's least squares over this lookback.
    LeastSquares(Duration),
    /// The hour-of-week profile of the last week at the week's average rate.
    ProfileWeek,
    /// The hour-of-week profile of the week before the last 6 hours,
    /// scaled by what those hours spent.
    ProfileRecent,
}

impl Estimator {
    /// Every estimator, in the order of the tables.
    pub const ALL: [Estimator; 5] = [
        Estimator::LeastSquares(Duration::hours(6)),
        Estimator::LeastSquares(Duration::hours(24)),
        Estimator::LeastSquares(Duration::days(7)),
        Estimator::ProfileWeek,
        Estimator::ProfileRecent,
    ];

    /// Its name in the tables.
    pub fn name(self) -> String {
        match self {
            Estimator::LeastSquares(lookback) if lookback > Duration::days(1) => {
                format!("least squares {}d", lookback.num_days())
            }
            Estimator::LeastSquares(lookback) => format!("least squares {}h", lookback.num_hours()),
            Estimator::ProfileWeek => "profile-7d".into(),
            Estimator::ProfileRecent => "profile-7d×6h".into(),
        }
    }

    /// How far back it reads snapshots.
    fn lookback(self) -> Duration {
        match self {
            Estimator::LeastSquares(lookback) => lookback,
            Estimator::ProfileWeek => WEEK,
            Estimator::ProfileRecent => WEEK + RECENT,
        }
    }
}

/// What an estimator says at one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// The spend it projects at the window's end; `None` when it cannot tell.
    pub projected_usd: Option<f64>,
    /// Whether a `warn_before = "24h"` warning goes out: the crossing
    /// (or the budget already reached) comes within 24 h and before the window ends.
    pub warns: bool,
}

/// One estimator over one trace: the rule it is judged by, and the key as
/// the API lists it.
pub struct Judge<'t> {
    estimator: Estimator,
    trace: &'t Trace,
    rule: Vec<Rule>,
    key: Key,
}

impl<'t> Judge<'t> {
    /// `estimator` over `trace`, against its budget; `template` is a key as
    /// the sandbox lists it.
    pub fn new(estimator: Estimator, trace: &'t Trace, template: &Key) -> Judge<'t> {
        let text = format!(
            "[[rule]]\nname = \"forecast\"\nkeys = \"all\"\n[rule.when]\n\
             forecast = {{ usd = {}, window = \"{}\", lookback = \"{}h\" }}\n\
             [rule.set]\nlimit = 1.0\n",
            trace.budget_usd,
            trace.window,
            estimator.lookback().num_hours()
        );
        let rule = keywarden::rules::parse_rules("backtest.toml", &text)
            .unwrap_or_else(|d| panic!("the backtest's rule parses: {d:?}"))
            .rules;
        Judge {
            estimator,
            trace,
            rule,
            key: template.clone(),
        }
    }

    /// What the estimator says at `now`.
    pub fn at(&mut self, now: DateTime<Utc>) -> Estimate {
        let trace = self.trace;
        let spend = trace.spend_at(now);
        self.key.usage = Some(trace.usage_at(now));
        self.key.byok_usage = Some(0.0);
        self.key.usage_monthly = Some(spend);
        self.key.usage_weekly = Some(spend);
        let mut series = Series::new();
        series.insert(
            self.key.hash.clone(),
            trace.snapshots(now, self.estimator.lookback()).to_vec(),
        );
        match self.estimator {
            Estimator::LeastSquares(_) => self.engine(&series, now),
            Estimator::ProfileWeek | Estimator::ProfileRecent => {
                let readings = readings_of(&self.key, &series, false, now);
                self.profiled(&readings, spend, now)
            }
        }
    }

    /// The engine's own forecast: the row `keywarden forecast` prints.
    fn engine(&self, series: &Series, now: DateTime<Utc>) -> Estimate {
        let amounts = Amounts::new();
        let observed = Observed {
            amounts: &amounts,
            credits: None,
            series,
            now,
        };
        let keys = std::slice::from_ref(&self.key);
        let row = outlook(&self.rule, keys, &[], &observed)
            .forecasts
            .remove(0);
        let warns = matches!(row.status, Status::WillCross | Status::Crossed)
            && row.crossing_at.is_some_and(|at| at <= now + WARN_BEFORE);
        Estimate {
            projected_usd: row.projected_usd,
            warns,
        }
    }

    /// The profile candidate.
    fn profiled(&self, readings: &[Reading], spend: f64, now: DateTime<Utc>) -> Estimate {
        let profile;
        let level = match self.estimator {
            Estimator::ProfileRecent => {
                // The shape from the week before the last 6 hours, so that
                // those hours are judged against the same hours a week earlier.
                let before = now - RECENT;
                let week: Vec<Reading> = readings
                    .iter()
                    .filter(|r| r.at >= before - WEEK && r.at <= before)
                    .copied()
                    .collect();
                profile = WeeklyProfile::of(&week);
                // Known exactly when the engine's rate over the lookback is.
                if burn_rate(readings, now, RECENT).is_err() {
                    return Estimate {
                        projected_usd: None,
                        warns: spend >= self.trace.budget_usd,
                    };
                }
                let recent: Vec<&Reading> = readings.iter().filter(|r| r.at >= before).collect();
                let (first, last) = (recent[0], recent[recent.len() - 1]);
                let expected = profile.share_hours(first.at, last.at);
                if expected > 0.0 {
                    (last.usd - first.usd) / expected
                } else {
                    profile.mean_rate
                }
            }
            _ => {
                profile = WeeklyProfile::of(readings);
                profile.mean_rate
            }
        };
        let end = self.trace.end;
        let horizon = (now + WARN_BEFORE).min(end);
        Estimate {
            projected_usd: Some(spend + level * profile.share_hours(now, end)),
            warns: spend + level * profile.share_hours(now, horizon) >= self.trace.budget_usd,
        }
    }
}

/// The hour of the week `t` is in: 0 is Monday 00:00–01:00 UTC (the
/// epoch was a Thursday, 72 hours into its week).
fn hour_of_week(t: DateTime<Utc>) -> usize {
    (t.timestamp().div_euclid(3600) + 72).rem_euclid(168) as usize
}

/// How spend falls over the hours of the week, from the readings.
struct WeeklyProfile {
    /// Each hour's rate over the average (1 where the readings say nothing).
    share: [f64; 168],
    /// The average rate over the hours seen, USD per hour.
    mean_rate: f64,
}

impl WeeklyProfile {
    /// The profile of `readings` (in time order): each step between two
    /// readings counts in the hour it starts in.
    fn of(readings: &[Reading]) -> WeeklyProfile {
        let (mut usd, mut hours) = ([0.0; 168], [0.0; 168]);
        for step in readings.windows(2) {
            let b = hour_of_week(step[0].at);
            usd[b] += (step[1].usd - step[0].usd).max(0.0);
            hours[b] += (step[1].at - step[0].at).num_seconds() as f64 / 3600.0;
        }
        let rates: Vec<Option<f64>> = (0..168)
            .map(|b| (hours[b] > 0.0).then(|| usd[b] / hours[b]))
            .collect();
        let seen: Vec<f64> = rates.iter().flatten().copied().collect();
        let mean_rate = seen.iter().sum::<f64>() / seen.len().max(1) as f64;
        let mut share = [1.0; 168];
        if mean_rate > 0.0 {
            for (s, r) in share.iter_mut().zip(&rates) {
                if let Some(r) = r {
                    *s = r / mean_rate;
                }
            }
        }
        WeeklyProfile { share, mean_rate }
    }

    /// The hours from `from` to `to`, each weighted by its share.
    fn share_hours(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
        let mut at = from;
        let mut sum = 0.0;
        while at < to {
            let next =
                (at.duration_trunc(Duration::hours(1)).unwrap() + Duration::hours(1)).min(to);
            sum += self.share[hour_of_week(at)] * (next - at).num_seconds() as f64 / 3600.0;
            at = next;
        }
        sum
    }
}
