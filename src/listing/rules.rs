//! The rule objects of `rules list --format json` and `/api/rules`.

use crate::domain::timestamp;
use crate::rules::Rule;
use crate::rules::export::to_toml;
use crate::store::{Store, StoredRule};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// One rule as listed: its fields in name order (as the CLI has always
/// printed them), the rule itself as TOML.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleListing {
    /// When it was first stored.
    #[serde(serialize_with = "timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    /// Whether it is evaluated.
    pub enabled: bool,
    /// Its name.
    pub name: String,
    /// Where it came from: `cli` or `file:PATH`.
    pub origin: String,
    /// Its priority.
    pub priority: i64,
    /// The rule as `rules export` writes it.
    pub toml: String,
    /// When it last changed.
    #[serde(serialize_with = "timestamp::serialize")]
    pub updated_at: DateTime<Utc>,
}

impl RuleListing {
    /// The listing of a stored rule.
    pub fn of(stored: &StoredRule) -> RuleListing {
        RuleListing {
            created_at: stored.created_at,
            enabled: stored.rule.enabled,
            name: stored.rule.name.clone(),
            origin: stored.origin.as_string(),
            priority: stored.rule.priority,
            toml: to_toml(std::slice::from_ref(&stored.rule)),
            updated_at: stored.updated_at,
        }
    }
}

/// Every stored rule, enabled or not, in the store's order.
pub async fn stored_rules(store: &Store) -> anyhow::Result<Vec<Rule>> {
    Ok(store.rules().await?.into_iter().map(|s| s.rule).collect())
}
