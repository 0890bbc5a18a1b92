//! What keywarden holds on each listed key, and the key objects of
//! `keys list --format json` and `/api/keys`.

use crate::domain::timestamp::rfc3339_minutes;
use crate::domain::{Field, FieldValue, Key};
use crate::engine::Claim;
use crate::engine::forecast::Status;
use crate::engine::outlook::ForecastRow;
use crate::openrouter::KeyListing;
use crate::output;
use crate::rules::Rule;
use crate::rules::model::Scope;
use crate::rules::model::Selector;
use crate::rules::selector::{CompiledSelector, SelectorIndex};
use crate::store::Store;
use serde::Serialize;
use std::borrow::Borrow;
use std::collections::HashMap;

/// What keywarden holds on the account: its enabled rules' selectors, its
/// claims by key and the forecasts of its budget and forecast rules
/// (borrowed from the outlook they are rows of).
pub struct Holdings<'a> {
    /// The enabled rules' names and selectors, in the rules' order.
    selectors: Vec<RuleSelector>,
    /// The same selectors indexed: every rule that selects a key is found
    /// in one pass over the key.
    index: SelectorIndex,
    claims: HashMap<String, Vec<Claim>>,
    forecasts: Option<Forecasts<'a>>,
}

impl Default for Holdings<'_> {
    fn default() -> Self {
        Holdings {
            selectors: Vec::new(),
            index: SelectorIndex::new([]),
            claims: HashMap::new(),
            forecasts: None,
        }
    }
}

/// Where an outlook's rows are, by the key a scope `each` row is of and
/// the rule a scope `group` row is of, so that a key's rows are found
/// without reading every row. Made once per outlook (the dashboard keeps
/// it beside its view) and read through [`Forecasts`].
#[derive(Debug, Default)]
pub struct ForecastIndex {
    /// Positions of each key's own rows, by key hash.
    by_key: HashMap<String, Vec<usize>>,
    /// Positions of each rule's group rows, by rule name.
    by_group: HashMap<String, Vec<usize>>,
}

impl ForecastIndex {
    /// The index of `rows`.
    pub fn new(rows: &[ForecastRow]) -> ForecastIndex {
        let mut index = ForecastIndex::default();
        for (i, row) in rows.iter().enumerate() {
            match (row.scope, &row.key_hash) {
                (Scope::Each, Some(hash)) => index.by_key.entry(hash.clone()).or_default().push(i),
                (Scope::Group, _) => index.by_group.entry(row.rule.clone()).or_default().push(i),
                (Scope::Each, None) => {}
            }
        }
        index
    }
}

/// An outlook's rows in their order (soonest crossing first) and their
/// index, borrowed: nothing is copied per request.
#[derive(Debug, Clone, Copy)]
pub struct Forecasts<'a> {
    rows: &'a [ForecastRow],
    index: &'a ForecastIndex,
}

impl<'a> Forecasts<'a> {
    /// `rows` found through `index`, which must be [`ForecastIndex::new`]
    /// of them.
    pub fn new(rows: &'a [ForecastRow], index: &'a ForecastIndex) -> Forecasts<'a> {
        Forecasts { rows, index }
    }

    /// The rows covering `key`, which the `rules` select, in their order.
    fn of(&self, key: &Key, rules: &[String]) -> Vec<&'a ForecastRow> {
        let mut positions: Vec<usize> = self
            .index
            .by_key
            .get(&key.hash)
            .into_iter()
            .chain(rules.iter().filter_map(|r| self.index.by_group.get(r)))
            .flatten()
            .copied()
            .collect();
        positions.sort_unstable();
        positions.into_iter().map(|i| &self.rows[i]).collect()
    }
}

/// An enabled rule's name and selector.
struct RuleSelector {
    rule: String,
    selector: Selector,
}

/// What keywarden knows of one key: its workspace's slug, the enabled
/// rules that select it, the fields it has set because of them, and the
/// forecasts that cover it (its own for scope `each`, its group's for scope
/// `group`), soonest crossing first; absent from the JSON when none does.
#[derive(Debug, Default, Clone, Serialize)]
pub struct KeyHoldings<'a> {
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
    /// The forecasts that cover the key (rows of the outlook, which a
    /// group's row shares among its keys).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub forecasts: Vec<&'a ForecastRow>,
}

impl KeyHoldings<'_> {
    /// The key's workspace for people: its slug, else its id, else `-`.
    pub fn workspace_text(&self, key: &Key) -> String {
        self.workspace
            .clone()
            .or_else(|| key.workspace_id.clone())
            .unwrap_or_else(|| "-".into())
    }
}

impl Holdings<'_> {
    /// The selectors of the enabled `rules` (every stored rule, read by
    /// the caller, once) and the claims read from `store`; no forecasts
    /// until [`Holdings::with_forecasts`].
    pub async fn read(store: &Store, rules: &[Rule]) -> anyhow::Result<Holdings<'static>> {
        let selectors: Vec<RuleSelector> = rules
            .iter()
            .filter(|r| r.enabled)
            .map(|r| RuleSelector {
                selector: r.keys.clone(),
                rule: r.name.clone(),
            })
            .collect();
        let index = SelectorIndex::new(selectors.iter().map(|s| &s.selector));
        let mut claims: HashMap<String, Vec<Claim>> = HashMap::new();
        for claim in store.claims().await? {
            claims
                .entry(claim.key_hash.clone())
                .or_default()
                .push(claim);
        }
        Ok(Holdings {
            selectors,
            index,
            claims,
            forecasts: None,
        })
    }

    /// The same holdings with `forecasts`: where the budget and forecast
    /// rules' spend is heading.
    pub fn with_forecasts(self, forecasts: Forecasts<'_>) -> Holdings<'_> {
        Holdings {
            selectors: self.selectors,
            index: self.index,
            claims: self.claims,
            forecasts: Some(forecasts),
        }
    }
}

impl<'a> Holdings<'a> {
    /// What is held on each of `keys`, keys of `listing`, in their order.
    pub fn of_each(&self, keys: &[Key], listing: &KeyListing) -> Vec<KeyHoldings<'a>> {
        let mut rules: Vec<Vec<String>> = vec![Vec::new(); keys.len()];
        let selected = self.index.select(keys, &listing.workspaces);
        for (s, positions) in self.selectors.iter().zip(selected) {
            for i in positions {
                rules[i].push(s.rule.clone());
            }
        }
        keys.iter()
            .zip(rules)
            .map(|(key, rules)| KeyHoldings {
                workspace: key
                    .workspace_id
                    .as_deref()
                    .and_then(|id| listing.slug_of(id))
                    .map(str::to_owned),
                workspace_fallback: listing.fallback.as_ref().map(|f| f.note.clone()),
                claims: self.claims.get(&key.hash).cloned().unwrap_or_default(),
                forecasts: self
                    .forecasts
                    .map(|f| f.of(key, &rules))
                    .unwrap_or_default(),
                rules,
            })
            .collect()
    }

    /// The selector of the enabled rule named `rule`, compiled to test
    /// many keys; `None` when no enabled rule is so named.
    pub fn selector_of(&self, rule: &str) -> Option<CompiledSelector> {
        self.selectors
            .iter()
            .find(|s| s.rule == rule)
            .map(|s| CompiledSelector::new(&s.selector))
    }

    /// Whether keywarden holds `key` disabled.
    pub fn holds_disabled(&self, key: &Key) -> bool {
        self.claims.get(&key.hash).is_some_and(|claims| {
            claims
                .iter()
                .any(|c| c.field == Field::Disabled && c.value == FieldValue::Disabled(true))
        })
    }

    /// Every claim, by key hash.
    pub fn claims(&self) -> &HashMap<String, Vec<Claim>> {
        &self.claims
    }
}

/// One key object of `keys list --format json` and `/api/keys`: the API's
/// key object as it returned it, with a `keywarden` member:
/// `{"workspace": SLUG, "rules": [NAME…], "claims": [CLAIM…], …}`.
/// Serialized straight to the output, member by member.
#[derive(Debug, Serialize)]
pub struct ListedKey<'a> {
    /// The key as listed.
    #[serde(flatten)]
    pub key: &'a Key,
    /// What keywarden holds on it.
    pub keywarden: KeyHoldings<'a>,
}

impl<'a> From<(&'a Key, KeyHoldings<'a>)> for ListedKey<'a> {
    fn from((key, keywarden): (&'a Key, KeyHoldings<'a>)) -> Self {
        ListedKey { key, keywarden }
    }
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
pub fn forecast_cells<F: Borrow<ForecastRow>>(forecasts: &[F]) -> ForecastCells {
    let pressing = forecasts
        .iter()
        .map(Borrow::borrow)
        .find(|f| matches!(f.status, Status::Crossed | Status::WillCross))
        .or(forecasts.first().map(Borrow::borrow));
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
    fn a_keys_forecasts_are_its_own_and_its_groups_in_the_outlooks_order() {
        let example = ForecastRow::example;
        let rows = [
            example("team-a-monthly", None, Some(1.1), 31.3),
            example("ci-monthly", Some("ci-01"), Some(0.5), 20.0),
            example("ci-monthly", Some("ci-02"), Some(0.5), 20.0),
            example("all-monthly", None, Some(0.01), 10.0),
            example("ci-daily", Some("ci-01"), Some(0.01), 1.0),
        ];
        let index = ForecastIndex::new(&rows);
        let forecasts = Forecasts::new(&rows, &index);
        let key: Key = serde_json::from_value(serde_json::json!({
            "hash": "hash-ci-01", "name": "ci-01", "disabled": false, "limit": null,
            "limit_remaining": null, "limit_reset": null, "usage": 0.0,
            "usage_daily": 0.0, "usage_weekly": 0.0, "usage_monthly": 0.0
        }))
        .unwrap();
        let rules = [
            "all-monthly".to_string(),
            "ci-monthly".into(),
            "ci-daily".into(),
        ];
        let rows: Vec<(String, Option<String>)> = forecasts
            .of(&key, &rules)
            .into_iter()
            .map(|f| (f.rule.clone(), f.key_hash.clone()))
            .collect();
        assert_eq!(
            rows,
            [
                ("ci-monthly".to_string(), Some("hash-ci-01".to_string())),
                ("all-monthly".to_string(), None),
                ("ci-daily".to_string(), Some("hash-ci-01".to_string())),
            ],
            "not team-a-monthly's group nor ci-02's row"
        );
    }

    #[test]
    fn the_most_pressing_forecast_of_the_key_is_shown() {
        let example = ForecastRow::example;
        assert_eq!(
            forecast_cells::<ForecastRow>(&[]),
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
