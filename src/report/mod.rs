//! The historical change report (SPEC §5): per group, changes by kind and
//! outcome, keys disabled and re-enabled, hours keys were held disabled,
//! spend against each budget, failures, source errors and guard trips.
//!
//! [`build`] gathers the figures with the aggregate queries of
//! [`crate::store::report`], [`add_projections`] where the budgets are
//! heading when the report reaches the present; [`text`] and [`html`]
//! render them.

pub mod charts;
pub mod disabled;
pub mod html;
pub mod periods;
pub mod projection;
pub mod text;

use crate::domain::event::EventKind;
use crate::domain::timestamp;
use crate::engine::{ChangeKind, Outcome};
use crate::rules::model::{DEFAULT_LOOKBACK_SECS, Rule};
use crate::store::Store;
use crate::store::report::{BUDGET_TOLERANCE_USD, Bucket};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use disabled::DisabledFigures;
use projection::Projection;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// A report: the period, the grouping, the totals and each group's figures.
/// Serializes as the JSON object of SPEC §5.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Start of the period (inclusive).
    #[serde(serialize_with = "timestamp::serialize")]
    pub since: DateTime<Utc>,
    /// End of the period (exclusive).
    #[serde(serialize_with = "timestamp::serialize")]
    pub until: DateTime<Utc>,
    /// `key`, `rule`, `day`, `week` or `month`.
    pub group_by: &'static str,
    /// The figures of the whole period.
    pub totals: Counters,
    /// The figures of each group, in group order.
    pub groups: Vec<Group>,
    /// Where each budget rule's spend is heading, by rule and window, for
    /// a report that reaches the present (SPEC §11); absent from the JSON
    /// when there is none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub projections: Vec<Projection>,
}

/// The figures of a group, or of the whole period.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counters {
    /// Change rows recorded.
    pub changes: i64,
    /// Change rows per kind (every kind listed).
    pub by_kind: BTreeMap<ChangeKind, i64>,
    /// Change rows per outcome (every outcome listed).
    pub by_outcome: BTreeMap<Outcome, i64>,
    /// Distinct keys an applied change disabled.
    pub keys_disabled: i64,
    /// Distinct keys an applied release or revert re-enabled.
    pub keys_reenabled: i64,
    /// Hours keywarden held keys disabled within the period (summed over keys).
    pub disabled_hours: f64,
    /// Changes that ended `failed` or `unknown`.
    pub failures: i64,
    /// Budget source errors recorded.
    pub source_errors: i64,
    /// Runs in which the blast-radius guard held changes back.
    pub guard_trips: i64,
    /// `disabled_hours` in whole seconds.
    #[serde(skip)]
    pub disabled_seconds: i64,
}

impl Counters {
    fn zeroed() -> Counters {
        Counters {
            by_kind: ChangeKind::ALL.iter().map(|k| (*k, 0)).collect(),
            by_outcome: Outcome::ALL.iter().map(|o| (*o, 0)).collect(),
            ..Counters::default()
        }
    }

    /// Takes the disabled figures folded for this group.
    fn set_disabled(&mut self, figures: &DisabledFigures) {
        self.keys_disabled = figures.keys_disabled;
        self.keys_reenabled = figures.keys_reenabled;
        self.disabled_seconds = figures.seconds;
        // Four decimals keep every minute exact.
        self.disabled_hours = (self.disabled_seconds as f64 / 36.0).round() / 100.0;
    }
}

/// One group's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// The group's name: a key name, a rule, `2026-11-27`, `2026-W48` or `2026-11`.
    pub group: String,
    /// Its figures.
    #[serde(flatten)]
    pub counters: Counters,
    /// Spend against each budget rule read in the group.
    pub budgets: Vec<BudgetLine>,
}

/// Spend in a window against a budget rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetLine {
    /// The rule.
    pub rule: String,
    /// `daily`, `weekly`, `monthly` or `total`.
    pub window: String,
    /// The budget at the last reading, USD.
    pub budget_usd: f64,
    /// The highest spend read in the group's period, USD.
    pub spend_usd: f64,
    /// The first reading at or over the budget, if any.
    #[serde(serialize_with = "timestamp::serialize_opt")]
    pub exceeded_at: Option<DateTime<Utc>>,
}

/// How a report groups (`--group-by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GroupBy {
    /// Per key.
    Key,
    /// Per rule.
    Rule,
    /// Per UTC day.
    Day,
    /// Per ISO week.
    Week,
    /// Per month.
    Month,
}

impl GroupBy {
    /// The grouping's name, as `--group-by` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Key => "key",
            GroupBy::Rule => "rule",
            GroupBy::Day => "day",
            GroupBy::Week => "week",
            GroupBy::Month => "month",
        }
    }
}

fn bucket(group_by: GroupBy) -> Bucket {
    match group_by {
        GroupBy::Key => Bucket::Key,
        GroupBy::Rule => Bucket::Rule,
        GroupBy::Day => Bucket::Day,
        GroupBy::Week => Bucket::Week,
        GroupBy::Month => Bucket::Month,
    }
}

/// Whether a spend reading has reached its budget (a budget of 50.00 is
/// reached by 50.00).
pub fn reached(spend_usd: f64, budget_usd: f64) -> bool {
    spend_usd + BUDGET_TOLERANCE_USD >= budget_usd
}

/// Figures per group id, filled query by query.
struct Tally {
    groups: BTreeMap<String, Counters>,
}

impl Tally {
    fn group(&mut self, id: &str) -> &mut Counters {
        self.groups
            .entry(id.to_string())
            .or_insert_with(Counters::zeroed)
    }
}

/// Gathers the report of `[since, until)` grouped by `group_by`.
pub async fn build(
    store: &Store,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    group_by: GroupBy,
) -> anyhow::Result<Report> {
    let bucket = bucket(group_by);
    let mut tally = Tally {
        groups: BTreeMap::new(),
    };
    let mut totals = Counters::zeroed();

    for c in store.report_change_counts(since, until, bucket).await? {
        for counters in [&mut totals, tally.group(&c.group)] {
            counters.changes += c.count;
            *counters.by_kind.entry(c.kind).or_default() += c.count;
            *counters.by_outcome.entry(c.outcome).or_default() += c.count;
            if matches!(c.outcome, Outcome::Failed | Outcome::Unknown) {
                counters.failures += c.count;
            }
        }
    }
    for (group, kind, n) in store.report_event_counts(since, until, bucket).await? {
        let g = tally.group(&group);
        match kind {
            EventKind::SourceError => g.source_errors = n,
            _ if matches!(bucket, Bucket::Day | Bucket::Week | Bucket::Month) => g.guard_trips = n,
            _ => {}
        }
    }
    if matches!(bucket, Bucket::Key | Bucket::Rule) {
        // A guard trip concerns a run, not a key or rule: count the runs in
        // which it held back a change of the group.
        for (group, n) in store.report_held_runs(since, until, bucket).await? {
            tally.group(&group).guard_trips = n;
        }
    }
    for (_, kind, n) in store.report_event_counts(since, until, Bucket::All).await? {
        match kind {
            EventKind::SourceError => totals.source_errors = n,
            _ => totals.guard_trips = n,
        }
    }

    let moves = store.report_disabled_moves(since, until).await?;
    let held = disabled::fold(&moves, since, until, bucket);
    for (id, figures) in &held.groups {
        tally.group(id).set_disabled(figures);
    }
    totals.set_disabled(&held.totals);
    let mut names = held.names;

    let mut budgets: BTreeMap<String, Vec<BudgetLine>> = BTreeMap::new();
    for line in store.report_budget_lines(since, until, bucket).await? {
        tally.group(&line.group);
        budgets.entry(line.group).or_default().push(BudgetLine {
            rule: line.rule,
            window: line.window,
            budget_usd: line.budget_usd,
            spend_usd: line.spend_usd,
            exceeded_at: line.reached_at,
        });
    }

    if bucket == Bucket::Key {
        names.extend(store.report_key_names(since, until).await?);
    }
    let mut groups: Vec<Group> = tally
        .groups
        .into_iter()
        .map(|(id, counters)| Group {
            group: label(&id, bucket, &names),
            budgets: budgets.remove(&id).unwrap_or_default(),
            counters,
        })
        .collect();
    if bucket == Bucket::Key {
        groups.sort_by(|a, b| a.group.cmp(&b.group));
    }
    Ok(Report {
        since,
        until,
        group_by: group_by.as_str(),
        totals,
        groups,
        projections: Vec::new(),
    })
}

/// Adds to `report` where each budget rule's spend is heading at `now`,
/// when the report reaches it (`until` not before `now`): a report of the
/// past has no projection.
pub async fn add_projections(
    store: &Store,
    report: &mut Report,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    if report.until < now {
        return Ok(());
    }
    let rules: Vec<_> = store.rules().await?.into_iter().map(|s| s.rule).collect();
    let lookback = rules
        .iter()
        .filter_map(Rule::forecast_terms)
        .map(|(_, lookback)| lookback)
        .fold(
            chrono::Duration::seconds(DEFAULT_LOOKBACK_SECS as i64),
            chrono::Duration::max,
        );
    let points = store
        .report_budget_points(
            now - lookback,
            now + chrono::Duration::seconds(1),
            Bucket::Rule,
        )
        .await?;
    report.projections = projection::projections(&points, &rules, now);
    Ok(())
}

/// A group's name for people: key names for keys (with the hash's start
/// when a name is not known), ISO weeks for weeks.
fn label(id: &str, bucket: Bucket, names: &HashMap<String, String>) -> String {
    match bucket {
        Bucket::Key => names
            .get(id)
            .cloned()
            .unwrap_or_else(|| crate::output::shorten(id, 12)),
        Bucket::Week => match NaiveDate::parse_from_str(id, "%Y-%m-%d") {
            Ok(monday) => {
                let week = monday.iso_week();
                format!("{}-W{:02}", week.year(), week.week())
            }
            Err(_) => id.to_string(),
        },
        _ => id.to_string(),
    }
}
