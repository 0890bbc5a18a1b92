//! The OpenRouter management API's data types, as in `openapi-keys.yaml`
//! (plus the newer fields listed in `NOTES.md`).
//!
//! These types are shared by the client and the sandbox. They accept fields
//! they do not know, and never require the newer ones.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// How often a key's limit resets. `None` (JSON `null`) means it never resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum LimitReset {
    /// Every UTC midnight.
    Daily,
    /// Every Monday 00:00 UTC.
    Weekly,
    /// On the first of every month, 00:00 UTC.
    Monthly,
}

impl LimitReset {
    /// The wire name (`daily`, `weekly`, `monthly`).
    pub fn as_str(self) -> &'static str {
        match self {
            LimitReset::Daily => "daily",
            LimitReset::Weekly => "weekly",
            LimitReset::Monthly => "monthly",
        }
    }

    /// Parses a wire name; anything but the three known values is `None`.
    pub fn parse(s: &str) -> Option<LimitReset> {
        match s {
            "daily" => Some(LimitReset::Daily),
            "weekly" => Some(LimitReset::Weekly),
            "monthly" => Some(LimitReset::Monthly),
            _ => None,
        }
    }
}

impl fmt::Display for LimitReset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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
}

/// One of the four writable settings of a key that rules may assert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// `disabled`
    Disabled,
    /// `limit`
    Limit,
    /// `limit_reset`
    LimitReset,
    /// `include_byok_in_limit`
    IncludeByokInLimit,
}

impl Field {
    /// Every field, in wire order.
    pub const ALL: [Field; 4] = [
        Field::Disabled,
        Field::Limit,
        Field::LimitReset,
        Field::IncludeByokInLimit,
    ];

    /// The wire name of the field.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Disabled => "disabled",
            Field::Limit => "limit",
            Field::LimitReset => "limit_reset",
            Field::IncludeByokInLimit => "include_byok_in_limit",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The value of one [`Field`]. Serializes exactly as on the wire:
/// a bool, a number or `null` (no limit), a reset name or `null` (no reset).
#[derive(Debug, Clone, Copy)]
pub enum FieldValue {
    /// `disabled` / `include_byok_in_limit`.
    Bool(bool),
    /// `limit`: USD, or `None` for no limit.
    Limit(Option<f64>),
    /// `limit_reset`, or `None` for no reset.
    Reset(Option<LimitReset>),
}

impl PartialEq for FieldValue {
    /// Limits are equal when they agree to a millionth of a dollar.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (FieldValue::Bool(a), FieldValue::Bool(b)) => a == b,
            (FieldValue::Limit(Some(a)), FieldValue::Limit(Some(b))) => (a - b).abs() < 1e-6,
            (FieldValue::Limit(None), FieldValue::Limit(None)) => true,
            (FieldValue::Reset(a), FieldValue::Reset(b)) => a == b,
            _ => false,
        }
    }
}

impl FieldValue {
    /// The wire JSON of this value.
    pub fn to_json(self) -> serde_json::Value {
        match self {
            FieldValue::Bool(b) => serde_json::Value::Bool(b),
            FieldValue::Limit(Some(v)) => serde_json::json!(v),
            FieldValue::Limit(None) | FieldValue::Reset(None) => serde_json::Value::Null,
            FieldValue::Reset(Some(r)) => serde_json::Value::String(r.as_str().into()),
        }
    }

    /// Reads the wire JSON of `field`; `None` when the JSON has the wrong type.
    pub fn from_json(field: Field, v: &serde_json::Value) -> Option<FieldValue> {
        match (field, v) {
            (Field::Disabled | Field::IncludeByokInLimit, serde_json::Value::Bool(b)) => {
                Some(FieldValue::Bool(*b))
            }
            (Field::Limit, serde_json::Value::Null) => Some(FieldValue::Limit(None)),
            (Field::Limit, serde_json::Value::Number(n)) => {
                n.as_f64().map(|x| FieldValue::Limit(Some(x)))
            }
            (Field::LimitReset, serde_json::Value::Null) => Some(FieldValue::Reset(None)),
            (Field::LimitReset, serde_json::Value::String(s)) => {
                LimitReset::parse(s).map(|r| FieldValue::Reset(Some(r)))
            }
            _ => None,
        }
    }
}

impl fmt::Display for FieldValue {
    /// People's form: `true`, `50.00`, `none`, `daily`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Bool(b) => write!(f, "{b}"),
            FieldValue::Limit(Some(v)) => write!(f, "{v:.2}"),
            FieldValue::Limit(None) | FieldValue::Reset(None) => f.write_str("none"),
            FieldValue::Reset(Some(r)) => f.write_str(r.as_str()),
        }
    }
}

impl Serialize for FieldValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl Key {
    /// The current value of `field` on this key. An unknown `limit_reset`
    /// string reads as `None`.
    pub fn get(&self, field: Field) -> FieldValue {
        match field {
            Field::Disabled => FieldValue::Bool(self.disabled),
            Field::Limit => FieldValue::Limit(self.limit),
            Field::LimitReset => {
                FieldValue::Reset(self.limit_reset.as_deref().and_then(LimitReset::parse))
            }
            Field::IncludeByokInLimit => FieldValue::Bool(self.include_byok_in_limit),
        }
    }

    /// Gives `field` the value `value`, as a successful PATCH of it would.
    pub fn set(&mut self, field: Field, value: FieldValue) {
        match (field, value) {
            (Field::Disabled, FieldValue::Bool(b)) => self.disabled = b,
            (Field::IncludeByokInLimit, FieldValue::Bool(b)) => self.include_byok_in_limit = b,
            (Field::Limit, FieldValue::Limit(l)) => self.limit = l,
            (Field::LimitReset, FieldValue::Reset(r)) => {
                self.limit_reset = r.map(|r| r.as_str().to_string())
            }
            (f, v) => unreachable!("value {v:?} does not belong to field {f}"),
        }
    }
}

/// The body of `PATCH /keys/{hash}`. An absent field means "leave it";
/// `limit: null` means "no limit" and `limit_reset: null` "no reset".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPatch {
    /// New name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Disable or enable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// `Some(None)` sends `null` (no limit).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "double_option"
    )]
    pub limit: Option<Option<f64>>,
    /// `Some(None)` sends `null` (no reset).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "double_option"
    )]
    pub limit_reset: Option<Option<LimitReset>>,
    /// Count BYOK usage in the limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_byok_in_limit: Option<bool>,
    /// Workspace (sent by newer SDKs; keywarden never sets it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
}

/// Deserializes a present field (even `null`) as `Some`, so that an absent
/// field stays `None` through `#[serde(default)]`.
fn double_option<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

impl KeyPatch {
    /// Sets one field in the patch.
    pub fn set(&mut self, value: FieldValue, field: Field) {
        match (field, value) {
            (Field::Disabled, FieldValue::Bool(b)) => self.disabled = Some(b),
            (Field::IncludeByokInLimit, FieldValue::Bool(b)) => {
                self.include_byok_in_limit = Some(b)
            }
            (Field::Limit, FieldValue::Limit(l)) => self.limit = Some(l),
            (Field::LimitReset, FieldValue::Reset(r)) => self.limit_reset = Some(r),
            (f, v) => unreachable!("value {v:?} does not belong to field {f}"),
        }
    }

    /// The settings fields this patch carries, with their values.
    pub fn fields(&self) -> Vec<(Field, FieldValue)> {
        Settings {
            disabled: self.disabled,
            limit: self.limit,
            limit_reset: self.limit_reset,
            include_byok_in_limit: self.include_byok_in_limit,
        }
        .fields()
    }

    /// True when the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.fields().is_empty()
    }
}

/// The writable settings of a key (every PATCH field but `name`): what a
/// rule's `set` table asserts. Each `None` is "not asserted".
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Settings {
    /// `disabled`.
    pub disabled: Option<bool>,
    /// `limit`: `Some(None)` is `"none"` (no limit).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "double_option"
    )]
    pub limit: Option<Option<f64>>,
    /// `limit_reset`: `Some(None)` is `"none"` (no reset).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "double_option"
    )]
    pub limit_reset: Option<Option<LimitReset>>,
    /// `include_byok_in_limit`.
    pub include_byok_in_limit: Option<bool>,
}

impl Settings {
    /// The fields this rule asserts, with their values, in wire order.
    pub fn fields(&self) -> Vec<(Field, FieldValue)> {
        let mut out = Vec::new();
        if let Some(b) = self.disabled {
            out.push((Field::Disabled, FieldValue::Bool(b)));
        }
        if let Some(l) = self.limit {
            out.push((Field::Limit, FieldValue::Limit(l)));
        }
        if let Some(r) = self.limit_reset {
            out.push((Field::LimitReset, FieldValue::Reset(r)));
        }
        if let Some(b) = self.include_byok_in_limit {
            out.push((Field::IncludeByokInLimit, FieldValue::Bool(b)));
        }
        out
    }
}

/// `GET /credits` data.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Credits {
    /// Total credits purchased, USD.
    pub total_credits: f64,
    /// Total credits used, USD.
    pub total_usage: f64,
}

impl Credits {
    /// Remaining credits: `total_credits - total_usage`.
    pub fn remaining(&self) -> f64 {
        self.total_credits - self.total_usage
    }
}

/// `GET /key` data: the key the request was authenticated with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurrentKey {
    /// Label of the key.
    #[serde(default)]
    pub label: String,
    /// Whether this is a management key.
    #[serde(default)]
    pub is_management_key: bool,
    /// Older name for `is_management_key`.
    #[serde(default)]
    pub is_provisioning_key: bool,
    /// Spending limit in USD.
    #[serde(default)]
    pub limit: Option<f64>,
    /// Remaining limit in USD.
    #[serde(default)]
    pub limit_remaining: Option<f64>,
    /// Lifetime usage in USD.
    #[serde(default)]
    pub usage: Option<f64>,
}

/// The `{"data": …}` envelope of every successful response but DELETE.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Data<T> {
    /// The payload.
    pub data: T,
}

/// The error body of every failed response: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorData,
}

/// The inside of [`ErrorBody`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorData {
    /// The HTTP status again.
    pub code: u16,
    /// What went wrong.
    pub message: String,
    /// Optional details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_distinguishes_absent_from_null() {
        let p: KeyPatch = serde_json::from_str(r#"{"limit": null}"#).unwrap();
        assert_eq!(p.limit, Some(None));
        assert_eq!(p.limit_reset, None);
        assert_eq!(serde_json::to_string(&p).unwrap(), r#"{"limit":null}"#);
        let empty: KeyPatch = serde_json::from_str("{}").unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn patch_refuses_unknown_reset() {
        assert!(serde_json::from_str::<KeyPatch>(r#"{"limit_reset": "yearly"}"#).is_err());
    }

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
        assert_eq!(k.get(Field::LimitReset), FieldValue::Reset(None));
    }
}
