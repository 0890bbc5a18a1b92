//! What the pure core is given besides rules and keys: claims, exemptions,
//! budget values, usage series and the standing results of rules not due
//! in this run.

use crate::domain::{Field, FieldValue, Guardrail};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;

/// One usage snapshot of a key, as a forecast reads it (SPEC §11): its
/// lifetime counters at an instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UsageReading {
    /// When it was taken.
    pub at: DateTime<Utc>,
    /// Lifetime `usage` then; `None` when the API left it out.
    pub usage: Option<f64>,
    /// Lifetime `byok_usage` then; `None` when the API left it out.
    pub byok_usage: Option<f64>,
}

/// The usage snapshots of the keys forecasts need, by key hash, inside the
/// longest lookback (this run's own reading is not in it: the core reads
/// it from the keys).
pub type Series = HashMap<String, Vec<UsageReading>>;

/// What a run read of the account's guardrails (SPEC §12).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Guardrails {
    /// Not read: no enabled rule sets `guardrail` and keywarden holds no
    /// claim on one, so no key's guardrail is known.
    #[default]
    NotRead,
    /// The account's guardrails, read whole; each key carries the one it
    /// holds (from the assignments, read whole too).
    Read(Vec<Guardrail>),
    /// The guardrails or the assignments could not be read whole (an API
    /// error, a malformed or truncated listing): why. No key's guardrail
    /// is known; nothing is concluded from its absence.
    Unreadable(String),
}

impl Guardrails {
    /// The account's guardrails, or why the keys' guardrails are not known.
    pub fn listed(&self) -> Result<&[Guardrail], String> {
        match self {
            Guardrails::Read(all) => Ok(all),
            Guardrails::NotRead => Err("the guardrails were not read in this run".into()),
            Guardrails::Unreadable(why) => Err(format!(
                "the guardrails and their assignments could not be read: {why}"
            )),
        }
    }

    /// A guardrail value as people read it: `none`, or the guardrail's name
    /// (with its id), or its id when it is not listed.
    pub fn describe(&self, value: FieldValue) -> String {
        let FieldValue::Guardrail(Some(id)) = value else {
            return value.to_string();
        };
        match self
            .listed()
            .ok()
            .and_then(|all| all.iter().find(|g| g.id == id))
        {
            Some(g) => format!("{:?} ({id})", g.name),
            None => id.to_string(),
        }
    }
}

/// A setting keywarden changed because of a rule (SPEC §4.2): what it set,
/// and what the key had before, so the field can be given back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Claim {
    /// The key.
    pub key_hash: String,
    /// The field.
    pub field: Field,
    /// The rule that holds the claim.
    pub rule: String,
    /// The key's value before keywarden first changed it.
    pub original: FieldValue,
    /// The value keywarden set.
    pub value: FieldValue,
    /// When the claim was made.
    pub since: DateTime<Utc>,
}

/// A person's override (SPEC §4.3): until `until`, keywarden neither asserts
/// nor releases anything on the key (for `rule`, or every rule).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exemption {
    /// Its id.
    pub id: i64,
    /// The key.
    pub key_hash: String,
    /// The rule it is limited to; `None` = every rule.
    pub rule: Option<String>,
    /// When it ends.
    pub until: DateTime<Utc>,
    /// Why (recorded).
    pub reason: String,
    /// When it first held a change back (`skipped` is recorded once).
    pub held_at: Option<DateTime<Utc>>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

impl Exemption {
    /// Whether it covers `rule` on `key_hash` at `now`.
    pub fn covers(&self, key_hash: &str, rule: &str, now: DateTime<Utc>) -> bool {
        self.key_hash == key_hash
            && now < self.until
            && self.rule.as_deref().is_none_or(|r| r == rule)
    }
}
