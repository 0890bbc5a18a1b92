//! A key as observed: what `GET /keys` lists, the input of every run.

use super::field::{Field, FieldValue};
use super::guardrail::GuardrailId;
use super::window::LimitReset;
use serde::{Deserialize, Serialize};

/// An API key as listed by `GET /keys` and returned by `GET`/`PATCH /keys/{hash}`.
///
/// Usage counters are `Option`: the API has been seen returning `null` for
/// them, and an unknown counter must never be read as zero.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Key {
    /// Unique hash identifier of the key (used in `/keys/{hash}`).
    pub hash: String,
    /// Name given to the key.
    pub name: String,
    /// Human-readable label (the key's visible prefix, e.g. `sk-or-v1-0e6...1c96`).
    #[serde(default)]
    pub label: String,
    /// Whether the key is disabled.
    pub disabled: bool,
    /// Spending limit in USD; `None` = no limit.
    #[serde(default)]
    pub limit: Option<f64>,
    /// Remaining spending limit in USD; `None` when there is no limit.
    #[serde(default)]
    pub limit_remaining: Option<f64>,
    /// How the limit resets (`daily`/`weekly`/`monthly`); `None` = never.
    /// Kept as a string: an unknown value from the API must not break listing.
    #[serde(default)]
    pub limit_reset: Option<String>,
    /// Whether BYOK usage counts against the limit.
    #[serde(default)]
    pub include_byok_in_limit: bool,
    /// Lifetime OpenRouter credit usage in USD.
    #[serde(default)]
    pub usage: Option<f64>,
    /// Usage in the current UTC day.
    #[serde(default)]
    pub usage_daily: Option<f64>,
    /// Usage in the current UTC week (Monday–Sunday).
    #[serde(default)]
    pub usage_weekly: Option<f64>,
    /// Usage in the current UTC month.
    #[serde(default)]
    pub usage_monthly: Option<f64>,
    /// Lifetime external BYOK usage in USD.
    #[serde(default)]
    pub byok_usage: Option<f64>,
    /// BYOK usage in the current UTC day.
    #[serde(default)]
    pub byok_usage_daily: Option<f64>,
    /// BYOK usage in the current UTC week.
    #[serde(default)]
    pub byok_usage_weekly: Option<f64>,
    /// BYOK usage in the current UTC month.
    #[serde(default)]
    pub byok_usage_monthly: Option<f64>,
    /// When the key was created (ISO 8601).
    #[serde(default)]
    pub created_at: Option<String>,
    /// When the key was last updated (ISO 8601).
    #[serde(default)]
    pub updated_at: Option<String>,
    /// The user who created the key.
    #[serde(default)]
    pub creator_user_id: Option<String>,
    /// The workspace the key belongs to (newer field; may be absent).
    #[serde(default)]
    pub workspace_id: Option<String>,
    /// External user id (newer field).
    #[serde(default)]
    pub external_user: Option<String>,
    /// Last use (newer field).
    #[serde(default)]
    pub last_used_at: Option<String>,
    /// Expiry (newer field).
    #[serde(default)]
    pub expires_at: Option<String>,
    /// The guardrail the key holds: not in the listing, filled in from
    /// `GET /guardrails/assignments/keys` when a run reads the assignments.
    #[serde(skip)]
    pub guardrail: Option<GuardrailId>,
}

impl Key {
    /// The current value of `field` on this key. An unknown `limit_reset`
    /// string reads as `None`.
    pub fn get(&self, field: Field) -> FieldValue {
        match field {
            Field::Disabled => FieldValue::Disabled(self.disabled),
            Field::Limit => FieldValue::Limit(self.limit),
            Field::LimitReset => {
                FieldValue::LimitReset(self.limit_reset.as_deref().and_then(LimitReset::parse))
            }
            Field::IncludeByokInLimit => FieldValue::IncludeByokInLimit(self.include_byok_in_limit),
            Field::Guardrail => FieldValue::Guardrail(self.guardrail),
        }
    }

    /// Gives the value's field that value, as a successful PATCH of it would.
    pub fn set(&mut self, value: FieldValue) {
        match value {
            FieldValue::Disabled(b) => self.disabled = b,
            FieldValue::IncludeByokInLimit(b) => self.include_byok_in_limit = b,
            FieldValue::Limit(l) => self.limit = l,
            FieldValue::LimitReset(r) => self.limit_reset = r.map(|r| r.as_str().to_string()),
            FieldValue::Guardrail(g) => self.guardrail = g,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_tolerates_nulls_unknown_and_missing_newer_fields() {
        let k: Key = serde_json::from_str(
            r#"{"hash":"h","name":"n","label":"l","disabled":false,"limit":null,
            "limit_remaining":null,"limit_reset":"yearly","include_byok_in_limit":false,
            "usage":1.5,"usage_daily":null,"usage_weekly":2,"usage_monthly":3,
            "byok_usage":0,"byok_usage_daily":0,"byok_usage_weekly":0,"byok_usage_monthly":0,
            "created_at":"2025-08-24T10:30:00Z","updated_at":null,"creator_user_id":null,
            "something_new":{"x":1}}"#,
        )
        .unwrap();
        assert_eq!(k.usage_daily, None);
        assert_eq!(k.workspace_id, None);
        assert_eq!(k.get(Field::LimitReset), FieldValue::LimitReset(None));
    }

    #[test]
    fn set_then_get_gives_the_value_back() {
        let mut k: Key =
            serde_json::from_str(r#"{"hash":"h","name":"n","disabled":false}"#).unwrap();
        for v in [
            FieldValue::Disabled(true),
            FieldValue::Limit(Some(3.0)),
            FieldValue::LimitReset(Some(LimitReset::Monthly)),
            FieldValue::IncludeByokInLimit(true),
            FieldValue::Guardrail(Some(
                "00000000-0000-4000-8000-00000000c4e9".parse().unwrap(),
            )),
        ] {
            k.set(v);
            assert_eq!(k.get(v.field()), v);
        }
    }
}
