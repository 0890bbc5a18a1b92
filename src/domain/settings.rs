//! What a rule's `set` table asserts: the writable settings of a key.

use super::field::{Field, FieldValue};
use super::guardrail::{Guardrail, GuardrailRef};
use super::window::LimitReset;
use serde::{Deserialize, Deserializer, Serialize};

/// The writable settings of a key (every PATCH field but `name`): what a
/// rule's `set` table asserts. Each `None` is "not asserted".
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
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
    /// `guardrail`: a guardrail's id or name, or `"none"`; resolved
    /// against the account's guardrails at evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardrail: Option<GuardrailRef>,
}

impl Settings {
    /// The fields this rule asserts whose values need no lookup (every one
    /// but `guardrail`, see [`Settings::resolve`]), with their values, in
    /// wire order.
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

    /// Every field this rule asserts, `guardrail` included, in wire order.
    pub fn asserted(&self) -> Vec<Field> {
        let mut fields: Vec<Field> = self.fields().iter().map(|v| v.field()).collect();
        if self.guardrail.is_some() {
            fields.push(Field::Guardrail);
        }
        fields
    }

    /// Every field this rule asserts with its value, in wire order, its
    /// `guardrail` resolved against the account's `guardrails`; the error
    /// says why the guardrail resolves to none or several.
    pub fn resolve(&self, guardrails: &[Guardrail]) -> Result<Vec<FieldValue>, String> {
        let mut values = self.fields();
        if let Some(guardrail) = &self.guardrail {
            values.push(FieldValue::Guardrail(guardrail.resolve(guardrails)?));
        }
        Ok(values)
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
