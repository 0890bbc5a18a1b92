//! Simulated traffic (`POST /_sandbox/traffic`, SPEC §11): keys that spend
//! on their own as the sandbox clock moves, so that forecasts, the demo and
//! the forecast benchmark have spend with a shape.
//!
//! A stream makes every key it selects spend `usd_per_hour` on average, in
//! one-minute steps, following a pattern:
//!
//! - `steady`: the same every minute;
//! - `diurnal`: a working day in UTC — most of it from 08:00 to 18:00 on
//!   weekdays, a little in the evenings, quiet nights and weekends;
//! - `bursty`: half of it steadily, the other half in bursts of 30 minutes'
//!   worth that come about once an hour at random.
//!
//! What a key spends in a minute is a pure function of the stream, the key
//! and the minute (the seed makes the bursts reproducible), so the same
//! clock moves give the same spend however they are cut up. Spend is
//! attributed to the minute it falls in, so the usage windows roll over
//! exactly, and it is refused like any spend when the key is disabled, has
//! expired or is over its limit.

use chrono::{DateTime, Datelike, Timelike, Utc};
use globset::{Glob, GlobSet, GlobSetBuilder};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

/// The shape of a stream's spend over time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pattern {
    /// The same every minute.
    Steady,
    /// A working-day curve in UTC with quiet weekends.
    Diurnal,
    /// Half steady, half in random bursts.
    Bursty,
}

/// One stream as asked for (`POST /_sandbox/traffic`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficSpec {
    /// Keys whose name matches one of these globs (`*`, `?`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<Vec<String>>,
    /// Keys with one of these hashes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashes: Option<Vec<String>>,
    /// What each selected key spends an hour on average, in USD.
    pub usd_per_hour: f64,
    /// The shape; default `steady`.
    #[serde(default = "steady")]
    pub pattern: Pattern,
    /// Seeds the bursts; default 0.
    #[serde(default)]
    pub seed: u64,
    /// Spend BYOK usage instead of credits; default false.
    #[serde(default)]
    pub byok: bool,
}

fn steady() -> Pattern {
    Pattern::Steady
}

/// A stream in force, with what it has spent so far.
#[derive(Debug, Clone, Serialize)]
pub struct Stream {
    /// What was asked for.
    #[serde(flatten)]
    pub spec: TrafficSpec,
    /// When it started (sandbox time).
    pub since: DateTime<Utc>,
    /// USD spent by it so far, over all its keys.
    pub spent_usd: f64,
    /// Minutes × keys whose spend was refused (disabled, expired, over limit).
    pub refused: u64,
    /// The minute up to which it has spent (exclusive), in minutes since the epoch.
    #[serde(skip)]
    until_minute: i64,
    #[serde(skip)]
    names: Option<GlobSet>,
}

/// Why a stream was refused.
pub type SpecError = String;

impl TrafficSpec {
    /// Checks the spec and compiles its globs.
    fn compile(&self) -> Result<Option<GlobSet>, SpecError> {
        if !self.usd_per_hour.is_finite() || self.usd_per_hour < 0.0 {
            return Err("`usd_per_hour` must be a number >= 0".into());
        }
        match (&self.names, &self.hashes) {
            (Some(_), Some(_)) => Err("give `names` or `hashes`, not both".into()),
            (None, None) => Err("give `names` (globs) or `hashes` to select keys".into()),
            (None, Some(_)) => Ok(None),
            (Some(names), None) => {
                let mut set = GlobSetBuilder::new();
                for name in names {
                    set.add(Glob::new(name).map_err(|e| format!("names: {name:?}: {e}"))?);
                }
                set.build().map(Some).map_err(|e| format!("names: {e}"))
            }
        }
    }

    /// What one selected key spends in `minute` (minutes since the epoch),
    /// `key_salt` telling keys apart for the bursts.
    pub fn spend_in(&self, minute: i64, key_salt: u64) -> f64 {
        let per_minute = self.usd_per_hour / 60.0;
        match self.pattern {
            Pattern::Steady => per_minute,
            Pattern::Diurnal => per_minute * diurnal_weight(minute),
            Pattern::Bursty => {
                let mut rng = SmallRng::seed_from_u64(
                    self.seed ^ key_salt.rotate_left(17) ^ (minute as u64).wrapping_mul(BURST_MIX),
                );
                let burst = if rng.gen_ratio(1, BURST_EVERY_MINUTES) {
                    f64::from(BURST_EVERY_MINUTES) / 2.0
                } else {
                    0.0
                };
                per_minute * (0.5 + burst)
            }
        }
    }
}

/// On average a burst every this many minutes, of half this many minutes'
/// average spend: bursts carry half of the spend.
const BURST_EVERY_MINUTES: u32 = 60;

/// An odd constant spreading minute numbers over the seed's bits.
const BURST_MIX: u64 = 0x9e37_79b9_7f4a_7c15;

/// The diurnal weight of an hour of the week (UTC), before normalising:
/// working hours 1, their shoulders 0.5, nights and weekends 0.1.
fn raw_weight(weekday: u32, hour: u32) -> f64 {
    if weekday >= 5 {
        return 0.1;
    }
    match hour {
        8..=17 => 1.0,
        7 | 18..=19 => 0.5,
        _ => 0.1,
    }
}

/// The mean of [`raw_weight`] over the 168 hours of a week, worked out once.
static WEEKLY_MEAN: LazyLock<f64> = LazyLock::new(|| {
    (0..7)
        .flat_map(|d| (0..24).map(move |h| raw_weight(d, h)))
        .sum::<f64>()
        / 168.0
});

/// The diurnal weight of `minute`, normalised so that a week averages 1.
fn diurnal_weight(minute: i64) -> f64 {
    let t = DateTime::from_timestamp(minute * 60, 0).unwrap_or_default();
    raw_weight(t.weekday().num_days_from_monday(), t.hour()) / *WEEKLY_MEAN
}

/// Minutes since the epoch of the minute that holds `t`.
pub fn minute_of(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(60)
}

impl Stream {
    /// A stream starting at `now`, or why `spec` is refused.
    pub fn start(spec: TrafficSpec, now: DateTime<Utc>) -> Result<Stream, SpecError> {
        let names = spec.compile()?;
        Ok(Stream {
            spec,
            since: now,
            spent_usd: 0.0,
            refused: 0,
            until_minute: minute_of(now),
            names,
        })
    }

    /// Whether the stream selects the key with this name and hash.
    pub fn selects(&self, name: &str, hash: &str) -> bool {
        match (&self.names, &self.spec.hashes) {
            (Some(names), _) => names.is_match(name),
            (None, Some(hashes)) => hashes.iter().any(|h| h == hash),
            (None, None) => false,
        }
    }

    /// The whole minutes not spent yet before `now`, each once; the stream
    /// then counts as having spent up to `now`'s minute. A clock moved back
    /// gives none until it passes that minute again.
    pub fn minutes_due(&mut self, now: DateTime<Utc>) -> std::ops::Range<i64> {
        let from = self.until_minute;
        let to = minute_of(now).max(from);
        self.until_minute = to;
        from..to
    }

    /// Counts a minute's spend of one key: spent, or refused.
    pub fn count(&mut self, spent: Option<f64>) {
        match spent {
            Some(usd) => self.spent_usd += usd,
            None => self.refused += 1,
        }
    }
}

/// A salt telling keys apart for the bursts: the first 8 bytes of the hash
/// read as hex, else a hash of the text.
pub fn key_salt(hash: &str) -> u64 {
    u64::from_str_radix(hash.get(..16).unwrap_or(hash), 16).unwrap_or_else(|_| {
        hash.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(pattern: Pattern) -> TrafficSpec {
        TrafficSpec {
            names: Some(vec!["team-a-*".into()]),
            hashes: None,
            usd_per_hour: 1.5,
            pattern,
            seed: 7,
            byok: false,
        }
    }

    /// The average hourly spend of one key over a whole number of weeks.
    fn hourly_mean(spec: &TrafficSpec, weeks: i64) -> f64 {
        let start = minute_of("2026-11-30T00:00:00Z".parse().unwrap());
        let minutes = weeks * 7 * 24 * 60;
        let total: f64 = (start..start + minutes).map(|m| spec.spend_in(m, 42)).sum();
        total / (minutes as f64 / 60.0)
    }

    #[test]
    fn every_pattern_averages_its_rate() {
        assert!((hourly_mean(&spec(Pattern::Steady), 1) - 1.5).abs() < 1e-9);
        assert!((hourly_mean(&spec(Pattern::Diurnal), 1) - 1.5).abs() < 1e-9);
        let bursty = hourly_mean(&spec(Pattern::Bursty), 4);
        assert!((bursty - 1.5).abs() < 0.15, "bursty averages {bursty}");
    }

    #[test]
    fn diurnal_spends_in_working_hours_and_little_at_night_and_at_weekends() {
        let s = spec(Pattern::Diurnal);
        let at = |t: &str| s.spend_in(minute_of(t.parse().unwrap()), 1);
        let noon = at("2026-12-02T12:00:00Z");
        assert!(noon >= 10.0 * at("2026-12-02T03:00:00Z"));
        assert!(noon >= 10.0 * at("2026-12-05T12:00:00Z"));
    }

    #[test]
    fn bursts_are_reproducible_and_differ_between_keys_and_seeds() {
        let s = spec(Pattern::Bursty);
        let series = |spec: &TrafficSpec, salt| -> Vec<f64> {
            (0..600)
                .map(|m| spec.spend_in(29_000_000 + m, salt))
                .collect()
        };
        assert_eq!(series(&s, 1), series(&s, 1));
        assert_ne!(series(&s, 1), series(&s, 2));
        let other = TrafficSpec {
            seed: 8,
            ..s.clone()
        };
        assert_ne!(series(&s, 1), series(&other, 1));
        let steady_minute = s.usd_per_hour / 60.0;
        assert!(
            series(&s, 1).iter().any(|&usd| usd > 10.0 * steady_minute),
            "a burst in 10 hours"
        );
    }

    #[test]
    fn a_spec_selects_by_names_or_hashes_never_both() {
        let now = Utc::now();
        let stream = Stream::start(spec(Pattern::Steady), now).unwrap();
        assert!(stream.selects("team-a-01", "x"));
        assert!(!stream.selects("team-b-01", "x"));
        let both = TrafficSpec {
            hashes: Some(vec!["x".into()]),
            ..spec(Pattern::Steady)
        };
        assert!(Stream::start(both, now).is_err());
        let negative = TrafficSpec {
            usd_per_hour: -1.0,
            ..spec(Pattern::Steady)
        };
        assert!(Stream::start(negative, now).is_err());
    }

    #[test]
    fn each_minute_is_due_once_however_the_clock_moves() {
        let t0: DateTime<Utc> = "2026-12-01T10:00:30Z".parse().unwrap();
        let mut stream = Stream::start(spec(Pattern::Steady), t0).unwrap();
        let first = stream.minutes_due(t0 + chrono::Duration::minutes(90));
        assert_eq!(first.end - first.start, 90);
        let back = stream.minutes_due(t0);
        assert!(back.is_empty());
        let next = stream.minutes_due(t0 + chrono::Duration::minutes(100));
        assert_eq!(next.start, first.end);
        assert_eq!(next.end - next.start, 10);
    }
}
