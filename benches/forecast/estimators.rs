//! The estimators the backtest compares, each judged at a run from what
//! that run would see: the key as listed and the snapshots in the database.
//! Each is the real engine, `engine::outlook` over a `forecast` rule,
//! exactly what `keywarden forecast` prints and a run decides on:
//!
//! - plain least squares over a `lookback` (6h, the default; 24h; 7d),
//!   projected flat;
//! - `profile = "weekly"` over the default lookback: the same 6-hour rate,
//!   the hours ahead shaped like the same hours of the week before the
//!   lookback, scaled by what the lookback spent against them
//!   (`profile-7d×6h` in earlier runs).

use super::traces::Trace;
use chrono::{DateTime, Duration, Utc};
use keywarden::domain::Key;
use keywarden::engine::evaluate::{Amounts, Observed};
use keywarden::engine::forecast::Status;
use keywarden::engine::inputs::Series;
use keywarden::engine::outlook::outlook;
use keywarden::rules::model::Rule;

/// How far ahead a warning looks: `warn_before = "24h"`.
pub const WARN_BEFORE: Duration = Duration::hours(24);

/// The lookback of the weekly profile: the default.
const RECENT: Duration = Duration::hours(6);

/// An estimator of the window-end spend and the crossing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Estimator {
    /// The engine's least squares over this lookback, projected flat.
    LeastSquares(Duration),
    /// The engine's `profile = "weekly"` over the default lookback.
    Weekly,
}

impl Estimator {
    /// Every estimator, in the order of the tables.
    pub const ALL: [Estimator; 4] = [
        Estimator::LeastSquares(Duration::hours(6)),
        Estimator::LeastSquares(Duration::hours(24)),
        Estimator::LeastSquares(Duration::days(7)),
        Estimator::Weekly,
    ];

    /// Its name in the tables.
    pub fn name(self) -> String {
        match self {
            Estimator::LeastSquares(lookback) if lookback > Duration::days(1) => {
                format!("least squares {}d", lookback.num_days())
            }
            Estimator::LeastSquares(lookback) => format!("least squares {}h", lookback.num_hours()),
            Estimator::Weekly => "weekly profile 6h".into(),
        }
    }

    /// Its rule's `lookback`.
    fn lookback(self) -> Duration {
        match self {
            Estimator::LeastSquares(lookback) => lookback,
            Estimator::Weekly => RECENT,
        }
    }

    /// Its rule's `profile`.
    fn profile(self) -> &'static str {
        match self {
            Estimator::LeastSquares(_) => "flat",
            Estimator::Weekly => "weekly",
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
    /// How far back the rule reads snapshots (`Rule::reads_series`).
    reads: Duration,
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
             forecast = {{ usd = {}, window = \"{}\", lookback = \"{}h\", profile = \"{}\" }}\n\
             [rule.set]\nlimit = 1.0\n",
            trace.budget_usd,
            trace.window,
            estimator.lookback().num_hours(),
            estimator.profile()
        );
        let rule = keywarden::rules::parse_rules("backtest.toml", &text)
            .unwrap_or_else(|d| panic!("the backtest's rule parses: {d:?}"))
            .rules;
        Judge {
            reads: rule[0].reads_series().unwrap_or_default(),
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
            trace.snapshots(now, self.reads).to_vec(),
        );
        self.engine(&series, now)
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
}
