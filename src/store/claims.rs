//! The `claims` and `exemptions` tables (SPEC §4.2, §4.3), and the claim
//! writes that follow the outcome of change rows.

use super::backend::{Conn, Dialect, Tx, on_conn, on_pool};
use super::batch::{JsonRows, in_chunks};
use super::{Store, parse_ts, ts};
use crate::domain::{Field, FieldValue};
use crate::engine::plan::FieldChange;
use crate::engine::{ChangeKind, Claim, Exemption, Outcome};
use anyhow::{Context as _, anyhow};
use chrono::{DateTime, Utc};
use sqlx::FromRow;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A claim as stored.
#[derive(FromRow)]
struct StoredClaim {
    key_hash: String,
    field: String,
    rule: String,
    original: String,
    value: String,
    since: String,
}

/// An exemption as stored.
#[derive(FromRow)]
struct StoredExemption {
    id: i64,
    key_hash: String,
    rule: Option<String>,
    until: String,
    reason: String,
    created_at: String,
    held_at: Option<String>,
}

impl Store {
    /// Every claim, by key then field.
    pub async fn claims(&self) -> anyhow::Result<Vec<Claim>> {
        let rows: Vec<StoredClaim> = on_pool!(self, |db| {
            sqlx::query_as(
                "SELECT key_hash, field, rule, original, value, since FROM claims
                 ORDER BY key_hash, field",
            )
            .fetch_all(db)
            .await?
        });
        rows.into_iter()
            .map(|row| {
                let name = &row.field;
                let field = Field::parse(name)
                    .ok_or_else(|| anyhow!("unknown field {name:?} in a claim"))?;
                Ok(Claim {
                    field,
                    original: field_value(field, &row.original)?,
                    value: field_value(field, &row.value)?,
                    since: parse_ts(&row.since)?,
                    rule: row.rule,
                    key_hash: row.key_hash,
                })
            })
            .collect()
    }

    /// Whether keywarden holds a claim on `field` of any key (without
    /// reading every claim).
    pub async fn has_claims_on(&self, field: Field) -> anyhow::Result<bool> {
        Ok(on_pool!(self, |db| {
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM claims WHERE field = $1)")
                .bind(field.as_str())
                .fetch_one(db)
                .await?
        }))
    }

    /// Drops every claim on a key (it was deleted); returns how many.
    pub async fn delete_claims_of_key(&self, key_hash: &str) -> anyhow::Result<u64> {
        Ok(on_pool!(self, |db| {
            sqlx::query("DELETE FROM claims WHERE key_hash = $1")
                .bind(key_hash)
                .execute(db)
                .await?
                .rows_affected()
        }))
    }

    /// Exempts a key (from `rule`, or every rule) until `until`; returns its id.
    pub async fn add_exemption(
        &self,
        key_hash: &str,
        rule: Option<&str>,
        until: DateTime<Utc>,
        reason: &str,
        at: DateTime<Utc>,
    ) -> anyhow::Result<i64> {
        let id = on_pool!(self, |db| {
            sqlx::query_scalar(
                "INSERT INTO exemptions (key_hash, rule, until, reason, created_at)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(key_hash)
            .bind(rule)
            .bind(ts(until))
            .bind(reason)
            .bind(ts(at))
            .fetch_one(db)
            .await?
        });
        Ok(id)
    }

    /// Every exemption, expired ones included, by id.
    pub async fn exemptions(&self) -> anyhow::Result<Vec<Exemption>> {
        let rows: Vec<StoredExemption> = on_pool!(self, |db| {
            sqlx::query_as(
                "SELECT id, key_hash, rule, until, reason, created_at, held_at FROM exemptions
                 ORDER BY id",
            )
            .fetch_all(db)
            .await?
        });
        rows.into_iter()
            .map(|row| {
                Ok(Exemption {
                    id: row.id,
                    until: parse_ts(&row.until)?,
                    held_at: row.held_at.as_deref().map(parse_ts).transpose()?,
                    created_at: parse_ts(&row.created_at)?,
                    key_hash: row.key_hash,
                    rule: row.rule,
                    reason: row.reason,
                })
            })
            .collect()
    }

    /// Removes an exemption; `false` when there is no such id.
    pub async fn remove_exemption(&self, id: i64) -> anyhow::Result<bool> {
        let removed = on_pool!(self, |db| {
            sqlx::query("DELETE FROM exemptions WHERE id = $1")
                .bind(id)
                .execute(db)
                .await?
                .rows_affected()
        });
        Ok(removed > 0)
    }

    /// Records when an exemption first held a change back (later calls keep
    /// the first time).
    pub async fn mark_exemption_held(&self, id: i64, at: DateTime<Utc>) -> anyhow::Result<()> {
        on_pool!(self, |db| {
            sqlx::query("UPDATE exemptions SET held_at = COALESCE(held_at, $1) WHERE id = $2")
                .bind(ts(at))
                .bind(id)
                .execute(db)
                .await?;
        });
        Ok(())
    }
}

/// A change row as its claims see it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Settled<'a> {
    /// The row's id.
    pub id: i64,
    /// Its kind.
    pub kind: ChangeKind,
    /// Its key.
    pub key_hash: &'a str,
    /// Its rule.
    pub rule: &'a str,
    /// The fields it moves.
    pub fields: &'a BTreeMap<Field, FieldChange>,
    /// When it was recorded (the `since` of a claim it makes).
    pub at: DateTime<Utc>,
    /// The fields whose claim was this row's when the row was read, in the
    /// write transaction before any claim write: writing them again as the
    /// first writes would change nothing.
    pub held: &'a BTreeSet<Field>,
}

/// The fields a row just recorded holds: none.
pub(super) const HOLDS_NONE: &BTreeSet<Field> = &BTreeSet::new();

/// One field of a change row.
#[derive(Debug, Clone, Copy)]
struct RowField<'a> {
    row: Settled<'a>,
    field: Field,
    change: &'a FieldChange,
}

/// Claim writes of one sort, for consecutive rows.
enum Batch<'a> {
    /// Claim the fields; an existing claim keeps its original and `since`.
    Claim(Vec<RowField<'a>>),
    /// A failed PATCH: give back what the row claimed.
    GiveBack(Vec<RowField<'a>>),
    /// Drop the claims of the fields.
    Drop(Vec<RowField<'a>>),
    /// Drop every claim of the key.
    DropKey(Vec<Settled<'a>>),
}

/// The claim writes that make the claims agree with change rows and their
/// outcomes, in the order of the rows; consecutive writes of one sort are
/// made together, a few statements for thousands of rows.
#[derive(Default)]
pub(super) struct ClaimWrites<'a> {
    batches: Vec<Batch<'a>>,
}

impl<'a> ClaimWrites<'a> {
    /// Adds the writes for `row`, which now has `outcome`.
    pub fn add(&mut self, row: Settled<'a>, outcome: Outcome) {
        use ChangeKind::*;
        let fields = || {
            row.fields
                .iter()
                .map(|(&field, change)| RowField { row, field, change })
                .collect()
        };
        let next = match (row.kind, outcome) {
            (Assert | Reassert, Outcome::Pending | Outcome::Applied) => Batch::Claim(fields()),
            (Assert | Reassert, Outcome::Failed) => Batch::GiveBack(fields()),
            (Release | Drift | Revert, Outcome::Applied) => Batch::Drop(fields()),
            (Deleted, Outcome::Applied) => Batch::DropKey(vec![row]),
            _ => return,
        };
        match (self.batches.last_mut(), next) {
            (Some(Batch::Claim(last)), Batch::Claim(more))
            | (Some(Batch::GiveBack(last)), Batch::GiveBack(more))
            | (Some(Batch::Drop(last)), Batch::Drop(more)) => last.extend(more),
            (Some(Batch::DropKey(last)), Batch::DropKey(more)) => last.extend(more),
            (_, next) => self.batches.push(next),
        }
    }

    /// Makes the writes, in order, in the write transaction `tx` on a
    /// database of `dialect`.
    pub async fn apply(&self, tx: &mut Tx, dialect: Dialect) -> anyhow::Result<()> {
        for (i, batch) in self.batches.iter().enumerate() {
            match batch {
                Batch::Claim(fields) => {
                    // Before the first write the claims are as the rows were
                    // read: a claim the batch's last row holds stays as it is.
                    let claims: Vec<_> = claim_rows(fields)
                        .into_iter()
                        .filter(|claim| i > 0 || !claim.last.row.held.contains(&claim.last.field))
                        .collect();
                    if claims.is_empty() {
                        continue;
                    }
                    let sql = upsert_claims_sql(dialect);
                    on_conn!(tx.conn(), |c| {
                        sqlx::query(&sql)
                            .bind(claims_json(&claims))
                            .execute(&mut *c)
                            .await?;
                    });
                }
                Batch::GiveBack(fields) => {
                    for f in fields {
                        give_back(tx.conn(), f).await?;
                    }
                }
                Batch::Drop(fields) => on_conn!(tx.conn(), |c| {
                    in_chunks(
                        c,
                        "DELETE FROM claims WHERE (key_hash, field) IN (",
                        ")",
                        2,
                        fields,
                        |mut values, f| {
                            values.push_bind(f.row.key_hash).push_bind(f.field.as_str());
                        },
                    )
                    .await?
                }),
                Batch::DropKey(rows) => on_conn!(tx.conn(), |c| {
                    in_chunks(
                        c,
                        "DELETE FROM claims WHERE key_hash IN (",
                        ")",
                        1,
                        rows,
                        |mut values, row| {
                            values.push_bind(row.key_hash);
                        },
                    )
                    .await?
                }),
            }
        }
        Ok(())
    }
}

/// The claim one key's field gets from the writes of a `Claim` batch.
struct ClaimRow<'b, 'a> {
    /// The batch's first write of the field: the claim's original and `since`.
    first: &'b RowField<'a>,
    /// Its last write: the claim's rule, value and change.
    last: &'b RowField<'a>,
}

/// The claims a `Claim` batch leaves, one per key and field, in the order
/// of their first write: as its writes made one after another would leave
/// them (PostgreSQL refuses to update one row twice in one statement).
fn claim_rows<'b, 'a>(fields: &'b [RowField<'a>]) -> Vec<ClaimRow<'b, 'a>> {
    let mut rows: Vec<ClaimRow<'b, 'a>> = Vec::with_capacity(fields.len());
    let mut index: HashMap<(&str, Field), usize> = HashMap::with_capacity(fields.len());
    for f in fields {
        match index.entry((f.row.key_hash, f.field)) {
            Entry::Occupied(at) => rows[*at.get()].last = f,
            Entry::Vacant(slot) => {
                slot.insert(rows.len());
                rows.push(ClaimRow { first: f, last: f });
            }
        }
    }
    rows
}

/// The statement a `Claim` batch writes its claims with, `$1` the claims as
/// [`claims_json`] writes them. A claim the same row wrote already (when
/// the row was recorded, and now completes) is not written again: its rule
/// and value are that row's.
fn upsert_claims_sql(dialect: Dialect) -> String {
    let rows = JsonRows { dialect, param: 1 };
    format!(
        "INSERT INTO claims (key_hash, field, rule, original, value, change_id, since)
         SELECT {}, {}, {}, {}, {}, {}, {} FROM {} WHERE true
         ON CONFLICT (key_hash, field) DO UPDATE SET rule = excluded.rule,
             value = excluded.value, change_id = excluded.change_id
         WHERE claims.change_id IS DISTINCT FROM excluded.change_id",
        rows.text(0),
        rows.text(1),
        rows.text(2),
        rows.text(3),
        rows.text(4),
        rows.int(5),
        rows.text(6),
        rows.table(),
    )
}

/// The claims of a `Claim` batch as one JSON array for [`upsert_claims_sql`]:
/// `[key_hash, field, rule, original, value, change_id, since]` each.
fn claims_json(claims: &[ClaimRow<'_, '_>]) -> String {
    let claims: Vec<_> = claims
        .iter()
        .map(|claim| {
            let (first, last) = (claim.first, claim.last);
            (
                first.row.key_hash,
                first.field.as_str(),
                last.row.rule,
                first.change.from.to_json().to_string(),
                last.change.to.to_json().to_string(),
                last.row.id,
                ts(first.row.at),
            )
        })
        .collect();
    serde_json::to_string(&claims).expect("claims serialize")
}

/// After a failed PATCH the key still has `from`: a claim the row made from
/// nothing (original == from) goes; an older claim stays with the value
/// keywarden had set before, so it is still given back.
async fn give_back(conn: Conn<'_>, f: &RowField<'_>) -> anyhow::Result<()> {
    on_conn!(conn, |c| {
        let original: Option<String> = sqlx::query_scalar(
            "SELECT original FROM claims WHERE key_hash = $1 AND field = $2 AND change_id = $3",
        )
        .bind(f.row.key_hash)
        .bind(f.field.as_str())
        .bind(f.row.id)
        .fetch_optional(&mut *c)
        .await?;
        let Some(original) = original else {
            return Ok(());
        };
        let from = f.change.from.to_json().to_string();
        if field_value(f.field, &original)? == f.change.from {
            sqlx::query("DELETE FROM claims WHERE key_hash = $1 AND field = $2")
                .bind(f.row.key_hash)
                .bind(f.field.as_str())
                .execute(&mut *c)
                .await?;
        } else {
            sqlx::query("UPDATE claims SET value = $1 WHERE key_hash = $2 AND field = $3")
                .bind(from)
                .bind(f.row.key_hash)
                .bind(f.field.as_str())
                .execute(&mut *c)
                .await?;
        }
    });
    Ok(())
}

/// Reads a field's stored wire JSON.
pub(crate) fn field_value(field: Field, json: &str) -> anyhow::Result<FieldValue> {
    let value: serde_json::Value = serde_json::from_str(json)
        .with_context(|| format!("bad {field} value {json:?} in the database"))?;
    FieldValue::from_json(field, &value)
        .ok_or_else(|| anyhow!("bad {field} value {json:?} in the database"))
}
