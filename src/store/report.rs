//! The aggregate queries of `keywarden report` (SPEC §5), over the indexes
//! of `migrations/sqlite/0002_report_indexes.sql`, `0004_budget_readings.sql`
//! and `0007_disabled_transitions.sql`, and the tallies of
//! `0010_change_tallies.sql`. Counts come back per group; the
//! moves of `disabled` come back one row a key (its moves aggregated) and
//! the budget points one row a run, rule and window, folded in Rust (an SQL
//! grouping of them would sort them all). The period is `at >= since AND
//! at < until`, exactly as `history` filters.

use super::backend::{Dialect, on_pool};
use super::{Store, parse_event_kind, parse_ts, ts};
use crate::domain::event::EventKind;
use crate::engine::{ChangeKind, Outcome};
use anyhow::anyhow;
use chrono::{DateTime, Utc};
use futures::TryStreamExt as _;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{FromRow, Row as _};
use std::collections::{BTreeMap, HashMap};

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

/// How an applied change moved a key's `disabled` (`changes.disabled_move`
/// with the change's kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisabledMove {
    /// An assert/reassert disabled the key: opens a period in which
    /// keywarden held it disabled.
    Opens,
    /// A release or revert disabled it: counted as a disable, holds nothing.
    Disables,
    /// A release or revert moved it from disabled to enabled: closes a
    /// period, and counts as a re-enable.
    Reenables,
    /// A drift moved it away from disabled, or it was deleted: closes a period.
    Closes,
}

impl DisabledMove {
    /// The move of [`MOVE_CODE`]; `None` for a code the report does not know.
    fn of(code: i64) -> Option<DisabledMove> {
        match code {
            1 => Some(DisabledMove::Opens),
            2 => Some(DisabledMove::Disables),
            3 => Some(DisabledMove::Reenables),
            0 => Some(DisabledMove::Closes),
            _ => None,
        }
    }
}

/// A row's move as one number: its `disabled_move` (1 opens, 2 disables,
/// 0 closes), and 3 for a close by a release or revert (a re-enable).
const MOVE_CODE: &str =
    "CASE WHEN disabled_move = 0 AND kind IN ('release', 'revert') THEN 3 ELSE disabled_move END";

/// One applied change that moved a key's `disabled`.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyMove {
    /// When.
    pub at: DateTime<Utc>,
    /// The change's rule, as its place in [`DisabledMoves::rules`].
    pub rule: usize,
    /// How it moved `disabled`.
    pub moved: DisabledMove,
    /// The key's name at the time, for a move before the period that
    /// opened a period still open at its start (the report's names of the
    /// keys moved within it are read with the changes').
    pub key_name: Option<String>,
}

/// The moves of one key, in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyMoves {
    /// The key.
    pub key_hash: String,
    /// Its moves.
    pub moves: Vec<KeyMove>,
}

/// The applied changes that moved `disabled` and matter for a report of
/// `[since, until)`: those in the period, and for each key whose period
/// was still open at `since` the move that opened it (before `since`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DisabledMoves {
    /// The rules the moves name, each once.
    pub rules: Vec<String>,
    /// The moves, per key.
    pub keys: Vec<KeyMoves>,
}

impl DisabledMoves {
    /// The place of `rule` in [`DisabledMoves::rules`], added when new.
    fn rule(&mut self, rule: &str) -> usize {
        match self.rules.iter().position(|r| r == rule) {
            Some(i) => i,
            None => {
                self.rules.push(rule.to_string());
                self.rules.len() - 1
            }
        }
    }

    /// Adds the moves of `key_hash` aggregated by the period's query
    /// ([`move_record`] each, separated by [`RS`]), in time order, after
    /// the key's move `carried` over from before the period if it has one.
    fn add_key(
        &mut self,
        key_hash: &str,
        records: &str,
        carried: Option<KeyMove>,
    ) -> anyhow::Result<()> {
        let mut moves: Vec<(i64, KeyMove)> = Vec::new();
        // A key's moves are mostly its one rule's: compared before searched.
        let mut last_rule: Option<usize> = None;
        for record in records.split(RS) {
            let bad =
                || anyhow!("unexpected disabled move {record:?} of key {key_hash} in the database");
            let mut fields = record.splitn(4, US);
            let (Some(at), Some(id), Some(code), Some(rule)) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return Err(bad());
            };
            let id: i64 = id.parse().map_err(|_| bad())?;
            let moved = code
                .parse()
                .ok()
                .and_then(DisabledMove::of)
                .ok_or_else(bad)?;
            let rule = match last_rule {
                Some(i) if self.rules[i] == rule => i,
                _ => self.rule(rule),
            };
            last_rule = Some(rule);
            let key_move = KeyMove {
                at: parse_ts(at)?,
                rule,
                moved,
                key_name: None,
            };
            moves.push((id, key_move));
        }
        // The aggregate's order is not the rows' on every backend (a stable
        // sort of moves already in order is one pass).
        moves.sort_by_key(|(id, m)| (m.at, *id));
        self.keys.push(KeyMoves {
            key_hash: key_hash.to_string(),
            moves: carried
                .into_iter()
                .chain(moves.into_iter().map(|(_, m)| m))
                .collect(),
        });
        Ok(())
    }
}

/// The separator of the moves of one key in the period's aggregate (the
/// ASCII record separator: in no instant, number or rule name).
const RS: char = '\u{1e}';

/// The separator of a move's fields (the ASCII unit separator).
const US: char = '\u{1f}';

/// One move in the period's aggregate, in `dialect`: `at`, `id`, its
/// [`MOVE_CODE`] and its rule, separated by [`US`] (the rule last: only
/// it is free text).
fn move_record(dialect: Dialect) -> String {
    let us = dialect.pick("char(31)", "chr(31)");
    format!("at || {us} || id || {us} || ({MOVE_CODE}) || {us} || rule")
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

impl Store {
    /// Changes in `[since, until)` counted per group, kind and outcome.
    pub async fn report_change_counts(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        bucket: Bucket,
    ) -> anyhow::Result<Vec<KindOutcomeCount>> {
        // Time buckets add up the settled rows' tallies per instant
        // (`change_tallies`: a row a run, not a row a change) and the rows
        // still open, counted through `changes_open`.
        let (count, source) = match bucket {
            Bucket::Key | Bucket::Rule => ("COUNT(*)", "changes WHERE at >= $1 AND at < $2"),
            Bucket::Day | Bucket::Week | Bucket::Month | Bucket::All => (
                "CAST(SUM(n) AS BIGINT)",
                "(SELECT at, kind, outcome, n FROM change_tallies WHERE at >= $1 AND at < $2
                  UNION ALL
                  SELECT at, kind, outcome, COUNT(*) AS n FROM changes
                  WHERE outcome IN ('pending', 'unknown') AND at >= $1 AND at < $2
                  GROUP BY at, kind, outcome) AS per_instant",
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

    /// The applied changes that moved `disabled` and matter for a report
    /// of `[since, until)`, per key in time order: every one in the period
    /// (one index-only scan of the partial index `changes_disabled`, in its
    /// order: no sort), and for each key whose period was still open at
    /// `since` the change that opened it — per key, back from `since` to its
    /// last closing change, then forward to the first opening one after it.
    pub async fn report_disabled_moves(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> anyhow::Result<DisabledMoves> {
        let dialect = self.dialect();
        let indexed = dialect.pick(INDEXED_BY_DISABLED, "");
        // One row a key, its moves aggregated: a year's are hundreds of
        // thousands, each a driver's row of its own otherwise.
        let in_period = format!(
            "SELECT key_hash, {}({}, {}) FROM changes {indexed}
             WHERE disabled_move IS NOT NULL AND at >= $1 AND at < $2
             GROUP BY key_hash",
            dialect.pick("group_concat", "string_agg"),
            move_record(dialect),
            dialect.pick("char(30)", "chr(30)"),
        );
        let carried = format!(
            "WITH RECURSIVE
             moves AS NOT MATERIALIZED (
                 SELECT key_hash, at, id, disabled_move AS opens
                 FROM changes {indexed} WHERE disabled_move IN (0, 1)),
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
             SELECT key_hash, key_name, rule, at, {MOVE_CODE} FROM changes
             WHERE id IN (SELECT id FROM carried)"
        );
        let mut out = DisabledMoves::default();
        let mut carried_moves: BTreeMap<String, KeyMove> = BTreeMap::new();
        on_pool!(self, |db| {
            let mut rows = sqlx::query(&carried).bind(ts(since)).fetch(db);
            while let Some(row) = rows.try_next().await? {
                let code: i64 = row.try_get(4)?;
                let moved = DisabledMove::of(code)
                    .ok_or_else(|| anyhow!("unknown disabled move {code} in the database"))?;
                let key_move = KeyMove {
                    at: parse_ts(row.try_get(3)?)?,
                    rule: out.rule(row.try_get(2)?),
                    moved,
                    key_name: Some(row.try_get(1)?),
                };
                carried_moves.insert(row.try_get(0)?, key_move);
            }
            drop(rows);
            let mut rows = sqlx::query(&in_period)
                .bind(ts(since))
                .bind(ts(until))
                .fetch(db);
            while let Some(row) = rows.try_next().await? {
                let key_hash: &str = row.try_get(0)?;
                let carried = carried_moves.remove(key_hash);
                out.add_key(key_hash, row.try_get(1)?, carried)?;
            }
        });
        // Keys held disabled through the whole period, with no move in it.
        out.keys.extend(
            carried_moves
                .into_iter()
                .map(|(key_hash, key_move)| KeyMoves {
                    key_hash,
                    moves: vec![key_move],
                }),
        );
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
        // The points come in the index's order and are folded here: an
        // SQL grouping by line would sort them all, twice.
        let sql = format!(
            "{} SELECT grp, rule, win, at, spend, budget FROM points",
            points_sql(bucket, self.dialect())
        );
        let mut lines = LineFold::default();
        on_pool!(self, |db| {
            let mut rows = sqlx::query(&sql).bind(ts(since)).bind(ts(until)).fetch(db);
            while let Some(row) = rows.try_next().await? {
                lines.add(
                    [row.try_get(0)?, row.try_get(1)?, row.try_get(2)?],
                    row.try_get(3)?,
                    row.try_get(4)?,
                    row.try_get(5)?,
                );
            }
        });
        lines.finish()
    }
}

/// Budget points folded into lines, per group, rule and window: the
/// highest spend, the budget of the latest point, the earliest point whose
/// spend reached its budget. Points may come in any order (instants are
/// compared as text: every stored one has the same RFC 3339 form).
#[derive(Default)]
struct LineFold {
    /// Line by `group \0 rule \0 window`.
    lines: HashMap<String, Line>,
    /// The key of the point being added, reused.
    key: String,
}

/// A line being folded.
struct Line {
    names: [String; 3],
    spend: f64,
    budget: f64,
    latest: String,
    reached_at: Option<String>,
}

impl LineFold {
    /// Adds the point of `[group, rule, window]` at `at`.
    fn add(&mut self, names: [&str; 3], at: &str, spend: f64, budget: f64) {
        self.key.clear();
        for name in names {
            self.key.push_str(name);
            self.key.push('\0');
        }
        let reached = spend + BUDGET_TOLERANCE_USD >= budget;
        let Some(line) = self.lines.get_mut(self.key.as_str()) else {
            self.lines.insert(
                self.key.clone(),
                Line {
                    names: names.map(str::to_string),
                    spend,
                    budget,
                    latest: at.to_string(),
                    reached_at: reached.then(|| at.to_string()),
                },
            );
            return;
        };
        line.spend = line.spend.max(spend);
        if at > line.latest.as_str() {
            line.budget = budget;
            line.latest.clear();
            line.latest.push_str(at);
        }
        if reached && line.reached_at.as_deref().is_none_or(|r| at < r) {
            line.reached_at = Some(at.to_string());
        }
    }

    /// The lines by group, rule and window.
    fn finish(self) -> anyhow::Result<Vec<BudgetLineRow>> {
        let mut out = self
            .lines
            .into_values()
            .map(|line| {
                let [group, rule, window] = line.names;
                Ok(BudgetLineRow {
                    reached_at: line.reached_at.as_deref().map(parse_ts).transpose()?,
                    group,
                    rule,
                    window,
                    spend_usd: line.spend,
                    budget_usd: line.budget,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        out.sort_by(|a, b| (&a.group, &a.rule, &a.window).cmp(&(&b.group, &b.rule, &b.window)));
        Ok(out)
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
    // The group is a function of the instant, the rule or the key: grouped
    // in the index's order, no sort.
    let by_key = if bucket == Bucket::Key {
        ", key_hash"
    } else {
        ""
    };
    format!(
        "WITH points AS (
             SELECT {group} AS grp, rule, \"window\" AS win, at,
                    MAX(spend_usd) AS spend, MAX(budget_usd) AS budget
             FROM budget_readings WHERE at >= $1 AND at < $2
             GROUP BY at, rule, \"window\"{by_key} HAVING {having} IS NOT NULL)"
    )
}
