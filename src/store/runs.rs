//! The `runs`, `changes` and `events` tables: what each run saw and did
//! (SPEC §5), and the claims each change makes or gives back (SPEC §4.2).

use super::claims::field_value;
use super::{Store, parse_ts, ts};
use crate::engine::plan::{Change, FieldChange};
use crate::engine::{ChangeKind, Outcome};
use crate::openrouter::model::Field;
use anyhow::{Context as _, anyhow};
use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row as _, Sqlite, SqliteConnection};
use std::collections::{BTreeMap, HashMap};

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
    #[serde(serialize_with = "serialize_ts")]
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
    #[serde(serialize_with = "serialize_ts")]
    pub at: DateTime<Utc>,
    /// What kind of event.
    pub kind: String,
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
}

const CHANGE_COLUMNS: &str = "id, run_id, at, rule, key_hash, key_name, kind, fields, reason, \
     outcome, error, http_status, attempts, request_id";

impl Store {
    /// Records the start of a run; returns its id.
    pub async fn start_run(
        &self,
        trigger: &str,
        at: DateTime<Utc>,
        dry_run: bool,
    ) -> anyhow::Result<i64> {
        let id = sqlx::query_scalar(
            "INSERT INTO runs (started_at, trigger, dry_run) VALUES (?, ?, ?) RETURNING id",
        )
        .bind(ts(at))
        .bind(trigger)
        .bind(dry_run)
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    /// Records the end of a run and its counts.
    pub async fn finish_run(
        &self,
        run_id: i64,
        at: DateTime<Utc>,
        summary: &RunSummary,
    ) -> anyhow::Result<()> {
        let done = sqlx::query(
            "UPDATE runs SET finished_at = ?, keys_seen = ?, rules_evaluated = ?, changes = ?,
                 applied = ?, failed = ?, held = ?, status = ?, error = ?, notes = ?
             WHERE id = ?",
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
        .execute(&self.pool)
        .await?;
        anyhow::ensure!(done.rows_affected() == 1, "no run {run_id} to finish");
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
        let mut tx = self.pool.begin().await?;
        let mut ids = Vec::with_capacity(changes.len());
        let mut request_ids: HashMap<&str, String> = HashMap::new();
        for change in changes {
            let outcome = change.held.or(initial).unwrap_or(Outcome::Pending);
            let sent = outcome == Outcome::Pending && change.sends_patch();
            let request_id = if sent {
                request_ids.get(change.key_hash.as_str()).cloned()
            } else {
                None
            };
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO changes (run_id, at, rule, key_hash, key_name, kind, fields, reason,
                                      outcome, attempts, request_id)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?) RETURNING id",
            )
            .bind(run_id)
            .bind(ts(at))
            .bind(&change.rule)
            .bind(&change.key_hash)
            .bind(&change.key_name)
            .bind(change.kind.as_str())
            .bind(fields_json(&change.fields))
            .bind(&change.reason)
            .bind(outcome.as_str())
            .bind(&request_id)
            .fetch_one(&mut *tx)
            .await?;
            if sent && request_id.is_none() {
                let request_id = format!("req-{id}");
                sqlx::query("UPDATE changes SET request_id = ? WHERE id = ?")
                    .bind(&request_id)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                request_ids.insert(&change.key_hash, request_id);
            }
            let row = Settled {
                id,
                kind: change.kind,
                key_hash: &change.key_hash,
                rule: &change.rule,
                fields: &change.fields,
            };
            settle_claims(&mut tx, &row, outcome, at).await?;
            ids.push(id);
        }
        tx.commit().await?;
        Ok(ids)
    }

    /// Completes rows after their PATCH, in one transaction. A `failed` row
    /// gives up the claims it wrote (the key still has the row's `from`);
    /// an applied `release`/`drift`/`revert` drops the claims of its fields,
    /// an applied `deleted` every claim of its key.
    pub async fn complete_changes(
        &self,
        ids: &[i64],
        outcome: Outcome,
        http_status: Option<u16>,
        attempts: u32,
        error: Option<&str>,
    ) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        for &id in ids {
            let row = sqlx::query(&format!(
                "UPDATE changes SET outcome = ?, http_status = ?, attempts = ?, error = ?
                 WHERE id = ? RETURNING {CHANGE_COLUMNS}"
            ))
            .bind(outcome.as_str())
            .bind(http_status)
            .bind(attempts)
            .bind(error)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| anyhow!("no change {id} to complete"))?;
            let change = change_row(&row)?;
            let settled = Settled {
                id,
                kind: change.kind,
                key_hash: &change.key_hash,
                rule: &change.rule,
                fields: &change.fields,
            };
            settle_claims(&mut tx, &settled, outcome, change.at).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Rows still `pending` or `unknown`, oldest first: a crash or an
    /// ambiguous failure left them for the next run to resolve.
    pub async fn open_changes(&self) -> anyhow::Result<Vec<ChangeRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {CHANGE_COLUMNS} FROM changes WHERE outcome IN ('pending', 'unknown') ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(change_row).collect()
    }

    /// One change by id.
    pub async fn change(&self, id: i64) -> anyhow::Result<Option<ChangeRow>> {
        let row = sqlx::query(&format!(
            "SELECT {CHANGE_COLUMNS} FROM changes WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(change_row).transpose()
    }

    /// The changes that pass `filter`, newest first.
    pub async fn changes(&self, filter: &HistoryFilter) -> anyhow::Result<Vec<ChangeRow>> {
        let mut query: QueryBuilder<Sqlite> =
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
        }
        let rows = query.build().fetch_all(&self.pool).await?;
        rows.iter().map(change_row).collect()
    }

    /// The distinct key hashes that changes recorded under the key name `name`.
    pub async fn key_hashes_named(&self, name: &str) -> anyhow::Result<Vec<String>> {
        let hashes = sqlx::query_scalar(
            "SELECT DISTINCT key_hash FROM changes WHERE key_name = ? ORDER BY key_hash",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        Ok(hashes)
    }

    /// The name most recently recorded for the key `key_hash`, if any.
    pub async fn key_name(&self, key_hash: &str) -> anyhow::Result<Option<String>> {
        let name = sqlx::query_scalar(
            "SELECT key_name FROM changes WHERE key_hash = ? ORDER BY at DESC, id DESC LIMIT 1",
        )
        .bind(key_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(name)
    }

    /// Whether any change was recorded for the key `key_hash`.
    pub async fn key_hash_known(&self, key_hash: &str) -> anyhow::Result<bool> {
        let known = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM changes WHERE key_hash = ?)")
            .bind(key_hash)
            .fetch_one(&self.pool)
            .await?;
        Ok(known)
    }

    /// Records an event; returns its id.
    pub async fn record_event(
        &self,
        run_id: Option<i64>,
        at: DateTime<Utc>,
        kind: &str,
        rule: Option<&str>,
        key_hash: Option<&str>,
        detail: &serde_json::Value,
    ) -> anyhow::Result<i64> {
        let id = sqlx::query_scalar(
            "INSERT INTO events (run_id, at, kind, rule, key_hash, detail) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(run_id)
        .bind(ts(at))
        .bind(kind)
        .bind(rule)
        .bind(key_hash)
        .bind(detail.to_string())
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    /// Events in `[since, until)`, oldest first.
    pub async fn events(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> anyhow::Result<Vec<EventRow>> {
        let rows = sqlx::query(
            "SELECT id, run_id, at, kind, rule, key_hash, detail FROM events
             WHERE at >= ? AND at < ? ORDER BY at, id",
        )
        .bind(ts(since))
        .bind(ts(until))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let detail: &str = row.get("detail");
                Ok(EventRow {
                    id: row.get("id"),
                    run_id: row.get("run_id"),
                    at: parse_ts(row.get("at"))?,
                    kind: row.get("kind"),
                    rule: row.get("rule"),
                    key_hash: row.get("key_hash"),
                    detail: serde_json::from_str(detail)
                        .context("bad event detail in the database")?,
                })
            })
            .collect()
    }
}

/// What [`settle_claims`] needs of a change row.
struct Settled<'a> {
    id: i64,
    kind: ChangeKind,
    key_hash: &'a str,
    rule: &'a str,
    fields: &'a BTreeMap<Field, FieldChange>,
}

/// Makes the claims agree with a change row that now has `outcome`.
async fn settle_claims(
    conn: &mut SqliteConnection,
    row: &Settled<'_>,
    outcome: Outcome,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    use ChangeKind::*;
    match (row.kind, outcome) {
        (Assert | Reassert, Outcome::Pending | Outcome::Applied) => {
            for (field, change) in row.fields {
                sqlx::query(
                    "INSERT INTO claims (key_hash, field, rule, original, value, change_id, since)
                     VALUES (?, ?, ?, ?, ?, ?, ?)
                     ON CONFLICT (key_hash, field) DO UPDATE SET rule = excluded.rule,
                         value = excluded.value, change_id = excluded.change_id",
                )
                .bind(row.key_hash)
                .bind(field.as_str())
                .bind(row.rule)
                .bind(change.from.to_json().to_string())
                .bind(change.to.to_json().to_string())
                .bind(row.id)
                .bind(ts(at))
                .execute(&mut *conn)
                .await?;
            }
        }
        (Assert | Reassert, Outcome::Failed) => {
            // The key still has `from`: a claim this row made from nothing
            // (original == from) goes; an older claim stays with the value
            // keywarden had set before, so it is still given back.
            for (field, change) in row.fields {
                let original: Option<String> = sqlx::query_scalar(
                    "SELECT original FROM claims WHERE key_hash = ? AND field = ? AND change_id = ?",
                )
                .bind(row.key_hash)
                .bind(field.as_str())
                .bind(row.id)
                .fetch_optional(&mut *conn)
                .await?;
                let Some(original) = original else { continue };
                let statement = if field_value(*field, &original)? == change.from {
                    "DELETE FROM claims WHERE key_hash = ?2 AND field = ?3"
                } else {
                    "UPDATE claims SET value = ?1 WHERE key_hash = ?2 AND field = ?3"
                };
                sqlx::query(statement)
                    .bind(change.from.to_json().to_string())
                    .bind(row.key_hash)
                    .bind(field.as_str())
                    .execute(&mut *conn)
                    .await?;
            }
        }
        (Release | Drift | Revert, Outcome::Applied) => {
            for field in row.fields.keys() {
                sqlx::query("DELETE FROM claims WHERE key_hash = ? AND field = ?")
                    .bind(row.key_hash)
                    .bind(field.as_str())
                    .execute(&mut *conn)
                    .await?;
            }
        }
        (Deleted, Outcome::Applied) => {
            sqlx::query("DELETE FROM claims WHERE key_hash = ?")
                .bind(row.key_hash)
                .execute(&mut *conn)
                .await?;
        }
        _ => {}
    }
    Ok(())
}

fn serialize_ts<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    ts(*at).serialize(s)
}

/// The stored JSON of a change's fields: `{"field": {"from": v, "to": v}}`.
fn fields_json(fields: &BTreeMap<Field, FieldChange>) -> String {
    serde_json::to_string(fields).expect("field changes serialize")
}

fn change_row(row: &SqliteRow) -> anyhow::Result<ChangeRow> {
    let id: i64 = row.get("id");
    let kind: &str = row.get("kind");
    let outcome: &str = row.get("outcome");
    let fields: &str = row.get("fields");
    Ok(ChangeRow {
        id,
        run_id: row.get("run_id"),
        at: parse_ts(row.get("at"))?,
        rule: row.get("rule"),
        key_hash: row.get("key_hash"),
        key_name: row.get("key_name"),
        kind: ChangeKind::parse(kind)
            .ok_or_else(|| anyhow!("change {id}: unknown kind {kind:?}"))?,
        fields: parse_fields(fields)
            .with_context(|| format!("change {id}: bad fields {fields}"))?,
        reason: row.get("reason"),
        outcome: Outcome::parse(outcome)
            .ok_or_else(|| anyhow!("change {id}: unknown outcome {outcome:?}"))?,
        error: row.get("error"),
        http_status: row.get("http_status"),
        attempts: row.get("attempts"),
        request_id: row.get("request_id"),
    })
}

fn parse_fields(json: &str) -> anyhow::Result<BTreeMap<Field, FieldChange>> {
    let map: BTreeMap<String, BTreeMap<String, serde_json::Value>> = serde_json::from_str(json)?;
    map.into_iter()
        .map(|(name, change)| {
            let field = Field::parse(&name).ok_or_else(|| anyhow!("unknown field {name:?}"))?;
            let side = |which: &str| {
                change
                    .get(which)
                    .and_then(|v| crate::openrouter::model::FieldValue::from_json(field, v))
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
