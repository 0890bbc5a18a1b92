//! What a rule's `set` table asserts: the writable settings of a key.

use super::field::FieldValue;
use super::window::LimitReset;
use serde::{Deserialize, Deserializer, Serialize};

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
    pub fn fields(&self) -> Vec<FieldValue> {
        [
            self.disabled.map(FieldValue::Disabled),
            self.limit.map(FieldValue::Limit),
            self.limit_reset.map(FieldValue::LimitReset),
            self.include_byok_in_limit
                .map(FieldValue::IncludeByokInLimit),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// Deserializes a present field (even `null`) as `Some`, so that an absent
/// field stays `None` through `#[serde(default)]`.
pub fn double_option<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}
