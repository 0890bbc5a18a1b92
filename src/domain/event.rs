//! The kinds of event keywarden records (the `events` table) and notifies
//! (SPEC §7): one name each, spelt the same in the database, the outbox,
//! the webhooks' JSON and `[[notify]] events`.

use serde::{Deserialize, Serialize};
use strum::VariantArray as _;

/// What happened: the `kind` of an event row and the `event` of an outbox item.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum EventKind {
    /// An applied change disabled a key.
    KeyDisabled,
    /// An applied change enabled a key again.
    KeyEnabled,
    /// A change failed, or may not have been applied.
    ChangeFailed,
    /// Spend crossed a budget rule's `warn_at` fraction.
    BudgetWarning,
    /// A rule's projected crossing came within a `warn_before` horizon.
    BudgetForecast,
    /// The blast-radius guard held changes back.
    GuardTripped,
    /// A budget source could not be read.
    SourceError,
    /// A budget source that failed reads fine again.
    SourceRecovered,
    /// The API refused the management key.
    AuthFailed,
    /// The API accepts the management key again.
    AuthRecovered,
    /// A reload of the configuration or rules files failed.
    ReloadFailed,
    /// Another replica took the lead on PostgreSQL (SPEC §14).
    LeaderChanged,
    /// Two rules of equal priority set a field of a key differently.
    Conflict,
}

impl EventKind {
    /// The stored and printed name (`key_disabled`).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Whether a webhook can be sent this kind of event: every kind but
    /// `conflict`, which is recorded only.
    pub fn is_notifiable(self) -> bool {
        self != EventKind::Conflict
    }

    /// Every kind a `[[notify]] events` may name, in the order of SPEC §7.
    pub fn notifiable() -> impl Iterator<Item = EventKind> {
        EventKind::VARIANTS
            .iter()
            .copied()
            .filter(|k| k.is_notifiable())
    }
}

impl PartialEq<&str> for EventKind {
    /// Compares with a stored name: `kind == "key_disabled"`.
    fn eq(&self, name: &&str) -> bool {
        self.as_str() == *name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_stored_spelling_both_ways() {
        for &kind in EventKind::VARIANTS {
            let name = kind.to_string();
            assert_eq!(name, kind.as_str());
            assert_eq!(name.parse::<EventKind>(), Ok(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), name.as_str());
        }
        assert_eq!(EventKind::KeyDisabled.as_str(), "key_disabled");
        assert_eq!(EventKind::BudgetWarning.as_str(), "budget_warning");
        assert_eq!(EventKind::BudgetForecast.as_str(), "budget_forecast");
        assert!("key_disabld".parse::<EventKind>().is_err());
    }

    #[test]
    fn conflicts_are_recorded_but_not_notified() {
        assert_eq!(
            EventKind::notifiable().count(),
            EventKind::VARIANTS.len() - 1
        );
        assert!(!EventKind::notifiable().any(|k| k == EventKind::Conflict));
    }
}
