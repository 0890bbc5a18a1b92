//! The `claims` and `exemptions` tables (SPEC §4.2, §4.3).

use super::{Store, parse_ts, ts};
use crate::engine::{Claim, Exemption};
use crate::openrouter::model::{Field, FieldValue};
use anyhow::{Context as _, anyhow};
use chrono::{DateTime, Utc};
use sqlx::Row as _;

impl Store {
    /// Every claim, by key then field.
    pub async fn claims(&self) -> anyhow::Result<Vec<Claim>> {
        let rows = sqlx::query(
            "SELECT key_hash, field, rule, original, value, since FROM claims ORDER BY key_hash, field",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let key_hash: String = row.get("key_hash");
                let name: &str = row.get("field");
                let field = Field::parse(name)
                    .ok_or_else(|| anyhow!("unknown field {name:?} in a claim"))?;
                Ok(Claim {
                    field,
                    rule: row.get("rule"),
                    original: field_value(field, row.get("original"))?,
                    value: field_value(field, row.get("value"))?,
                    since: parse_ts(row.get("since"))?,
                    key_hash,
                })
            })
            .collect()
    }

    /// Drops every claim on a key (it was deleted); returns how many.
    pub async fn delete_claims_of_key(&self, key_hash: &str) -> anyhow::Result<u64> {
        let done = sqlx::query("DELETE FROM claims WHERE key_hash = ?")
            .bind(key_hash)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
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
        let id = sqlx::query_scalar(
            "INSERT INTO exemptions (key_hash, rule, until, reason, created_at)
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(key_hash)
        .bind(rule)
        .bind(ts(until))
        .bind(reason)
        .bind(ts(at))
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    /// Every exemption, expired ones included, by id.
    pub async fn exemptions(&self) -> anyhow::Result<Vec<Exemption>> {
        let rows = sqlx::query(
            "SELECT id, key_hash, rule, until, reason, created_at, held_at FROM exemptions ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Exemption {
                    id: row.get("id"),
                    key_hash: row.get("key_hash"),
                    rule: row.get("rule"),
                    until: parse_ts(row.get("until"))?,
                    reason: row.get("reason"),
                    held_at: row
                        .get::<Option<&str>, _>("held_at")
                        .map(parse_ts)
                        .transpose()?,
                    created_at: parse_ts(row.get("created_at"))?,
                })
            })
            .collect()
    }

    /// Removes an exemption; `false` when there is no such id.
    pub async fn remove_exemption(&self, id: i64) -> anyhow::Result<bool> {
        let done = sqlx::query("DELETE FROM exemptions WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records when an exemption first held a change back (later calls keep
    /// the first time).
    pub async fn mark_exemption_held(&self, id: i64, at: DateTime<Utc>) -> anyhow::Result<()> {
        sqlx::query("UPDATE exemptions SET held_at = COALESCE(held_at, ?) WHERE id = ?")
            .bind(ts(at))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Reads a field's stored wire JSON.
pub(crate) fn field_value(field: Field, json: &str) -> anyhow::Result<FieldValue> {
    let value: serde_json::Value = serde_json::from_str(json)
        .with_context(|| format!("bad {field} value {json:?} in the database"))?;
    FieldValue::from_json(field, &value)
        .ok_or_else(|| anyhow!("bad {field} value {json:?} in the database"))
}
