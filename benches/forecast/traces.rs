//! The generated spend traces of the forecast backtest: one key spending
//! through one budget window (and the 8 days before it, so that even a
//! week's lookback has history at the window's start), minute by minute, as
//! the sandbox's traffic spends it (`TrafficSpec::spend_in`).

use chrono::{DateTime, Duration, TimeZone, Utc};
use keywarden::domain::Window;
use keywarden::engine::inputs::UsageReading;
use keywarden::sandbox::traffic::{Pattern, TrafficSpec, minute_of};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// The shapes of spend the backtest is run over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The sandbox's `steady` pattern.
    Steady,
    /// The sandbox's `diurnal` pattern (working days in UTC, quiet weekends).
    Diurnal,
    /// The sandbox's `bursty` pattern (half steady, half random bursts).
    Bursty,
    /// `steady` whose rate rises through the window, from half the base
    /// rate at its start to 1.5 times it at its end.
    Ramp,
    /// `steady` that stops (`POST /_sandbox/traffic {}`) somewhere between
    /// 20 % and 80 % of the window.
    Stop,
}

impl Shape {
    /// Every shape, in the order of the tables.
    pub const ALL: [Shape; 5] = [
        Shape::Steady,
        Shape::Diurnal,
        Shape::Bursty,
        Shape::Ramp,
        Shape::Stop,
    ];

    /// Its name in the tables.
    pub fn name(self) -> &'static str {
        match self {
            Shape::Steady => "steady",
            Shape::Diurnal => "diurnal",
            Shape::Bursty => "bursty",
            Shape::Ramp => "ramp",
            Shape::Stop => "stop",
        }
    }

    /// The sandbox pattern it is made of.
    fn pattern(self) -> Pattern {
        match self {
            Shape::Diurnal => Pattern::Diurnal,
            Shape::Bursty => Pattern::Bursty,
            Shape::Steady | Shape::Ramp | Shape::Stop => Pattern::Steady,
        }
    }
}

/// How much history there is before the window starts.
pub const HISTORY: Duration = Duration::days(8);

/// The runs' schedule: every 15 minutes, each recording a snapshot. (The
/// default schedule runs every 5 minutes; a warning's timing is then 10
/// minutes finer, against the hour of slack between 24 h and 23 h, and the
/// backtest takes three times as long.)
pub const RUN_EVERY: Duration = Duration::minutes(15);

/// A usage snapshot is recorded every `[history] snapshot_interval`
/// (default 15 minutes) by the run at that time.
pub const SNAPSHOT_EVERY: Duration = Duration::minutes(15);

/// One key's spend through one window.
pub struct Trace {
    /// The window it is judged in.
    pub window: Window,
    /// When the window starts.
    pub start: DateTime<Utc>,
    /// When it ends.
    pub end: DateTime<Utc>,
    /// The budget of the window, in USD.
    pub budget_usd: f64,
    /// The minute (since the epoch) `lifetime[0]` is at: [`HISTORY`] before the start.
    first_minute: i64,
    /// Lifetime usage at the start of each minute from `first_minute` to
    /// the window's end: the spend of every minute before it.
    lifetime: Vec<f64>,
    /// Every snapshot from `first_minute` to the window's end.
    snapshots: Vec<UsageReading>,
}

impl Trace {
    /// The trace of `shape` in a `window` (weekly or monthly) chosen by
    /// `seed`, with a seeded rate, bursts, stop and budget. The budget is
    /// the window's outcome divided by a ratio drawn from 1.05 to 2 for
    /// even seeds (they cross, from the middle of the window to near its
    /// end) and from 0.5 to 0.9 for odd ones (they end at or below 90 % of
    /// it).
    pub fn generate(shape: Shape, window: Window, seed: u64) -> Trace {
        let mut rng = SmallRng::seed_from_u64(seed ^ (shape as u64) << 32);
        let start = match window {
            Window::Monthly => Utc
                .with_ymd_and_hms(
                    2025 + rng.gen_range(0..3),
                    rng.gen_range(1..=12),
                    1,
                    0,
                    0,
                    0,
                )
                .unwrap(),
            // Mondays from 2025-01-06 on.
            _ => {
                Utc.with_ymd_and_hms(2025, 1, 6, 0, 0, 0).unwrap()
                    + Duration::weeks(rng.gen_range(0..150))
            }
        };
        let end = window.bounds(start).expect("a window with an end").end;
        let spec = TrafficSpec {
            names: Some(vec!["*".into()]),
            hashes: None,
            usd_per_hour: rng.gen_range(0.2..5.0),
            pattern: shape.pattern(),
            seed: rng.r#gen(),
            byok: false,
        };
        let salt: u64 = rng.r#gen();
        let stop = start + (end - start) * rng.gen_range(20..=80) / 100;
        let first_minute = minute_of(start - HISTORY);
        let (start_minute, end_minute) = (minute_of(start), minute_of(end));
        let factor = |minute: i64| match shape {
            Shape::Ramp => {
                let through =
                    (minute - start_minute).max(0) as f64 / (end_minute - start_minute) as f64;
                0.5 + through
            }
            Shape::Stop if minute >= minute_of(stop) => 0.0,
            _ => 1.0,
        };
        let mut lifetime = Vec::with_capacity((end_minute - first_minute + 1) as usize);
        let mut usage = rng.gen_range(0.0..500.0);
        lifetime.push(usage);
        for minute in first_minute..end_minute {
            usage += spec.spend_in(minute, salt) * factor(minute);
            lifetime.push(usage);
        }
        let mut trace = Trace {
            window,
            start,
            end,
            budget_usd: 0.0,
            first_minute,
            lifetime,
            snapshots: Vec::new(),
        };
        let origin = start - HISTORY;
        trace.snapshots = (0..)
            .map(|k| origin + SNAPSHOT_EVERY * k)
            .take_while(|&at| at <= end)
            .map(|at| UsageReading {
                at,
                usage: Some(trace.usage_at(at)),
                byok_usage: Some(0.0),
            })
            .collect();
        let ratio = if seed % 2 == 0 {
            rng.gen_range(1.05..2.0)
        } else {
            rng.gen_range(0.5..0.9)
        };
        trace.budget_usd = trace.outcome() / ratio;
        trace
    }

    /// Lifetime usage at `t`, as the API lists it then.
    pub fn usage_at(&self, t: DateTime<Utc>) -> f64 {
        let i = (minute_of(t) - self.first_minute).clamp(0, self.lifetime.len() as i64 - 1);
        self.lifetime[i as usize]
    }

    /// The window's spend at `t`.
    pub fn spend_at(&self, t: DateTime<Utc>) -> f64 {
        self.usage_at(t) - self.usage_at(self.start)
    }

    /// The window's spend when it ends.
    pub fn outcome(&self) -> f64 {
        self.spend_at(self.end)
    }

    /// When the window's spend reaches the budget; `None` when it does not.
    pub fn crossing(&self) -> Option<DateTime<Utc>> {
        let base = self.usage_at(self.start);
        let from = (minute_of(self.start) - self.first_minute) as usize;
        let i = self.lifetime[from..]
            .iter()
            .position(|&u| u - base >= self.budget_usd)?;
        Some(self.start + Duration::minutes(i as i64))
    }

    /// The snapshots a run at `now` finds in the database, `lookback` back:
    /// one every [`SNAPSHOT_EVERY`] before `now`.
    pub fn snapshots(&self, now: DateTime<Utc>, lookback: Duration) -> &[UsageReading] {
        let origin = self.start - HISTORY;
        let every = SNAPSHOT_EVERY.num_minutes();
        let first = ((now - lookback - origin).num_minutes() + every - 1).div_euclid(every);
        let last = ((now - origin).num_minutes() - 1).div_euclid(every);
        let clamp = |k: i64| k.clamp(0, self.snapshots.len() as i64) as usize;
        &self.snapshots[clamp(first)..clamp(last + 1)]
    }

    /// The instants of the runs in the window, from its start to `until`
    /// (exclusive), every [`RUN_EVERY`].
    pub fn runs_until(&self, until: DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> {
        let start = self.start;
        (0..)
            .map(move |k| start + RUN_EVERY * k)
            .take_while(move |&t| t < until)
    }

    /// The middle of the window.
    pub fn half(&self) -> DateTime<Utc> {
        self.start + (self.end - self.start) / 2
    }
}
