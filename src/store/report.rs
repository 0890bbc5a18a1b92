//! The aggregate queries of `keywarden report` (SPEC §5). Everything is
//! counted in SQL over the indexes of `migrations/sqlite/0002_report_indexes.sql`
//! `0004_budget_readings.sql` and `0007_disabled_transitions.sql`;
//! only the per-group figures come back, never the rows themselves. The
//! period is `at >= since AND at < until`, exactly as `history` filters.

use super::backend::{Dialect, on_pool};
use super::{Store, parse_event_kind, parse_ts, ts};
use crate::domain::event::EventKind;
use crate::engine::{ChangeKind, Outcome};
use anyhow::anyhow;
use chrono::{DateTime, Utc};
use futures::TryStreamExt as _;
use sqlx::FromRow;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

/// How report rows are put into groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// By key hash.
    Key,
    /// By rule name.
    Rule,
    /// By UTC day: `2026-11-27`.
    Day,
    /// By ISO week, as the date of its Monday: `2026-11-23`.
    Week,
    /// By UTC month: `2026-11`.
    Month,
    /// One group, `""`: the totals.
    All,
}

impl Bucket {
    /// The group of a row as an SQL expression over its `at`, `key_hash`
    /// and `rule` columns (NULL when the row has no key or rule), in
    /// `dialect`.
    fn sql(self, dialect: Dialect) -> &'static str {
        match self {
            Bucket::Key => "key_hash",
            Bucket::Rule => "rule",
            Bucket::Day => "substr(at, 1, 10)",
            Bucket::Week => dialect.pick(
                "date(substr(at, 1, 10), '-' || ((CAST(strftime('%w', at) AS INTEGER) + 6) % 7) || ' days')",
                "to_char(date_trunc('week', CAST(substr(at, 1, 10) AS timestamp)), 'YYYY-MM-DD')",
            ),
            Bucket::Month => "substr(at, 1, 7)",
            Bucket::All => "''",
        }
    }
}

/// The number of changes of one kind with one outcome in one group.
#[derive(Debug, Clone, PartialEq)]
pub struct KindOutcomeCount {
    /// The group.
    pub group: String,
    /// The change kind.
    pub kind: ChangeKind,
    /// The outcome.
    pub outcome: Outcome,
    /// How many.
    pub count: i64,
}

/// Distinct keys disabled and re-enabled by applied changes in one group.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyCounts {
    /// The group.
    pub group: String,
    /// Keys an applied change set `disabled = true` on.
    pub disabled: i64,
    /// Keys an applied release or revert moved from disabled to enabled.
    pub reenabled: i64,
}

/// An applied change that opens or closes a period in which keywarden held
/// a key disabled, in key then time order.
#[derive(Debug, Clone, PartialEq)]
pub struct DisabledTransition {
    /// The key.
    pub key_hash: String,
    /// Its name at the time.
    pub key_name: String,
    /// The rule of the change.
    pub rule: String,
    /// When.
    pub at: DateTime<Utc>,
    /// `true`: an assert/reassert disabled the key; `false`: a release,
    /// drift or revert moved it away from disabled, or it was deleted.
    pub opens: bool,
}

/// A budget reading of one run, per group, rule and window: the highest
/// spend of the readings (one per key for `scope = "each"`).
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetPoint {
    /// The group.
    pub group: String,
    /// The rule.
    pub rule: String,
    /// The window (`daily`, `weekly`, `monthly`, `total`).
    pub window: String,
    /// When the run started.
    pub at: DateTime<Utc>,
    /// Spend in the window, USD.
    pub spend_usd: f64,
    /// The budget, USD.
    pub budget_usd: f64,
}

/// Spend within which a reading counts as having reached its budget (a
/// budget of 50.00 is reached by 50.00).
pub const BUDGET_TOLERANCE_USD: f64 = 1e-9;

/// A group's spend against one budget rule and window over a period.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetLineRow {
    /// The group.
    pub group: String,
    /// The rule.
    pub rule: String,
    /// The window.
    pub window: String,
    /// The highest spend read, USD.
    pub spend_usd: f64,
    /// The budget at the last reading, USD.
    pub budget_usd: f64,
    /// The first reading at or over the budget, if any.
    pub reached_at: Option<DateTime<Utc>>,
}

/// A count of changes as the query groups them.
#[derive(FromRow)]
struct StoredCount {
    grp: String,
    kind: String,
    outcome: String,
    n: i64,
}

/// Distinct keys disabled and re-enabled in a group, as counted.
#[derive(FromRow)]
struct StoredKeyCounts {
    grp: String,
    disabled: i64,
    reenabled: i64,
}

/// A change that moved `disabled`, as the query reads it.
#[derive(FromRow)]
struct StoredTransition {
    key_hash: String,
    key_name: String,
    rule: String,
    at: String,
    opens: i64,
}

/// A budget point as the query reads it.
#[derive(FromRow)]
struct StoredPoint {
    grp: String,
    rule: String,
    win: String,
    at: String,
    spend: f64,
    budget: f64,
}

/// A budget line as the query reads it.
#[derive(FromRow)]
struct StoredLine {
    grp: String,
    rule: String,
    win: String,
    spend: f64,
    budget: f64,
    reached_at: Option<String>,
}

impl Store {
    /// Changes in `[since, until)` counted per group, kind and outcome.
    pub async fn report_change_counts(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        bucket: Bucket,
    ) -> anyhow::Result<Vec<KindOutcomeCount>> {
        // Time buckets count per instant first, in the order of
        // `changes_report` (no sort of every row), then per group.
        let (count, source) = match bucket {
            Bucket::Key | Bucket::Rule => ("COUNT(*)", "changes WHERE at >= $1 AND at < $2"),
            Bucket::Day | Bucket::Week | Bucket::Month | Bucket::All => (
                "CAST(SUM(n) AS BIGINT)",
                "(SELECT at, kind, outcome, COUNT(*) AS n FROM changes
                  WHERE at >= $1 AND at < $2 GROUP BY at, kind, outcome) AS per_instant",
            ),
        };
        let sql = format!(
            "SELECT {} AS grp, kind, outcome, {count} AS n FROM {source}
             GROUP BY grp, kind, outcome ORDER BY grp, kind, outcome",
            bucket.sql(self.dialect())
        );
        let rows: Vec<StoredCount> = self.in_period(&sql, since, until).await?;
        rows.into_iter()
            .map(|row| {
                let kind = &row.kind;
                let outcome = &row.outcome;
                Ok(KindOutcomeCount {
                    kind: ChangeKind::parse(kind)
                        .ok_or_else(|| anyhow!("unknown change kind {kind:?} in the database"))?,
                    outcome: Outcome::parse(outcome)
                        .ok_or_else(|| anyhow!("unknown outcome {outcome:?} in the database"))?,
                    group: row.grp,
                    count: row.n,
                })
            })
            .collect()
    }

    /// Distinct keys disabled and re-enabled by applied changes in
    /// `[since, until)`, per group.
    pub async fn report_key_counts(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        bucket: Bucket,
    ) -> anyhow::Result<Vec<KeyCounts>> {
        let sql = format!(
            "SELECT {} AS grp,
                 COUNT(DISTINCT CASE WHEN disabled_move IN (1, 2) THEN key_hash END) AS disabled,
                 COUNT(DISTINCT CASE WHEN disabled_move = 0 AND kind IN ('release', 'revert')
                                     THEN key_hash END) AS reenabled
             FROM changes {}
             WHERE disabled_move IS NOT NULL AND at >= $1 AND at < $2
             GROUP BY grp ORDER BY grp",
            bucket.sql(self.dialect()),
            self.dialect().pick(INDEXED_BY_DISABLED, "")
        );
        let rows: Vec<StoredKeyCounts> = self.in_period(&sql, since, until).await?;
        Ok(rows
            .into_iter()
            .map(|row| KeyCounts {
                group: row.grp,
                disabled: row.disabled,
                reenabled: row.reenabled,
            })
            .collect())
    }

    /// The latest name recorded for each key changed in `[since, until)`.
    pub async fn report_key_names(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> anyhow::Result<Vec<(String, String)>> {
        let sql = self.dialect().pick(
            // SQLite's bare column: the name of the row with MAX(at).
            "SELECT key_hash, key_name, MAX(at) FROM changes
             WHERE at >= $1 AND at < $2 GROUP BY key_hash",
            "SELECT DISTINCT ON (key_hash) key_hash, key_name, at FROM changes
             WHERE at >= $1 AND at < $2 ORDER BY key_hash, at DESC, id DESC",
        );
        let rows: Vec<(String, String, String)> = self.in_period(sql, since, until).await?;
        Ok(rows
            .into_iter()
            .map(|(hash, name, _)| (hash, name))
            .collect())
    }

    /// `source_error` and `guard_tripped` events in `[since, until)`, counted
    /// per group and kind; events without the group's key or rule are left out.
    pub async fn report_event_counts(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        bucket: Bucket,
    ) -> anyhow::Result<Vec<(String, EventKind, i64)>> {
        let sql = format!(
            "SELECT {} AS grp, kind, COUNT(*) FROM events
             WHERE kind IN ($1, $2) AND at >= $3 AND at < $4
             GROUP BY grp, kind ORDER BY grp, kind",
            bucket.sql(self.dialect())
        );
        let rows: Vec<(Option<String>, String, i64)> = on_pool!(self, |db| {
            sqlx::query_as(&sql)
                .bind(EventKind::SourceError.as_str())
                .bind(EventKind::GuardTripped.as_str())
                .bind(ts(since))
                .bind(ts(until))
                .fetch_all(db)
                .await?
        });
        rows.into_iter()
            .filter_map(|(group, kind, n)| Some((group?, kind, n)))
            .map(|(group, kind, n)| Ok((group, parse_event_kind(&kind)?, n)))
            .collect()
    }

    /// Per group, the number of runs in `[since, until)` in which the
    /// blast-radius guard held back a change of the group.
    pub async fn report_held_runs(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        bucket: Bucket,
    ) -> anyhow::Result<Vec<(String, i64)>> {
        let sql = format!(
            "SELECT {} AS grp, COUNT(DISTINCT run_id) FROM changes
             WHERE at >= $1 AND at < $2 AND outcome = 'held' GROUP BY grp ORDER BY grp",
            bucket.sql(self.dialect())
        );
        let rows = self.in_period(&sql, since, until).await?;
        Ok(rows)
    }

    /// The applied changes that open or close a period in which keywarden
    /// held a key disabled and that matter for `[since, until)`, by key then
    /// time: those in the period, and for each key whose period is still
    /// open at `since` the change that opened it. Every lookup goes through
    /// the partial index `changes_disabled` over the rows' `disabled_move`
    /// (index-only, no JSON read): per key, back
    /// from `since` to its last closing change, then forward to the first
    /// opening one after it.
    pub async fn report_disabled_transitions(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> anyhow::Result<Vec<DisabledTransition>> {
        let sql = format!(
            "WITH RECURSIVE
             moves AS NOT MATERIALIZED (
                 SELECT key_hash, key_name, rule, at, id, disabled_move AS opens
                 FROM changes {} WHERE disabled_move IN (0, 1)),
             keys(h) AS MATERIALIZED (
                 SELECT MIN(key_hash) FROM moves
                 UNION ALL
                 SELECT (SELECT MIN(key_hash) FROM moves WHERE key_hash > h)
                 FROM keys WHERE h IS NOT NULL),
             last_close(h, id) AS MATERIALIZED (
                 SELECT h, (SELECT id FROM moves WHERE key_hash = h AND at < $1 AND opens = 0
                            ORDER BY at DESC, id DESC LIMIT 1)
                 FROM keys WHERE h IS NOT NULL),
             carried(id) AS MATERIALIZED (
                 SELECT (SELECT m.id FROM moves m
                         WHERE m.key_hash = l.h AND m.at >= COALESCE(c.at, '') AND m.at < $1
                           AND m.opens = 1 AND (c.id IS NULL OR (m.at, m.id) > (c.at, c.id))
                         ORDER BY m.at, m.id LIMIT 1)
                 FROM last_close l LEFT JOIN changes c ON c.id = l.id)
             SELECT key_hash, key_name, rule, at, id, opens FROM moves WHERE at >= $1 AND at < $2
             UNION ALL
             SELECT key_hash, key_name, rule, at, id, opens FROM moves WHERE id IN (SELECT id FROM carried)
             ORDER BY key_hash, at, id",
            self.dialect().pick(INDEXED_BY_DISABLED, "")
        );
        let mut out = Vec::new();
        on_pool!(self, |db| {
            let mut rows = sqlx::query_as::<_, StoredTransition>(&sql)
                .bind(ts(since))
                .bind(ts(until))
                .fetch(db);
            while let Some(row) = rows.try_next().await? {
                out.push(DisabledTransition {
                    at: parse_ts(&row.at)?,
                    opens: row.opens == 1,
                    key_hash: row.key_hash,
                    key_name: row.key_name,
                    rule: row.rule,
                });
            }
        });
        Ok(out)
    }

    /// The budget readings recorded by runs started in `[since, until)`
    /// (`budget_readings`), one point per group, rule, window and run,
    /// oldest first. Readings without the group's key (group-scope budgets
    /// under [`Bucket::Key`]) are left out.
    pub async fn report_budget_points(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        bucket: Bucket,
    ) -> anyhow::Result<Vec<BudgetPoint>> {
        let sql = format!(
            "{} SELECT grp, rule, win, at, spend, budget FROM points ORDER BY grp, rule, win, at",
            points_sql(bucket, self.dialect())
        );
        let rows: Vec<StoredPoint> = self.in_period(&sql, since, until).await?;
        rows.into_iter()
            .map(|row| {
                Ok(BudgetPoint {
                    at: parse_ts(&row.at)?,
                    group: row.grp,
                    rule: row.rule,
                    window: row.win,
                    spend_usd: row.spend,
                    budget_usd: row.budget,
                })
            })
            .collect()
    }

    /// The points of [`Store::report_budget_points`] folded per group, rule
    /// and window: the highest spend, the budget at the last point, and the
    /// first point whose spend reached its budget (within
    /// [`BUDGET_TOLERANCE_USD`]); by group, rule and window.
    pub async fn report_budget_lines(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        bucket: Bucket,
    ) -> anyhow::Result<Vec<BudgetLineRow>> {
        let latest = self.dialect().pick(
            // SQLite's bare column: the budget of the row with MAX(at).
            "SELECT grp, rule, win, budget, MAX(at) FROM points GROUP BY grp, rule, win",
            "SELECT DISTINCT ON (grp, rule, win) grp, rule, win, budget FROM points
             ORDER BY grp, rule, win, at DESC",
        );
        let sql = format!(
            "{},
             lines AS (
                 SELECT grp, rule, win, MAX(spend) AS spend,
                        MIN(CASE WHEN spend + $3 >= budget THEN at END) AS reached_at
                 FROM points GROUP BY grp, rule, win),
             latest AS ({latest})
             SELECT grp, rule, win, l.spend, latest.budget, l.reached_at
             FROM lines l JOIN latest USING (grp, rule, win)
             ORDER BY grp, rule, win",
            points_sql(bucket, self.dialect()).replacen(
                "WITH points AS (",
                "WITH points AS MATERIALIZED (",
                1
            )
        );
        let rows: Vec<StoredLine> = on_pool!(self, |db| {
            sqlx::query_as(&sql)
                .bind(ts(since))
                .bind(ts(until))
                .bind(BUDGET_TOLERANCE_USD)
                .fetch_all(db)
                .await?
        });
        rows.into_iter()
            .map(|row| {
                Ok(BudgetLineRow {
                    reached_at: row.reached_at.as_deref().map(parse_ts).transpose()?,
                    group: row.grp,
                    rule: row.rule,
                    window: row.win,
                    spend_usd: row.spend,
                    budget_usd: row.budget,
                })
            })
            .collect()
    }
}

impl Store {
    /// The rows of `sql`, whose `$1` and `$2` are the period's `since` and
    /// `until`.
    async fn in_period<T>(
        &self,
        sql: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> anyhow::Result<Vec<T>>
    where
        T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        Ok(on_pool!(self, |db| {
            sqlx::query_as(sql)
                .bind(ts(since))
                .bind(ts(until))
                .fetch_all(db)
                .await?
        }))
    }
}

/// SQLite's hint to read `changes` through its partial index
/// `changes_disabled` (PostgreSQL's planner needs none).
const INDEXED_BY_DISABLED: &str = "INDEXED BY changes_disabled";

/// The CTE `points`: per group, rule, window and run start in
/// `[$1, $2)`, the highest spend and budget read (index-only over
/// `budget_readings_at`, grouped in its order: no sort).
fn points_sql(bucket: Bucket, dialect: Dialect) -> String {
    let group = bucket.sql(dialect);
    // PostgreSQL's HAVING does not see the output's names.
    let having = dialect.pick("grp", group);
    format!(
        "WITH points AS (
             SELECT {group} AS grp, rule, \"window\" AS win, at,
                    MAX(spend_usd) AS spend, MAX(budget_usd) AS budget
             FROM budget_readings WHERE at >= $1 AND at < $2
             GROUP BY at, rule, win, grp HAVING {having} IS NOT NULL)"
    )
}
