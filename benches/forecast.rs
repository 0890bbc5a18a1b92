//! SPEC §15 "Forecasts": a backtest of the real engine over generated spend
//! traces, printing the figures beside their targets, and the cost of one
//! forecast evaluation over a realistic series (flat over 6 hours, and with
//! `profile = "weekly"` over a week and 6 hours).
//!
//! Each trace is one key spending through one monthly or weekly window, as
//! the sandbox's traffic spends it on the sandbox's clock (steady, diurnal,
//! bursty; a ramp and a stop made of steady), with a run and a usage
//! snapshot every 15 minutes (`snapshot_interval`). For every estimator
//! (`estimators.rs`) and shape it prints:
//!
//! - the error of the projected window-end spend at half the window against
//!   the outcome (median and 95th percentile; target 2 % steady, 10 % diurnal);
//! - of the traces that cross, the share warned (`warn_before = "24h"`) at
//!   least 23 h before the crossing (target 95 % of steady and diurnal);
//! - of the traces that end at or below 90 % of the budget, the share warned
//!   at all (a false warning; target at most 5 %).
//!
//! The figures are computed, never asserted: a bench prints.

#[path = "forecast/estimators.rs"]
mod estimators;
mod support;
#[path = "forecast/traces.rs"]
mod traces;

use chrono::{DateTime, Duration, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use estimators::{Estimator, Judge};
use keywarden::domain::{Key, Window};
use keywarden::engine::evaluate::{Amounts, CompiledRule, Observed, SharedHashes, evaluate};
use keywarden::engine::inputs::{Series, UsageReading};
use std::hint::black_box;
use std::time::Instant;
use traces::{Shape, Trace};

/// Traces per shape and window.
const SEEDS: u64 = 60;

/// A warning must come at least this long before the crossing.
const AHEAD: Duration = Duration::hours(23);

/// A trace ending at or below this share of its budget must not be warned.
const QUIET: f64 = 0.9;

/// What one estimator scored over one shape's traces.
#[derive(Debug, Default)]
struct Score {
    /// |projected − outcome| / outcome at half the window, per trace with a projection.
    errors: Vec<f64>,
    /// Traces with no projection at half the window (rate unknown).
    unknown: usize,
    /// Traces that cross at least 23 h into the window.
    crossing: usize,
    /// … of which were warned at least 23 h before the crossing.
    warned: usize,
    /// Traces ending at or below 90 % of the budget.
    quiet: usize,
    /// … of which were warned all the same.
    false_warned: usize,
}

impl Score {
    /// Adds what `estimator` says of `trace`.
    fn add(&mut self, estimator: Estimator, trace: &Trace, template: &Key) {
        let mut judge = Judge::new(estimator, trace, template);
        let outcome = trace.outcome();
        match judge.at(trace.half()).projected_usd {
            Some(p) => self.errors.push((p - outcome).abs() / outcome),
            None => self.unknown += 1,
        }
        if let Some(crossing) = trace.crossing() {
            let deadline = crossing - AHEAD;
            if deadline >= trace.start {
                self.crossing += 1;
                let until = deadline + Duration::seconds(1);
                if trace.runs_until(until).any(|t| judge.at(t).warns) {
                    self.warned += 1;
                }
            }
        } else if outcome <= QUIET * trace.budget_usd {
            self.quiet += 1;
            if trace.runs_until(trace.end).any(|t| judge.at(t).warns) {
                self.false_warned += 1;
            }
        }
    }

    /// The `q` quantile of the errors (nearest rank), in percent.
    fn error(&mut self, q: f64) -> f64 {
        self.errors.sort_by(f64::total_cmp);
        let rank = ((q * self.errors.len() as f64).ceil() as usize).clamp(1, self.errors.len());
        self.errors[rank - 1] * 100.0
    }
}

/// The share `part / whole` in percent, with its counts.
fn share(part: usize, whole: usize) -> String {
    if whole == 0 {
        return "—".into();
    }
    format!(
        "{:5.1} % ({part}/{whole})",
        part as f64 * 100.0 / whole as f64
    )
}

/// The projection error target of a shape, in percent.
fn error_target(shape: Shape) -> Option<f64> {
    match shape {
        Shape::Steady => Some(2.0),
        Shape::Diurnal => Some(10.0),
        _ => None,
    }
}

/// Prints one table row, with each figure's target where §15 sets one.
fn print_row(shape: Shape, estimator: Estimator, score: &mut Score) {
    let (median, p95) = (score.error(0.5), score.error(0.95));
    let error_verdict = error_target(shape).map_or(String::new(), |t| {
        format!("≤ {t:.0} %: {}", support::verdict(p95 <= t))
    });
    let warned = score.warned as f64 / score.crossing.max(1) as f64;
    let warned_verdict = if matches!(shape, Shape::Steady | Shape::Diurnal) {
        format!("≥ 95 %: {}", support::verdict(warned >= 0.95))
    } else {
        String::new()
    };
    let false_share = score.false_warned as f64 / score.quiet.max(1) as f64;
    println!(
        "{:<8} {:<20} {:>6.2} % {:>7.2} % {:<14} {:<22} {:<14} {:<22} ≤ 5 %: {}{}",
        shape.name(),
        estimator.name(),
        median,
        p95,
        error_verdict,
        share(score.warned, score.crossing),
        warned_verdict,
        share(score.false_warned, score.quiet),
        support::verdict(false_share <= 0.05),
        if score.unknown > 0 {
            format!("; {} unknown at half", score.unknown)
        } else {
            String::new()
        }
    );
}

/// The backtest: every shape and estimator over monthly and weekly windows.
fn backtest() {
    let template = support::keys(1).remove(0);
    let started = Instant::now();
    for window in [Window::Monthly, Window::Weekly] {
        println!(
            "\nforecast backtest: {window} windows, {SEEDS} traces per shape (half cross), a run and a snapshot every 15 min"
        );
        println!(
            "{:<8} {:<20} {:>8} {:>9} {:<14} {:<22} {:<14} {:<22}",
            "shape",
            "estimator",
            "error@½",
            "p95",
            "target",
            "warned ≥ 23 h ahead",
            "target",
            "false warnings"
        );
        for shape in Shape::ALL {
            let traces: Vec<Trace> = (0..SEEDS)
                .map(|seed| Trace::generate(shape, window, seed))
                .collect();
            // One thread an estimator: the rows are independent.
            let scores: Vec<Score> = std::thread::scope(|s| {
                let rows: Vec<_> = Estimator::ALL
                    .map(|estimator| {
                        let (traces, template) = (&traces, &template);
                        s.spawn(move || {
                            let mut score = Score::default();
                            for trace in traces {
                                score.add(estimator, trace, template);
                            }
                            score
                        })
                    })
                    .into_iter()
                    .collect();
                rows.into_iter()
                    .map(|row| row.join().expect("a backtest thread"))
                    .collect()
            });
            for (estimator, mut score) in Estimator::ALL.into_iter().zip(scores) {
                print_row(shape, estimator, &mut score);
            }
        }
    }
    println!("(backtest took {:.1} s)\n", started.elapsed().as_secs_f64());
}

/// How much snapshot history the timed keys have.
struct History {
    /// How far back the snapshots go.
    span: Duration,
    /// Minutes between two snapshots.
    every_minutes: i64,
}

/// `n` keys spending `0.5 + i % 7` USD an hour, with the `history` of
/// snapshots before `now`.
fn spending_keys(n: usize, now: DateTime<Utc>, history: &History) -> (Vec<Key>, Series) {
    let mut keys = support::keys(n);
    let mut series = Series::new();
    let count = history.span.num_minutes() / history.every_minutes;
    for (i, key) in keys.iter_mut().enumerate() {
        let rate = 0.5 + (i % 7) as f64;
        let usage = key.usage.unwrap_or_default();
        let readings = (1..=count)
            .rev()
            .map(|k| {
                let minutes = history.every_minutes * k;
                UsageReading {
                    at: now - Duration::minutes(minutes),
                    usage: Some(usage - rate * minutes as f64 / 60.0),
                    byok_usage: key.byok_usage,
                }
            })
            .collect();
        series.insert(key.hash.clone(), readings);
    }
    (keys, series)
}

fn bench_forecast(c: &mut Criterion) {
    backtest();
    let six_hours = History {
        span: Duration::hours(6),
        every_minutes: 5,
    };
    time_evaluation(c, "forecast_1000_keys_6h_of_5min_snapshots", "", &six_hours);
    let week = History {
        span: Duration::days(7) + Duration::hours(6),
        every_minutes: 15,
    };
    time_evaluation(
        c,
        "forecast_weekly_profile_1000_keys_7d6h_of_15min_snapshots",
        ", profile = \"weekly\"",
        &week,
    );
}

/// Times one evaluation of a monthly `forecast` rule (with `extra` terms)
/// over 1,000 keys with `history`, per key and per group.
fn time_evaluation(c: &mut Criterion, name: &str, extra: &str, history: &History) {
    let now = support::start();
    let (keys, series) = spending_keys(1_000, now, history);
    let amounts = Amounts::new();
    let observed = Observed {
        amounts: &amounts,
        credits: None,
        series: &series,
        now,
    };
    let selected: Vec<usize> = (0..keys.len()).collect();
    let mut group = c.benchmark_group(name);
    group
        .sample_size(20)
        .measurement_time(std::time::Duration::from_secs(3));
    for scope in ["each", "group"] {
        let text = format!(
            "[[rule]]\nname = \"f\"\nkeys = \"all\"\n[rule.when]\n\
             forecast = {{ usd = 50.0, window = \"monthly\", scope = \"{scope}\"{extra} }}\n\
             [rule.set]\nlimit = 1.0\n"
        );
        let rules = keywarden::rules::parse_rules("bench.toml", &text)
            .expect("parses")
            .rules;
        let rule =
            CompiledRule::new(&rules[0], chrono_tz::UTC, &Default::default()).expect("compiles");
        group.bench_function(scope, |b| {
            b.iter(|| {
                let hashes = SharedHashes::new(&keys);
                let mut readings = Vec::new();
                evaluate(
                    &rule,
                    &selected,
                    &keys,
                    &hashes,
                    black_box(&observed),
                    &mut readings,
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_forecast);
criterion_main!(benches);
