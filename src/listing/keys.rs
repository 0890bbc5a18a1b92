//! What keywarden holds on each listed key, and the key objects of
//! `keys list --format json` and `/api/keys`.

use crate::domain::timestamp::rfc3339_minutes;
use crate::domain::{Field, FieldValue, Key};
use crate::engine::Claim;
use crate::engine::forecast::Status;
use crate::engine::outlook::ForecastRow;
use crate::openrouter::KeyListing;
use crate::output;
use crate::rules::model::Scope;
use crate::rules::selector::CompiledSelector;
use crate::store::Store;
use serde::Serialize;
use std::collections::HashMap;

/// What keywarden holds on the account: its enabled rules' selectors, its
/// claims by key and the forecasts of its budget and forecast rules.
#[derive(Default)]
pub struct Holdings {
    selectors: Vec<RuleSelector>,
    claims: HashMap<String, Vec<Claim>>,
    forecasts: Vec<ForecastRow>,
}

/// An enabled rule's name and compiled selector.
struct RuleSelector {
    rule: String,
    selector: CompiledSelector,
}

/// What keywarden knows of one key: its workspace's slug, the enabled
/// rules that select it, the fields it has set because of them, and the
/// forecasts that cover it (its own for scope `each`, its group's for scope
/// `group`), soonest crossing first; absent from the JSON when none does.
#[derive(Debug, Default, Clone, Serialize)]
pub struct KeyHoldings {
    /// The slug of the key's workspace; `null` when the workspaces were not
    /// listed.
    pub workspace: Option<String>,
    /// Why the workspaces were not listed, when `GET /workspaces` was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace_fallback: Option<String>,
    /// The enabled rules whose selector matches the key.
    pub rules: Vec<String>,
    /// The fields keywarden set on it, and by which rule.
    pub claims: Vec<Claim>,
    /// The forecasts that cover the key.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub forecasts: Vec<ForecastRow>,
}

impl KeyHoldings {
    /// The key's workspace for people: its slug, else its id, else `-`.
    pub fn workspace_text(&self, key: &Key) -> String {
        self.workspace
            .clone()
            .or_else(|| key.workspace_id.clone())
            .unwrap_or_else(|| "-".into())
    }
}

impl Holdings {
    /// Reads the enabled rules and the claims from `store`; `forecasts`
    /// are where the budget and forecast rules' spend is heading.
    pub async fn read(store: &Store, forecasts: Vec<ForecastRow>) -> anyhow::Result<Holdings> {
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
        Ok(Holdings {
            selectors,
            claims,
            forecasts,
        })
    }

    /// What is held on `key`, one of the keys of `listing`.
    pub fn of(&self, key: &Key, listing: &KeyListing) -> KeyHoldings {
        let rules: Vec<String> = self
            .selectors
            .iter()
            .filter(|s| s.selector.matches(key, &listing.workspaces))
            .map(|s| s.rule.clone())
            .collect();
        let forecasts = self
            .forecasts
            .iter()
            .filter(|f| match f.scope {
                Scope::Each => f.key_hash.as_deref() == Some(key.hash.as_str()),
                Scope::Group => rules.contains(&f.rule),
            })
            .cloned()
            .collect();
        KeyHoldings {
            workspace: key
                .workspace_id
                .as_deref()
                .and_then(|id| listing.slug_of(id))
                .map(str::to_owned),
            workspace_fallback: listing.fallback.as_ref().map(|f| f.note.clone()),
            claims: self.claims.get(&key.hash).cloned().unwrap_or_default(),
            rules,
            forecasts,
        }
    }

    /// Every claim, by key hash.
    pub fn claims(&self) -> &HashMap<String, Vec<Claim>> {
        &self.claims
    }
}

/// The API's key objects as it returned them, each with a `keywarden`
/// member: `{"workspace": SLUG, "rules": [NAME…], "claims": [CLAIM…], …}`.
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

/// The key's burn rate (`USD/h`) and where its spend is heading, for
/// people: `keys list`'s last two columns and the dashboard's.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ForecastCells {
    /// The burn rate in USD an hour; `?` when unknown.
    pub rate: String,
    /// The projection against the budget, and the rule's name.
    pub projection: String,
}

/// The burn rate and the projection of the first forecast that crosses (or
/// has crossed) before its window ends, else of the first one; empty when
/// no budget or forecast rule covers the key. `?` when the rate is unknown.
pub fn forecast_cells(forecasts: &[ForecastRow]) -> ForecastCells {
    let pressing = forecasts
        .iter()
        .find(|f| matches!(f.status, Status::Crossed | Status::WillCross))
        .or(forecasts.first());
    let Some(f) = pressing else {
        return ForecastCells::default();
    };
    let budget = f.budget_usd.map(|b| b * f.at_fraction);
    let projection = match (f.status, f.projected_usd, f.crossing_at) {
        (Status::Unknown, ..) => "?".to_string(),
        (Status::Crossed, ..) => format!("over {} ({})", output::usd_or_unknown(budget), f.rule),
        (Status::WillCross, _, Some(at)) => format!(
            "reaches {} at {} ({})",
            output::usd_or_unknown(budget),
            rfc3339_minutes(at),
            f.rule
        ),
        (_, Some(projected), _) => format!(
            "{projected:.2} of {} by {} ({})",
            output::usd_or_unknown(budget),
            f.window_end.map_or_else(String::new, rfc3339_minutes),
            f.rule
        ),
        _ => format!("under {} ({})", output::usd_or_unknown(budget), f.rule),
    };
    ForecastCells {
        rate: output::usd_or_unknown(f.rate_usd_per_hour),
        projection,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(rate: &str, projection: &str) -> ForecastCells {
        ForecastCells {
            rate: rate.into(),
            projection: projection.into(),
        }
    }

    #[test]
    fn the_most_pressing_forecast_of_the_key_is_shown() {
        let example = ForecastRow::example;
        assert_eq!(
            forecast_cells(&[]),
            cells("", ""),
            "no budget rule covers it"
        );
        // 31.30 USD at 1.10 USD/h reaches 50 USD 17 hours later.
        let soon = example("team-a-monthly", None, Some(1.1), 31.3);
        let calm = example("ci-monthly", Some("ci-01"), Some(0.01), 10.0);
        assert_eq!(
            forecast_cells(&[calm.clone(), soon.clone()]),
            cells(
                "1.10",
                "reaches 50.00 at 2026-12-17T09:00Z (team-a-monthly)"
            ),
            "the crossing first, wherever it is"
        );
        assert_eq!(
            forecast_cells(std::slice::from_ref(&calm)),
            cells("0.01", "13.68 of 50.00 by 2027-01-01T00:00Z (ci-monthly)")
        );
        let over = example("team-a-monthly", None, Some(1.1), 52.1);
        assert_eq!(
            forecast_cells(&[over]).projection,
            "over 50.00 (team-a-monthly)"
        );
        let unknown = example("team-a-monthly", None, None, 31.3);
        assert_eq!(forecast_cells(&[unknown]), cells("?", "?"));
    }
}
