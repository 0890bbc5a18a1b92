//! Rules as keywarden keeps them: parsed and valid by construction
//! (the only way to make one from text is the rules-file parser, `rules::parse`).
//!
//! A rule is also stored in the database as its canonical TOML/JSON form
//! (see [`Rule`]'s serde impls), so these types round-trip through serde.

use crate::domain::{Settings, Window};
use chrono::{NaiveDateTime, NaiveTime, Weekday};
use serde::{Deserialize, Serialize};

/// One rule: which keys, when, what to set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// Unique name: letters, digits, `-`, `_`, `.`.
    pub name: String,
    /// Free text for people.
    pub description: Option<String>,
    /// Disabled rules are kept but never evaluated.
    pub enabled: bool,
    /// Higher wins when two rules set the same field of one key.
    pub priority: i64,
    /// Which keys the rule applies to.
    pub keys: Selector,
    /// Cron expression (5 or 6 fields); `None` = `[daemon].schedule`.
    pub schedule: Option<String>,
    /// IANA timezone name; `None` = `[daemon].timezone`.
    pub timezone: Option<String>,
    /// Conditions that must all hold; empty = always.
    pub when: Conditions,
    /// The settings asserted while `when` holds.
    pub set: Settings,
    /// Fractions of a budget at which a `budget_warning` is sent.
    pub warn_at: Vec<f64>,
    /// Horizons (seconds) of the early warnings (`warn_before`): a
    /// `budget_forecast` is sent the first time in a window that the
    /// crossing comes within each.
    #[serde(default)]
    pub warn_before_secs: Vec<u64>,
}

impl Rule {
    /// The budget its forecast is drawn against and how far back it looks:
    /// its `forecast` condition, else its `budget` one (default lookback);
    /// `None` when it has neither.
    pub fn forecast_terms(&self) -> Option<(&Budget, chrono::Duration)> {
        match (&self.when.forecast, &self.when.budget) {
            (Some(f), _) => Some((&f.budget, f.lookback())),
            (None, Some(b)) => Some((b, secs(DEFAULT_LOOKBACK_SECS))),
            (None, None) => None,
        }
    }

    /// How far back this rule reads usage snapshots: the lookback of its
    /// `forecast` condition, or of its early warnings (`warn_before`);
    /// `None` when it reads none.
    pub fn reads_series(&self) -> Option<chrono::Duration> {
        match &self.when.forecast {
            Some(f) => Some(f.lookback()),
            None if !self.warn_before_secs.is_empty() => self.forecast_terms().map(|(_, l)| l),
            None => None,
        }
    }

    /// The `warn_before` horizons as durations.
    pub fn warn_before(&self) -> impl Iterator<Item = chrono::Duration> + '_ {
        self.warn_before_secs.iter().map(|&s| secs(s))
    }
}

/// Which keys a rule applies to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Selector {
    /// Every key.
    All,
    /// Keys matching any listed item and no `exclude`.
    Match(Match),
}

/// The table form of a [`Selector`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Match {
    /// Exact key hashes.
    pub hashes: Vec<String>,
    /// Globs (`*`, `?`) over key names.
    pub names: Vec<String>,
    /// Globs over key labels.
    pub labels: Vec<String>,
    /// Globs over a workspace's id, slug or name (SPEC §12).
    pub workspaces: Vec<String>,
    /// Keys to leave out even when matched.
    pub exclude: Exclude,
}

/// The `exclude` part of a selector.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Exclude {
    /// Exact key hashes.
    pub hashes: Vec<String>,
    /// Globs over key names.
    pub names: Vec<String>,
    /// Globs over key labels.
    pub labels: Vec<String>,
}

/// The `when` table: every condition given must hold.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Conditions {
    /// Spend in a window against a budget.
    pub budget: Option<Budget>,
    /// Where spend is heading: the budget crossed before the window ends.
    #[serde(default)]
    pub forecast: Option<Forecast>,
    /// The account's remaining credits below an amount.
    pub credits_below: Option<Amount>,
    /// A yearly date range in the rule's timezone.
    pub season: Option<Season>,
    /// A one-off local date-time window `[start, end)`.
    pub between: Option<Between>,
    /// Local weekdays.
    pub weekdays: Option<Vec<Weekday>>,
    /// Local time-of-day range, may wrap midnight.
    pub hours: Option<Hours>,
}

impl Conditions {
    /// True when the rule has a condition that depends only on the calendar.
    pub fn has_calendar(&self) -> bool {
        self.season.is_some()
            || self.between.is_some()
            || self.weekdays.is_some()
            || self.hours.is_some()
    }
}

/// Whether a budget is per key or shared by all selected keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Each key against the budget on its own.
    #[default]
    Each,
    /// The sum over all selected keys; holds for all of them.
    Group,
}

/// `budget = { usd, window, scope, include_byok, at }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// The budget.
    pub usd: Amount,
    /// The spend window.
    pub window: Window,
    /// Per key or per group.
    pub scope: Scope,
    /// Add the matching `byok_usage_*` to spend.
    pub include_byok: bool,
    /// Holds when spend ≥ `at` × `usd` (default 1.0).
    pub at: f64,
}

/// The default `lookback` of a forecast: 6 hours.
pub const DEFAULT_LOOKBACK_SECS: u64 = 6 * 3600;

/// `forecast = { usd, window, scope, lookback, within, at, include_byok }`
/// (SPEC §11): holds when spend at the current burn rate crosses the
/// budget before the window ends (and within `within`, when given).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// The budget it projects against: amount, window, scope, BYOK, `at`.
    pub budget: Budget,
    /// How far back the burn rate looks (seconds; default 6h).
    pub lookback_secs: u64,
    /// The crossing must come no later than this after now (seconds);
    /// required for `window = "total"`.
    pub within_secs: Option<u64>,
}

impl Forecast {
    /// The lookback as a duration.
    pub fn lookback(&self) -> chrono::Duration {
        secs(self.lookback_secs)
    }

    /// `within` as a duration, when given.
    pub fn within(&self) -> Option<chrono::Duration> {
        self.within_secs.map(secs)
    }
}

/// The longest `lookback` of the enabled rules that forecast (a forecast
/// condition, or early warnings): how far back forecasts read snapshots,
/// and how long they are kept at least; `None` when no enabled rule
/// forecasts.
pub fn longest_lookback(rules: &[Rule]) -> Option<chrono::Duration> {
    rules
        .iter()
        .filter(|r| r.enabled)
        .filter_map(Rule::reads_series)
        .max()
}

fn secs(s: u64) -> chrono::Duration {
    chrono::Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1000))
}

/// An amount of USD: a number, or a source read at evaluation time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Amount {
    /// A fixed amount.
    Fixed(f64),
    /// Read from an external source.
    Source(Source),
}

/// The default `max_age` of a budget source: 24 hours.
pub const DEFAULT_MAX_AGE_SECS: u64 = 24 * 3600;

/// An external budget source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// Where the number comes from.
    pub kind: SourceKind,
    /// The stored last good value is used while younger than this (seconds; default 24h).
    pub max_age_secs: u64,
}

/// The three kinds of budget source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SourceKind {
    /// `{ env = "NAME" }`
    Env {
        /// The environment variable.
        name: String,
    },
    /// `{ file = PATH, pointer = "/a/b" }`: JSON with an RFC 6901 pointer, or a bare number.
    File {
        /// The file's path.
        path: String,
        /// JSON pointer into the file; `None` = the whole file is a number.
        pointer: Option<String>,
    },
    /// `{ url = URL, pointer, headers = { H = "env:VAR" | "literal" } }`.
    Url {
        /// `https://` (or `http://` on loopback).
        url: String,
        /// JSON pointer into the body; `None` = the body is a number.
        pointer: Option<String>,
        /// Request headers; values `env:NAME` are read from the environment.
        headers: Vec<(String, String)>,
    },
}

impl Source {
    /// A stable identity for the stored last-good value of this source.
    pub fn id(&self) -> String {
        match &self.kind {
            SourceKind::Env { name } => format!("env:{name}"),
            SourceKind::File { path, pointer } => {
                format!("file:{path}#{}", pointer.as_deref().unwrap_or(""))
            }
            SourceKind::Url { url, pointer, .. } => {
                format!("url:{url}#{}", pointer.as_deref().unwrap_or(""))
            }
        }
    }
}

/// `season = { from = "MM-DD", to = "MM-DD" }`, both ends inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Season {
    /// First day (month, day).
    pub from: (u32, u32),
    /// Last day (month, day); may be before `from` (wraps the year end).
    pub to: (u32, u32),
}

/// `between = { start, end }`: local date-time in `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Between {
    /// Inclusive start, local time.
    pub start: NaiveDateTime,
    /// Exclusive end, local time.
    pub end: NaiveDateTime,
}

/// `hours = "18:00-08:00"`: local time of day in `[start, end)`, may wrap midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hours {
    /// Inclusive start.
    pub start: NaiveTime,
    /// Exclusive end.
    pub end: NaiveTime,
}

/// Where a rule came from: the CLI, or a rules file (which then owns it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    /// Created or last changed through `keywarden rules …`.
    Cli,
    /// Synced from a rules file at this path.
    File(String),
}

impl Origin {
    /// The stored form: `cli` or `file:PATH`.
    pub fn as_string(&self) -> String {
        match self {
            Origin::Cli => "cli".into(),
            Origin::File(p) => format!("file:{p}"),
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Origin {
        match s.strip_prefix("file:") {
            Some(p) => Origin::File(p.to_string()),
            None => Origin::Cli,
        }
    }
}
