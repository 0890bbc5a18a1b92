//! The `runs`, `changes` and `events` tables: what each run saw and did
//! (SPEC §5). Recording and completing changes also settles their claims
//! (SPEC §4.2, `ClaimWrites`).

use super::backend::{Conn, Dialect, on_conn, on_pool};
use super::batch::JsonRows;
use super::claims::{ClaimWrites, HOLDS_NONE, Settled};
use super::tallies::Tallies;
use super::{Store, parse_event_kind, parse_ts, ts};
use crate::domain::Field;
use crate::domain::event::EventKind;
use crate::domain::timestamp;
use crate::engine::plan::{Change, FieldChange};
use crate::engine::{ChangeKind, Hold, Outcome};
use anyhow::{Context as _, anyhow};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{FromRow, QueryBuilder, Row};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The counts and status a run ends with.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunSummary {
    /// Keys listed.
    pub keys_seen: i64,
    /// Rules evaluated.
    pub rules_evaluated: i64,
    /// Change rows recorded.
    pub changes: i64,
    /// Of those, applied.
    pub applied: i64,
    /// Of those, failed.
    pub failed: i64,
    /// Of those, held by the blast-radius guard.
    pub held: i64,
    /// `ok`, `failed`, `auth_failed` or `error`.
    pub status: String,
    /// What went wrong, for a run that did not end `ok`.
    pub error: Option<String>,
    /// Skipped conditions, conflicts and the like (JSON).
    pub notes: serde_json::Value,
}

/// A recorded change: one key × one rule × one run. Serializes as the JSON
/// object of SPEC §5 (plus `request_id`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeRow {
    /// Its id.
    pub id: i64,
    /// The run it belongs to (`None` for `revert`).
    pub run_id: Option<i64>,
    /// When it was recorded.
    #[serde(serialize_with = "timestamp::serialize")]
    pub at: DateTime<Utc>,
    /// The rule responsible.
    pub rule: String,
    /// The key.
    pub key_hash: String,
    /// The key's name at the time.
    pub key_name: String,
    /// Why.
    pub kind: ChangeKind,
    /// The fields it moves, from → to, as on the wire.
    pub fields: BTreeMap<Field, FieldChange>,
    /// A person's explanation.
    pub reason: String,
    /// What became of it.
    pub outcome: Outcome,
    /// The error, when it failed.
    pub error: Option<String>,
    /// The HTTP status of the PATCH.
    pub http_status: Option<u16>,
    /// PATCH attempts made.
    pub attempts: u32,
    /// Shared by the rows of one PATCH.
    pub request_id: Option<String>,
}

/// Something a run noticed that is not a key change (`source_error`,
/// `guard_tripped`, `auth_failed`, `budget_warning`, `conflict`, …).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventRow {
    /// Its id.
    pub id: i64,
    /// The run, if any.
    pub run_id: Option<i64>,
    /// When.
    #[serde(serialize_with = "timestamp::serialize")]
    pub at: DateTime<Utc>,
    /// What kind of event.
    pub kind: EventKind,
    /// The rule concerned.
    pub rule: Option<String>,
    /// The key concerned.
    pub key_hash: Option<String>,
    /// The details (JSON).
    pub detail: serde_json::Value,
}

/// Which changes `history` lists; every `None` is "any".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryFilter {
    /// At or after.
    pub since: Option<DateTime<Utc>>,
    /// Before.
    pub until: Option<DateTime<Utc>>,
    /// One key.
    pub key_hash: Option<String>,
    /// One rule.
    pub rule: Option<String>,
    /// One kind.
    pub kind: Option<ChangeKind>,
    /// One outcome.
    pub outcome: Option<Outcome>,
    /// At most this many (the newest).
    pub limit: Option<i64>,
    /// Skip this many of the newest first (a page after the first).
    pub offset: Option<i64>,
}

/// A row's `disabled_move` (`migrations/sqlite/0007_disabled_transitions.sql`)
/// once its outcome is `applied`: 1 an assert/reassert disabled the key, 0 a
/// release, drift or revert re-enabled it or it was deleted, 2 a release or
/// revert disabled it, NULL it did not move `disabled`. An SQL expression
/// over the row's `kind` and `fields` in `dialect`'s JSON functions.
fn disabled_move(dialect: Dialect) -> String {
    let json = dialect.pick(DisabledJson::SQLITE, DisabledJson::POSTGRES);
    let DisabledJson {
        mentioned,
        to,
        from,
        yes,
        no,
    } = json;
    format!(
        "CASE WHEN kind = 'deleted' THEN 0
     WHEN {mentioned} = 0 THEN NULL
     WHEN kind IN ('assert', 'reassert') AND {to} = {yes} THEN 1
     WHEN kind IN ('release', 'drift', 'revert') AND {from} = {yes}
          AND {to} = {no} THEN 0
     WHEN kind IN ('release', 'revert') AND {to} = {yes} THEN 2
END"
    )
}

/// How a dialect reads the `disabled` move of a row's `fields` JSON.
struct DisabledJson {
    /// Where `"disabled"` starts in `fields`, 0 when it is not there.
    mentioned: &'static str,
    /// The `to` of `disabled`.
    to: &'static str,
    /// The `from` of `disabled`.
    from: &'static str,
    /// `true` as the two above read it.
    yes: &'static str,
    /// `false` as the two above read it.
    no: &'static str,
}

impl DisabledJson {
    /// SQLite's JSON1 functions (`true` reads as 1).
    const SQLITE: DisabledJson = DisabledJson {
        mentioned: "instr(fields, '\"disabled\"')",
        to: "json_extract(fields, '$.disabled.to')",
        from: "json_extract(fields, '$.disabled.from')",
        yes: "1",
        no: "0",
    };
    /// PostgreSQL's `jsonb` path operator (`true` reads as `'true'`).
    const POSTGRES: DisabledJson = DisabledJson {
        mentioned: "strpos(fields, '\"disabled\"')",
        to: "(fields::jsonb #>> '{disabled,to}')",
        from: "(fields::jsonb #>> '{disabled,from}')",
        yes: "'true'",
        no: "'false'",
    };
}

pub(super) const CHANGE_COLUMNS: &str = "id, run_id, at, rule, key_hash, key_name, kind, fields, reason, \
     outcome, error, http_status, attempts, request_id";

impl Store {
    /// Records the start of a run; returns its id.
    pub async fn start_run(
        &self,
        trigger: &str,
        at: DateTime<Utc>,
        dry_run: bool,
    ) -> anyhow::Result<i64> {
        let id = on_pool!(self, |db| {
            sqlx::query_scalar(
                "INSERT INTO runs (started_at, trigger, dry_run) VALUES ($1, $2, $3) RETURNING id",
            )
            .bind(ts(at))
            .bind(trigger)
            .bind(i64::from(dry_run))
            .fetch_one(db)
            .await?
        });
        Ok(id)
    }

    /// Records the end of a run and its counts.
    pub async fn finish_run(
        &self,
        run_id: i64,
        at: DateTime<Utc>,
        summary: &RunSummary,
    ) -> anyhow::Result<()> {
        let done = on_pool!(self, |db| {
            sqlx::query(
                "UPDATE runs SET finished_at = $1, keys_seen = $2, rules_evaluated = $3,
                     changes = $4, applied = $5, failed = $6, held = $7, status = $8, error = $9,
                     notes = $10
                 WHERE id = $11",
            )
            .bind(ts(at))
            .bind(summary.keys_seen)
            .bind(summary.rules_evaluated)
            .bind(summary.changes)
            .bind(summary.applied)
            .bind(summary.failed)
            .bind(summary.held)
            .bind(&summary.status)
            .bind(&summary.error)
            .bind(summary.notes.to_string())
            .bind(run_id)
            .execute(db)
            .await?
            .rows_affected()
        });
        anyhow::ensure!(done == 1, "no run {run_id} to finish");
        Ok(())
    }

    /// Records planned changes in one transaction, before anything is sent
    /// (SPEC §4.5). Each row's outcome is the change's `held`, else
    /// `initial`, else `pending`; the rows of one key to be sent share a
    /// `request_id`. A pending `assert`/`reassert` writes its claims in the
    /// same transaction (keeping the original of an existing claim). Returns
    /// the row ids in the order of `changes`.
    pub async fn record_changes(
        &self,
        run_id: Option<i64>,
        at: DateTime<Utc>,
        changes: &[Change],
        initial: Option<Outcome>,
    ) -> anyhow::Result<Vec<i64>> {
        // The write lock first: the ids after the largest one read here stay
        // free until the commit.
        let mut tx = self.write().await?;
        let sql = insert_changes_sql(self.dialect());
        let rows = on_conn!(tx.conn(), |c| {
            let last: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM changes")
                .fetch_one(&mut *c)
                .await?;
            let rows = new_rows(changes, initial, last.unwrap_or(0));
            if !rows.is_empty() {
                sqlx::query(&sql)
                    .bind(rows_json(&rows))
                    .bind(run_id)
                    .bind(ts(at))
                    .execute(&mut *c)
                    .await?;
            }
            rows
        });
        let mut claims = ClaimWrites::default();
        let mut tallies = Tallies::default();
        let stored_at = ts(at);
        for row in &rows {
            claims.add(settled(row.id, row.change, at), row.outcome);
            tallies.add(&stored_at, row.change.kind, row.outcome);
        }
        claims.apply(&mut tx, self.dialect()).await?;
        tallies.apply(&mut tx, self.dialect()).await?;
        tx.commit().await?;
        Ok(rows.iter().map(|row| row.id).collect())
    }

    /// Completes rows after their PATCH, in one transaction. A `failed` row
    /// gives up the claims it wrote (the key still has the row's `from`);
    /// an applied `release`/`drift`/`revert` drops the claims of its fields,
    /// an applied `deleted` every claim of its key. Only open rows
    /// (`pending`, `unknown`) complete: a settled outcome is never
    /// rewritten, and naming a settled row is an error.
    pub async fn complete_changes(
        &self,
        ids: &[i64],
        outcome: Outcome,
        http_status: Option<u16>,
        attempts: u32,
        error: Option<&str>,
    ) -> anyhow::Result<()> {
        let took = BTreeSet::new();
        self.complete(ids, outcome, &took, http_status, attempts, error)
            .await
    }

    /// Completes the row `id` with `outcome` (`failed` when only some of
    /// its requests took: a PATCH and a guardrail call, SPEC §12): the
    /// fields of `took` keep the claims the row wrote (or lose those it
    /// released), as after an applied row; the others go as `outcome` says.
    pub async fn complete_change_in_part(
        &self,
        id: i64,
        outcome: Outcome,
        took: &BTreeSet<Field>,
        http_status: Option<u16>,
        attempts: u32,
        error: Option<&str>,
    ) -> anyhow::Result<()> {
        self.complete(&[id], outcome, took, http_status, attempts, error)
            .await
    }

    /// Completes rows with `outcome`, the fields of `took` as if applied.
    async fn complete(
        &self,
        ids: &[i64],
        outcome: Outcome,
        took: &BTreeSet<Field>,
        http_status: Option<u16>,
        attempts: u32,
        error: Option<&str>,
    ) -> anyhow::Result<()> {
        let mut tx = self.write().await?;
        let ids_in = self.dialect().pick(
            "SELECT value FROM json_each($5)",
            "SELECT value::bigint FROM jsonb_array_elements_text($5::jsonb)",
        );
        let sql = format!(
            "UPDATE changes SET outcome = $1, http_status = $2, attempts = $3, error = $4,
                 disabled_move = CASE WHEN $1 = 'applied' THEN {} END
             WHERE id IN ({ids_in}) AND outcome IN ('pending', 'unknown')
             RETURNING id, at, rule, key_hash, kind, fields,
                 (SELECT {held} FROM claims
                  WHERE claims.key_hash = changes.key_hash AND claims.change_id = changes.id)
                 AS held",
            disabled_move(self.dialect()),
            held = self
                .dialect()
                .pick("group_concat(field, ',')", "string_agg(field, ',')"),
        );
        let rows: Vec<StoredCompleted> = on_conn!(tx.conn(), |c| {
            sqlx::query_as(&sql)
                .bind(outcome.as_str())
                .bind(http_status.map(i64::from))
                .bind(i64::from(attempts))
                .bind(error)
                .bind(serde_json::to_string(ids)?)
                .fetch_all(&mut *c)
                .await?
        });
        let mut tallies = Tallies::default();
        let completed = rows
            .into_iter()
            .inspect(|row| {
                if let Some(kind) = ChangeKind::parse(&row.kind) {
                    tallies.add(&row.at, kind, outcome);
                }
            })
            .map(|row| completed_row(row).map(|change| (change.id, change)))
            .collect::<anyhow::Result<HashMap<_, _>>>()?;
        let mut parts: Vec<Parts<'_>> = Vec::with_capacity(ids.len());
        for id in ids {
            let change = completed
                .get(id)
                .ok_or_else(|| anyhow!("no open change {id} to complete"))?;
            let (applied, rest): (BTreeMap<_, _>, BTreeMap<_, _>) = change
                .fields
                .iter()
                .map(|(field, fc)| (*field, *fc))
                .partition(|(field, _)| took.contains(field));
            parts.push(Parts {
                change,
                applied,
                rest,
            });
        }
        let mut claims = ClaimWrites::default();
        for part in &parts {
            let settled = |fields| Settled {
                id: part.change.id,
                kind: part.change.kind,
                key_hash: &part.change.key_hash,
                rule: &part.change.rule,
                fields,
                at: part.change.at,
                held: &part.change.held,
            };
            if !part.applied.is_empty() {
                claims.add(settled(&part.applied), Outcome::Applied);
            }
            claims.add(settled(&part.rest), outcome);
        }
        claims.apply(&mut tx, self.dialect()).await?;
        tallies.apply(&mut tx, self.dialect()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Rows still `pending` or `unknown`, oldest first: a crash or an
    /// ambiguous failure left them for the next run to resolve.
    pub async fn open_changes(&self) -> anyhow::Result<Vec<ChangeRow>> {
        let sql = format!(
            "SELECT {CHANGE_COLUMNS} FROM changes WHERE outcome IN ('pending', 'unknown') ORDER BY id"
        );
        let rows: Vec<StoredChange> =
            on_pool!(self, |db| sqlx::query_as(&sql).fetch_all(db).await?);
        rows.into_iter().map(stored_change).collect()
    }

    /// One change by id.
    pub async fn change(&self, id: i64) -> anyhow::Result<Option<ChangeRow>> {
        let sql = format!("SELECT {CHANGE_COLUMNS} FROM changes WHERE id = $1");
        let row: Option<StoredChange> = on_pool!(self, |db| {
            sqlx::query_as(&sql).bind(id).fetch_optional(db).await?
        });
        row.map(stored_change).transpose()
    }

    /// The changes that pass `filter`, newest first.
    pub async fn changes(&self, filter: &HistoryFilter) -> anyhow::Result<Vec<ChangeRow>> {
        let rows: Vec<StoredChange> = on_pool!(self, |db| {
            let mut query =
                QueryBuilder::new(format!("SELECT {CHANGE_COLUMNS} FROM changes WHERE 1 = 1"));
            if let Some(since) = filter.since {
                query.push(" AND at >= ").push_bind(ts(since));
            }
            if let Some(until) = filter.until {
                query.push(" AND at < ").push_bind(ts(until));
            }
            if let Some(key_hash) = &filter.key_hash {
                query.push(" AND key_hash = ").push_bind(key_hash.clone());
            }
            if let Some(rule) = &filter.rule {
                query.push(" AND rule = ").push_bind(rule.clone());
            }
            if let Some(kind) = filter.kind {
                query.push(" AND kind = ").push_bind(kind.as_str());
            }
            if let Some(outcome) = filter.outcome {
                query.push(" AND outcome = ").push_bind(outcome.as_str());
            }
            query.push(" ORDER BY at DESC, id DESC");
            if let Some(limit) = filter.limit {
                query.push(" LIMIT ").push_bind(limit);
                if let Some(offset) = filter.offset {
                    query.push(" OFFSET ").push_bind(offset);
                }
            }
            query.build_query_as().fetch_all(db).await?
        });
        rows.into_iter().map(stored_change).collect()
    }

    /// The distinct key hashes that changes recorded under the key name `name`.
    pub async fn key_hashes_named(&self, name: &str) -> anyhow::Result<Vec<String>> {
        let hashes = on_pool!(self, |db| {
            sqlx::query_scalar(
                "SELECT DISTINCT key_hash FROM changes WHERE key_name = $1 ORDER BY key_hash",
            )
            .bind(name)
            .fetch_all(db)
            .await?
        });
        Ok(hashes)
    }

    /// The name most recently recorded for the key `key_hash`, if any.
    pub async fn key_name(&self, key_hash: &str) -> anyhow::Result<Option<String>> {
        let name = on_pool!(self, |db| {
            sqlx::query_scalar(
                "SELECT key_name FROM changes WHERE key_hash = $1 ORDER BY at DESC, id DESC LIMIT 1",
            )
            .bind(key_hash)
            .fetch_optional(db)
            .await?
        });
        Ok(name)
    }

    /// Whether any change was recorded for the key `key_hash`.
    pub async fn key_hash_known(&self, key_hash: &str) -> anyhow::Result<bool> {
        let known = on_pool!(self, |db| {
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM changes WHERE key_hash = $1)")
                .bind(key_hash)
                .fetch_one(db)
                .await?
        });
        Ok(known)
    }

    /// Records an event; returns its id. It takes the write lock, as every
    /// insert the notification outbox reads does (`Store::outbox_batch`).
    pub async fn record_event(
        &self,
        run_id: Option<i64>,
        at: DateTime<Utc>,
        kind: EventKind,
        rule: Option<&str>,
        key_hash: Option<&str>,
        detail: &serde_json::Value,
    ) -> anyhow::Result<i64> {
        let mut tx = self.write().await?;
        let id = insert_event(tx.conn(), run_id, at, kind, rule, key_hash, detail).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Events in `[since, until)`, oldest first.
    pub async fn events(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> anyhow::Result<Vec<EventRow>> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE at >= $1 AND at < $2 ORDER BY at, id"
        );
        let rows: Vec<StoredEvent> = on_pool!(self, |db| {
            sqlx::query_as(&sql)
                .bind(ts(since))
                .bind(ts(until))
                .fetch_all(db)
                .await?
        });
        rows.into_iter().map(stored_event).collect()
    }
}

/// A change about to be recorded: its id, outcome and request id.
struct NewRow<'a> {
    id: i64,
    change: &'a Change,
    outcome: Outcome,
    request_id: Option<String>,
}

/// The rows `record_changes` writes, ids following `last_id` (as SQLite
/// would number them). A row to be sent takes the request id of its key's
/// first row to be sent, `req-{that row's id}`.
fn new_rows(changes: &[Change], initial: Option<Outcome>, last_id: i64) -> Vec<NewRow<'_>> {
    let mut request_ids: HashMap<&str, String> = HashMap::new();
    changes
        .iter()
        .zip(last_id + 1..)
        .map(|(change, id)| {
            let outcome = change
                .held
                .as_ref()
                .map(Hold::outcome)
                .or(initial)
                .unwrap_or(Outcome::Pending);
            let sent = outcome == Outcome::Pending && change.sends_patch();
            let request_id = sent.then(|| {
                request_ids
                    .entry(&change.key_hash)
                    .or_insert_with(|| format!("req-{id}"))
                    .clone()
            });
            NewRow {
                id,
                change,
                outcome,
                request_id,
            }
        })
        .collect()
}

/// The statement `record_changes` inserts its rows with: `$1` the rows as
/// [`rows_json`] writes them, `$2` the run, `$3` when. A row recorded
/// `applied` gets its `disabled_move` in the same statement.
fn insert_changes_sql(dialect: Dialect) -> String {
    let rows = JsonRows { dialect, param: 1 };
    let (id, rule, key_hash, key_name, kind, fields, reason, outcome, request_id) = (
        rows.int(0),
        rows.text(1),
        rows.text(2),
        rows.text(3),
        rows.text(4),
        rows.text(5),
        rows.text(6),
        rows.text(7),
        rows.text(8),
    );
    format!(
        "INSERT INTO changes (id, run_id, at, rule, key_hash, key_name, kind, fields, reason,
                              outcome, request_id, attempts, disabled_move)
         SELECT id, $2, $3, rule, key_hash, key_name, kind, fields, reason, outcome,
                request_id, 0, CASE WHEN outcome = 'applied' THEN {disabled_move} END
         FROM (SELECT {id} AS id, {rule} AS rule, {key_hash} AS key_hash,
                      {key_name} AS key_name, {kind} AS kind, {fields} AS fields,
                      {reason} AS reason, {outcome} AS outcome, {request_id} AS request_id
               FROM {table}) AS recorded",
        disabled_move = disabled_move(dialect),
        table = rows.table(),
    )
}

/// The rows of `record_changes` as one JSON array for [`insert_changes_sql`]:
/// `[id, rule, key_hash, key_name, kind, fields, reason, outcome, request_id]` each.
fn rows_json(rows: &[NewRow<'_>]) -> String {
    let rows: Vec<_> = rows
        .iter()
        .map(|row| {
            let change = row.change;
            (
                row.id,
                &change.rule,
                &change.key_hash,
                &change.key_name,
                change.kind.as_str(),
                fields_json(&change.fields),
                &change.reason,
                row.outcome.as_str(),
                &row.request_id,
            )
        })
        .collect();
    serde_json::to_string(&rows).expect("change rows serialize")
}

/// The change row `id` recording `change` at `at`, as the claims see it.
fn settled(id: i64, change: &Change, at: DateTime<Utc>) -> Settled<'_> {
    Settled {
        id,
        kind: change.kind,
        key_hash: &change.key_hash,
        rule: &change.rule,
        fields: &change.fields,
        at,
        held: HOLDS_NONE,
    }
}

/// The stored JSON of a change's fields: `{"field": {"from": v, "to": v}}`.
fn fields_json(fields: &BTreeMap<Field, FieldChange>) -> String {
    serde_json::to_string(fields).expect("field changes serialize")
}

/// The columns [`StoredEvent`] reads.
pub(super) const EVENT_COLUMNS: &str = "id, run_id, at, kind, rule, key_hash, detail";

/// An event row as stored, selected as [`EVENT_COLUMNS`] on either backend.
#[derive(FromRow)]
pub(super) struct StoredEvent {
    id: i64,
    run_id: Option<i64>,
    at: String,
    kind: String,
    rule: Option<String>,
    key_hash: Option<String>,
    detail: String,
}

/// Reads an event row as stored.
pub(super) fn stored_event(row: StoredEvent) -> anyhow::Result<EventRow> {
    Ok(EventRow {
        id: row.id,
        run_id: row.run_id,
        at: parse_ts(&row.at)?,
        kind: parse_event_kind(&row.kind)?,
        rule: row.rule,
        key_hash: row.key_hash,
        detail: serde_json::from_str(&row.detail).context("bad event detail in the database")?,
    })
}

/// A change row as stored, selected as [`CHANGE_COLUMNS`] on either backend.
#[derive(FromRow)]
pub(super) struct StoredChange {
    id: i64,
    run_id: Option<i64>,
    at: String,
    rule: String,
    key_hash: String,
    key_name: String,
    kind: String,
    fields: String,
    reason: String,
    outcome: String,
    error: Option<String>,
    http_status: Option<i64>,
    attempts: i64,
    request_id: Option<String>,
}

/// Reads a change row selected as [`CHANGE_COLUMNS`], from either backend.
pub(super) fn change_row<'r, R: Row>(row: &'r R) -> anyhow::Result<ChangeRow>
where
    StoredChange: FromRow<'r, R>,
{
    stored_change(StoredChange::from_row(row)?)
}

/// Reads a change row as stored.
pub(super) fn stored_change(row: StoredChange) -> anyhow::Result<ChangeRow> {
    let id = row.id;
    let outcome = &row.outcome;
    Ok(ChangeRow {
        id,
        run_id: row.run_id,
        at: parse_ts(&row.at)?,
        kind: change_kind(id, &row.kind)?,
        fields: change_fields(id, &row.fields)?,
        outcome: Outcome::parse(outcome)
            .ok_or_else(|| anyhow!("change {id}: unknown outcome {outcome:?}"))?,
        http_status: row
            .http_status
            .map(u16::try_from)
            .transpose()
            .with_context(|| format!("change {id}: bad HTTP status"))?,
        attempts: u32::try_from(row.attempts)
            .with_context(|| format!("change {id}: bad attempts"))?,
        rule: row.rule,
        key_hash: row.key_hash,
        key_name: row.key_name,
        reason: row.reason,
        error: row.error,
        request_id: row.request_id,
    })
}

/// A completed row as the completing `UPDATE` returns it: the columns its
/// claims need, as stored, and the fields whose claim it holds
/// (comma-separated, NULL for none).
#[derive(FromRow)]
struct StoredCompleted {
    id: i64,
    at: String,
    rule: String,
    key_hash: String,
    kind: String,
    fields: String,
    held: Option<String>,
}

/// A completed row as its claims see it.
struct Completed {
    id: i64,
    at: DateTime<Utc>,
    rule: String,
    key_hash: String,
    kind: ChangeKind,
    fields: BTreeMap<Field, FieldChange>,
    held: BTreeSet<Field>,
}

/// Reads a completed row as stored.
fn completed_row(row: StoredCompleted) -> anyhow::Result<Completed> {
    let id = row.id;
    Ok(Completed {
        id,
        at: parse_ts(&row.at)?,
        kind: change_kind(id, &row.kind)?,
        fields: change_fields(id, &row.fields)?,
        held: row
            .held
            .iter()
            .flat_map(|held| held.split(','))
            .map(|name| {
                Field::parse(name)
                    .ok_or_else(|| anyhow!("change {id}: unknown field {name:?} in a claim"))
            })
            .collect::<anyhow::Result<_>>()?,
        rule: row.rule,
        key_hash: row.key_hash,
    })
}

/// The stored `kind` of the change `id`.
fn change_kind(id: i64, kind: &str) -> anyhow::Result<ChangeKind> {
    ChangeKind::parse(kind).ok_or_else(|| anyhow!("change {id}: unknown kind {kind:?}"))
}

/// The stored `fields` of the change `id`.
fn change_fields(id: i64, fields: &str) -> anyhow::Result<BTreeMap<Field, FieldChange>> {
    parse_fields(fields).with_context(|| format!("change {id}: bad fields {fields}"))
}

fn parse_fields(json: &str) -> anyhow::Result<BTreeMap<Field, FieldChange>> {
    let map: BTreeMap<String, BTreeMap<String, serde_json::Value>> = serde_json::from_str(json)?;
    map.into_iter()
        .map(|(name, change)| {
            let field = Field::parse(&name).ok_or_else(|| anyhow!("unknown field {name:?}"))?;
            let side = |which: &str| {
                change
                    .get(which)
                    .and_then(|v| crate::domain::FieldValue::from_json(field, v))
                    .ok_or_else(|| anyhow!("bad {which} of {name}"))
            };
            Ok((
                field,
                FieldChange {
                    from: side("from")?,
                    to: side("to")?,
                },
            ))
        })
        .collect()
}

/// Inserts one event row on `conn` (a write transaction's, which holds
/// the write lock the notification outbox relies on); returns its id.
pub(super) async fn insert_event(
    conn: Conn<'_>,
    run_id: Option<i64>,
    at: DateTime<Utc>,
    kind: EventKind,
    rule: Option<&str>,
    key_hash: Option<&str>,
    detail: &serde_json::Value,
) -> anyhow::Result<i64> {
    Ok(on_conn!(conn, |c| {
        sqlx::query_scalar(
            "INSERT INTO events (run_id, at, kind, rule, key_hash, detail)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(run_id)
        .bind(ts(at))
        .bind(kind.as_str())
        .bind(rule)
        .bind(key_hash)
        .bind(detail.to_string())
        .fetch_one(&mut *c)
        .await?
    }))
}

/// A completed row's fields: those whose request took, and the others.
struct Parts<'a> {
    change: &'a Completed,
    applied: BTreeMap<Field, FieldChange>,
    rest: BTreeMap<Field, FieldChange>,
}
