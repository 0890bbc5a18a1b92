//! The OpenRouter management API's data types, as in `openapi-keys.yaml`
//! (plus the newer fields listed in `NOTES.md`).
//!
//! These types are shared by the client and the sandbox. They accept fields
//! they do not know, and never require the newer ones.

use crate::domain::settings::double_option;
use crate::domain::{FieldValue, LimitReset, Settings};
use serde::{Deserialize, Serialize};

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

impl KeyPatch {
    /// Sets one field in the patch. `guardrail` is no PATCH field (it is
    /// assigned by the bulk calls of `openrouter::guardrails`): left out.
    pub fn set(&mut self, value: FieldValue) {
        match value {
            FieldValue::Guardrail(_) => {}
            FieldValue::Disabled(b) => self.disabled = Some(b),
            FieldValue::IncludeByokInLimit(b) => self.include_byok_in_limit = Some(b),
            FieldValue::Limit(l) => self.limit = Some(l),
            FieldValue::LimitReset(r) => self.limit_reset = Some(r),
        }
    }

    /// The settings fields this patch carries, with their values.
    pub fn fields(&self) -> Vec<FieldValue> {
        Settings {
            disabled: self.disabled,
            limit: self.limit,
            limit_reset: self.limit_reset,
            include_byok_in_limit: self.include_byok_in_limit,
            guardrail: None,
        }
        .fields()
    }

    /// True when the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.fields().is_empty()
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
}
