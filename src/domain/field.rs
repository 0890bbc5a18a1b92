//! The writable settings of a key that rules may assert, and their values.
//!
//! A [`FieldValue`] carries the field it belongs to, so a value of the wrong
//! type for a field cannot be built.
//!
//! Adding a settable field: a variant in [`Field`] (and
//! in [`Field::ALL`]) and one in [`FieldValue`] carrying its value type;
//! every `match` on them is exhaustive, so the compiler then names each
//! place that must say what the new field is: its wire name and JSON here,
//! [`super::Key::get`]/[`super::Key::set`], the PATCH body
//! (`openrouter::KeyPatch::set`); add it to [`super::Settings`] (and its
//! `fields`) and to the rules parser for a rule to assert it. `guardrail`
//! is the one field not sent by the PATCH: its value comes from the
//! assignments and goes out in bulk calls (`run::send`).

use super::guardrail::GuardrailId;
use super::window::LimitReset;
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// One of the writable settings of a key that rules may assert.
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
    /// `guardrail`: set by `POST /guardrails/{id}/assignments/keys` (or
    /// `…/remove`), not by the PATCH.
    Guardrail,
}

impl Field {
    /// Every field, in wire order.
    pub const ALL: [Field; 5] = [
        Field::Disabled,
        Field::Limit,
        Field::LimitReset,
        Field::IncludeByokInLimit,
        Field::Guardrail,
    ];

    /// The wire name of the field.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Disabled => "disabled",
            Field::Limit => "limit",
            Field::LimitReset => "limit_reset",
            Field::IncludeByokInLimit => "include_byok_in_limit",
            Field::Guardrail => "guardrail",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// The position of the field in [`Field::ALL`] (for per-field arrays).
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value of one field, tagged with the field. Serializes exactly as on the
/// wire: a bool, a number or `null` (no limit), a reset name or `null` (no
/// reset), a guardrail id or `null` (no guardrail).
#[derive(Debug, Clone, Copy)]
pub enum FieldValue {
    /// `disabled`.
    Disabled(bool),
    /// `limit`: USD, or `None` for no limit.
    Limit(Option<f64>),
    /// `limit_reset`, or `None` for no reset.
    LimitReset(Option<LimitReset>),
    /// `include_byok_in_limit`.
    IncludeByokInLimit(bool),
    /// `guardrail`: the guardrail the key holds, or `None` for none.
    Guardrail(Option<GuardrailId>),
}

impl PartialEq for FieldValue {
    /// Values of different fields are never equal; limits are equal when
    /// they agree to a millionth of a dollar.
    fn eq(&self, other: &Self) -> bool {
        use FieldValue::*;
        match *self {
            Disabled(a) => matches!(*other, Disabled(b) if a == b),
            Limit(a) => matches!(*other, Limit(b) if same_limit(a, b)),
            LimitReset(a) => matches!(*other, LimitReset(b) if a == b),
            IncludeByokInLimit(a) => matches!(*other, IncludeByokInLimit(b) if a == b),
            Guardrail(a) => matches!(*other, Guardrail(b) if a == b),
        }
    }
}

/// Whether two limits agree to a millionth of a dollar (no limit equals only no limit).
fn same_limit(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() < 1e-6,
        (a, b) => a.is_none() && b.is_none(),
    }
}

impl FieldValue {
    /// The field this is a value of.
    pub fn field(self) -> Field {
        match self {
            FieldValue::Disabled(_) => Field::Disabled,
            FieldValue::Limit(_) => Field::Limit,
            FieldValue::LimitReset(_) => Field::LimitReset,
            FieldValue::IncludeByokInLimit(_) => Field::IncludeByokInLimit,
            FieldValue::Guardrail(_) => Field::Guardrail,
        }
    }

    /// The wire JSON of this value.
    pub fn to_json(self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            FieldValue::Disabled(b) | FieldValue::IncludeByokInLimit(b) => Value::Bool(b),
            FieldValue::Limit(Some(v)) => serde_json::json!(v),
            FieldValue::Limit(None)
            | FieldValue::LimitReset(None)
            | FieldValue::Guardrail(None) => Value::Null,
            FieldValue::LimitReset(Some(r)) => Value::String(r.as_str().into()),
            FieldValue::Guardrail(Some(id)) => Value::String(id.to_string()),
        }
    }

    /// Reads the wire JSON of `field`; `None` when the JSON has the wrong type.
    pub fn from_json(field: Field, v: &serde_json::Value) -> Option<FieldValue> {
        use serde_json::Value;
        match field {
            Field::Disabled => v.as_bool().map(FieldValue::Disabled),
            Field::Limit => match v {
                Value::Null => Some(FieldValue::Limit(None)),
                _ => v.as_f64().map(|x| FieldValue::Limit(Some(x))),
            },
            Field::LimitReset => match v {
                Value::Null => Some(FieldValue::LimitReset(None)),
                _ => v
                    .as_str()
                    .and_then(LimitReset::parse)
                    .map(|r| FieldValue::LimitReset(Some(r))),
            },
            Field::IncludeByokInLimit => v.as_bool().map(FieldValue::IncludeByokInLimit),
            Field::Guardrail => match v {
                Value::Null => Some(FieldValue::Guardrail(None)),
                _ => v
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .map(|id| FieldValue::Guardrail(Some(id))),
            },
        }
    }
}

impl fmt::Display for FieldValue {
    /// People's form: `true`, `50.00`, `none`, `daily`, a guardrail's id.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Disabled(b) | FieldValue::IncludeByokInLimit(b) => write!(f, "{b}"),
            FieldValue::Limit(Some(v)) => write!(f, "{v:.2}"),
            FieldValue::Limit(None)
            | FieldValue::LimitReset(None)
            | FieldValue::Guardrail(None) => f.write_str("none"),
            FieldValue::LimitReset(Some(r)) => f.write_str(r.as_str()),
            FieldValue::Guardrail(Some(id)) => write!(f, "{id}"),
        }
    }
}

impl Serialize for FieldValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_knows_its_field_and_round_trips_through_json() {
        let values = [
            FieldValue::Disabled(true),
            FieldValue::Limit(Some(5.0)),
            FieldValue::Limit(None),
            FieldValue::LimitReset(Some(LimitReset::Weekly)),
            FieldValue::LimitReset(None),
            FieldValue::IncludeByokInLimit(false),
            FieldValue::Guardrail(Some(
                "00000000-0000-4000-8000-00000000c4e9".parse().unwrap(),
            )),
            FieldValue::Guardrail(None),
        ];
        for v in values {
            assert_eq!(FieldValue::from_json(v.field(), &v.to_json()), Some(v));
        }
        assert_eq!(
            FieldValue::from_json(Field::Disabled, &serde_json::json!(1)),
            None
        );
        assert_eq!(
            FieldValue::from_json(Field::Limit, &serde_json::json!("5")),
            None
        );
        assert_eq!(
            FieldValue::from_json(Field::LimitReset, &serde_json::json!("yearly")),
            None
        );
        assert_eq!(
            FieldValue::from_json(Field::Guardrail, &serde_json::json!("cheap-models-only")),
            None,
            "history holds ids, not names"
        );
        assert_eq!(
            Field::ALL.map(Field::index),
            [0, 1, 2, 3, 4],
            "index is the position in ALL"
        );
    }

    #[test]
    fn values_of_different_fields_differ() {
        assert_ne!(
            FieldValue::Disabled(true),
            FieldValue::IncludeByokInLimit(true)
        );
        assert_eq!(
            FieldValue::Limit(Some(1.0)),
            FieldValue::Limit(Some(1.0 + 1e-9))
        );
    }
}
