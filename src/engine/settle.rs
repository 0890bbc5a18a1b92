//! How a change row left open by an earlier run (`pending`: recorded but
//! never completed, `unknown`: the request may or may not have been applied)
//! is settled, from the key as listed now (SPEC §4.5).

use super::plan::{FieldChange, Outcome};
use crate::domain::{Field, Key};
use std::collections::{BTreeMap, BTreeSet};

/// What becomes of an open row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// `applied` when the key holds every value the row set, else `failed`.
    pub outcome: Outcome,
    /// Why it failed (recorded on the row); `None` when applied.
    pub error: Option<String>,
    /// When `failed`: the fields the key holds the row's values of
    /// nevertheless (one of its two requests took: a PATCH and a guardrail
    /// call), which keep their claims.
    pub took: BTreeSet<Field>,
}

/// Settles a row that set `fields` on a key, given that key as listed by
/// run `run_id` (`None`: it is gone). A row found not applied is `failed`:
/// the plan that follows asserts it again.
pub fn settle(fields: &BTreeMap<Field, FieldChange>, key: Option<&Key>, run_id: i64) -> Settlement {
    let took: BTreeSet<Field> = match key {
        Some(key) => fields
            .iter()
            .filter(|(f, fc)| key.get(**f) == fc.to)
            .map(|(f, _)| *f)
            .collect(),
        None => BTreeSet::new(),
    };
    if key.is_some() && took.len() == fields.len() {
        return Settlement {
            outcome: Outcome::Applied,
            error: None,
            took: BTreeSet::new(),
        };
    }
    Settlement {
        outcome: Outcome::Failed,
        error: Some(format!("found not applied by run {run_id}; planned again")),
        took,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::FieldValue;

    fn key(disabled: bool) -> Key {
        serde_json::from_value(serde_json::json!({
            "hash": "h", "name": "k", "disabled": disabled,
        }))
        .unwrap()
    }

    #[test]
    fn a_row_is_applied_when_the_key_holds_its_values_and_failed_otherwise() {
        let fields = BTreeMap::from([(
            Field::Disabled,
            FieldChange {
                from: FieldValue::Disabled(false),
                to: FieldValue::Disabled(true),
            },
        )]);
        assert_eq!(
            settle(&fields, Some(&key(true)), 7).outcome,
            Outcome::Applied
        );
        let not_applied = settle(&fields, Some(&key(false)), 7);
        assert_eq!(not_applied.outcome, Outcome::Failed);
        assert_eq!(
            not_applied.error.as_deref(),
            Some("found not applied by run 7; planned again")
        );
        assert_eq!(settle(&fields, None, 7).outcome, Outcome::Failed);
    }
}
