//! What keywarden holds on each listed key, and the key objects of
//! `keys list --format json` and `/api/keys`.

use crate::domain::{Field, FieldValue, Key};
use crate::engine::Claim;
use crate::rules::selector::CompiledSelector;
use crate::store::Store;
use serde::Serialize;
use std::collections::HashMap;

/// What keywarden holds on the account: its enabled rules' selectors and
/// its claims by key.
#[derive(Default)]
pub struct Holdings {
    selectors: Vec<RuleSelector>,
    claims: HashMap<String, Vec<Claim>>,
}

/// An enabled rule's name and compiled selector.
struct RuleSelector {
    rule: String,
    selector: CompiledSelector,
}

/// What keywarden holds on one key: the enabled rules that select it and the
/// fields it has set because of them.
#[derive(Debug, Default, Clone, Serialize)]
pub struct KeyHoldings {
    /// The enabled rules whose selector matches the key.
    pub rules: Vec<String>,
    /// The fields keywarden set on it, and by which rule.
    pub claims: Vec<Claim>,
}

impl Holdings {
    /// Reads the enabled rules and the claims from `store`.
    pub async fn read(store: &Store) -> anyhow::Result<Holdings> {
        let selectors = store
            .rules()
            .await?
            .into_iter()
            .filter(|r| r.rule.enabled)
            .map(|r| RuleSelector {
                selector: CompiledSelector::new(&r.rule.keys),
                rule: r.rule.name,
            })
            .collect();
        let mut claims: HashMap<String, Vec<Claim>> = HashMap::new();
        for claim in store.claims().await? {
            claims
                .entry(claim.key_hash.clone())
                .or_default()
                .push(claim);
        }
        Ok(Holdings { selectors, claims })
    }

    /// What is held on `key`.
    pub fn of(&self, key: &Key) -> KeyHoldings {
        KeyHoldings {
            rules: self
                .selectors
                .iter()
                .filter(|s| s.selector.matches(key))
                .map(|s| s.rule.clone())
                .collect(),
            claims: self.claims.get(&key.hash).cloned().unwrap_or_default(),
        }
    }

    /// Every claim, by key hash.
    pub fn claims(&self) -> &HashMap<String, Vec<Claim>> {
        &self.claims
    }
}

/// The API's key objects as it returned them, each with a `keywarden`
/// member: `{"rules": [NAME…], "claims": [CLAIM…]}`.
pub fn keys_json<'a>(
    listed: impl Iterator<Item = (&'a Key, KeyHoldings)>,
) -> anyhow::Result<serde_json::Value> {
    let keys = listed
        .map(|(key, held)| {
            let mut object = serde_json::to_value(key)?;
            if let Some(members) = object.as_object_mut() {
                members.insert("keywarden".into(), serde_json::to_value(held)?);
            }
            Ok(object)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(serde_json::Value::Array(keys))
}

/// `disabled by team-a-monthly`, `limit 5.00 by support-holidays`.
pub fn claim_text(claim: &Claim) -> String {
    let what = match (claim.field, claim.value) {
        (Field::Disabled, FieldValue::Disabled(true)) => "disabled".to_string(),
        (Field::Disabled, FieldValue::Disabled(false)) => "enabled".to_string(),
        (field, value) => format!("{field} {value}"),
    };
    format!("{what} by {}", claim.rule)
}
