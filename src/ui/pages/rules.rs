//! `/rules`: each rule, what it selects, when it holds and what it sets
//! (as `rules show` writes it), the keys it selects and those it holds now.

use super::layout::{Nav, page};
use crate::listing::keys::claim_text;
use crate::listing::rules::RuleListing;
use crate::rules::selector::SelectorIndex;
use crate::ui::error::UiError;
use crate::ui::state::Dashboard;
use crate::ui::table::{Column, table};
use axum::extract::State;
use maud::{Markup, html};
use std::collections::HashMap;
use std::sync::Arc;

/// One row of the Rules page.
pub struct RuleRow {
    /// The rule as `rules list --format json` lists it.
    pub listing: RuleListing,
    /// How many listed keys its selector matches.
    pub selected: usize,
    /// What it holds now: `team-a-ci: disabled by team-a-monthly`.
    pub holds: Vec<String>,
}

fn columns() -> [Column<RuleRow>; 6] {
    [
        Column::text("rule", |r| html! { strong { (r.listing.name) } }),
        Column::text("enabled", |r| match r.listing.enabled {
            true => html! { span.ok { "yes" } },
            false => html! { span.muted { "no" } },
        }),
        Column::figures("priority", |r| html! { (r.listing.priority) }),
        Column::text(
            "keys · when · set",
            |r| html! { pre { (r.listing.toml.trim_end()) } },
        ),
        Column::figures("selects", |r| html! { (r.selected) }),
        Column::text("holds now", |r| {
            html! {
                @for h in &r.holds { div { (h) } }
                @if r.holds.is_empty() { span.muted { "nothing" } }
            }
        }),
    ]
}

/// `GET /rules`.
pub async fn show(State(d): State<Arc<Dashboard>>) -> Result<Markup, UiError> {
    let store = &d.shell.store;
    let view = d.view();
    let names: HashMap<&str, &str> = view
        .listing
        .keys
        .iter()
        .map(|k| (k.hash.as_str(), k.name.as_str()))
        .collect();
    let mut holds: HashMap<String, Vec<String>> = HashMap::new();
    for claim in store.claims().await? {
        let key = names
            .get(claim.key_hash.as_str())
            .copied()
            .unwrap_or("(key not listed)");
        holds
            .entry(claim.rule.clone())
            .or_default()
            .push(format!("{key}: {}", claim_text(&claim)));
    }
    let stored = store.rules().await?;
    // Every rule's keys in one pass over the keys.
    let selected = SelectorIndex::new(stored.iter().map(|s| &s.rule.keys))
        .select(&view.listing.keys, &view.listing.workspaces);
    let rows: Vec<RuleRow> = stored
        .iter()
        .zip(selected)
        .map(|(stored, keys)| RuleRow {
            listing: RuleListing::of(stored),
            selected: keys.len(),
            holds: holds.remove(&stored.rule.name).unwrap_or_default(),
        })
        .collect();
    let body = html! {
        h1 { "Rules" }
        (table(&columns(), &rows, "No rules yet: keywarden rules import config/rules.example.toml"))
    };
    Ok(page(Nav::Rules, d.run_id(), body))
}
