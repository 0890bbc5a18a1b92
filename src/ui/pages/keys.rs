//! `/keys`: every key with its workspace, guardrail, state, limit and
//! reset, usage windows, burn rate and projection, the rules that hold it,
//! claims and exemptions; filterable.

use super::history::{choice, field};
use super::layout::{Nav, page, pager, when};
use crate::domain::{Guardrail, Key};
use crate::engine::Exemption;
use crate::listing::keys::{ForecastCells, Holdings, KeyHoldings, claim_text, forecast_cells};
use crate::listing::rules::stored_rules;
use crate::output::shorten;
use crate::ui::error::UiError;
use crate::ui::filters::{KEY_STATES, KeyQuery};
use crate::ui::state::Dashboard;
use crate::ui::table::{Column, table, usd};
use axum::extract::{Query, State};
use maud::{Markup, html};
use std::sync::Arc;

/// One row of the Keys page.
pub struct KeyRow<'a> {
    /// The key as listed.
    pub key: &'a Key,
    /// What keywarden holds on it.
    pub held: KeyHoldings<'a>,
    /// Its guardrail for people ([`guardrail_text`]).
    pub guardrail: String,
    /// Its burn rate and projection, as `keys list` prints them.
    pub forecast: ForecastCells,
    /// The exemptions in force on it.
    pub exemptions: Vec<&'a Exemption>,
}

/// The columns of the Keys page; a new field of a key is one more line.
fn columns<'a>() -> [Column<KeyRow<'a>>; 16] {
    [
        Column::text("name", |r| html! { (r.key.name) }),
        Column::text("hash", |r| html! { code { (shorten(&r.key.hash, 12)) } }),
        Column::text("workspace", |r| html! { (r.held.workspace_text(r.key)) }),
        Column::text("guardrail", |r| html! { (r.guardrail) }),
        Column::text("state", |r| match r.key.disabled {
            true => html! { span.bad { "disabled" } },
            false => html! { span.ok { "enabled" } },
        }),
        Column::figures("limit", |r| match r.key.limit {
            Some(l) => html! { (format!("{l:.2}")) },
            None => html! { "none" },
        }),
        Column::text(
            "reset",
            |r| html! { (r.key.limit_reset.as_deref().unwrap_or("none")) },
        ),
        Column::figures("daily", |r| usd(r.key.usage_daily)),
        Column::figures("weekly", |r| usd(r.key.usage_weekly)),
        Column::figures("monthly", |r| usd(r.key.usage_monthly)),
        Column::figures("total", |r| usd(r.key.usage)),
        Column::figures("USD/h", |r| html! { (r.forecast.rate) }),
        Column::text("forecast", |r| html! { (r.forecast.projection) }),
        Column::text("rules", |r| html! { (r.held.rules.join(", ")) }),
        Column::text("claims", |r| {
            html! {
                @for c in &r.held.claims { div { (claim_text(c)) } }
            }
        }),
        Column::text("exemptions", |r| {
            html! {
                @for e in &r.exemptions {
                    div { "until " (when(Some(e.until))) @if let Some(rule) = &e.rule { " (" (rule) ")" } ": " (e.reason) }
                }
            }
        }),
    ]
}

/// The key's guardrail for people: its name when the account's guardrails
/// were read, else its id, else `-` (none, or not read).
fn guardrail_text(key: &Key, guardrails: &[Guardrail]) -> String {
    key.guardrail.map_or_else(
        || "-".to_string(),
        |id| {
            guardrails
                .iter()
                .find(|g| g.id == id)
                .map_or_else(|| id.to_string(), |g| g.name.clone())
        },
    )
}

/// `GET /keys?name=GLOB&workspace=SLUG|ID&state=enabled|disabled|held&rule=NAME`.
pub async fn show(
    State(d): State<Arc<Dashboard>>,
    Query(query): Query<KeyQuery>,
) -> Result<Markup, UiError> {
    let view = d.view();
    let store = &d.shell.store;
    let rules = stored_rules(store).await?;
    let holdings = Holdings::read(store, &rules)
        .await?
        .with_forecasts(view.forecasts());
    let now = d.shell.clock.now();
    let exemptions: Vec<Exemption> = store
        .exemptions()
        .await?
        .into_iter()
        .filter(|e| e.until > now)
        .collect();
    let selected = query.select(&view.listing, &holdings)?;
    let total = selected.len();
    let shown = query.page(total);
    let rows: Vec<KeyRow> = query
        .held_on_page(&selected, &view.listing, &holdings)
        .into_iter()
        .map(|(key, held)| KeyRow {
            key,
            guardrail: guardrail_text(key, &view.guardrails),
            forecast: forecast_cells(&held.forecasts),
            held,
            exemptions: exemptions
                .iter()
                .filter(|e| e.key_hash == key.hash)
                .collect(),
        })
        .collect();
    let body = html! {
        h1 { "Keys" }
        form.filters method="get" action="/keys" {
            (field("name", "name", &query.name, "team-a-*"))
            (field("workspace", "workspace", &query.workspace, "research"))
            (choice("state", &query.state, KEY_STATES.iter().map(|s| s.to_string())))
            (choice("rule", &query.rule, rules.into_iter().map(|r| r.name)))
            button type="submit" { "Filter" }
        }
        p.muted { (total) " of " (view.listing.keys.len()) " keys pass · observed " (when(view.observed_at)) }
        (table(&columns(), &rows, "No key passes these filters."))
        (pager("/keys", &query.params(), shown))
    };
    Ok(page(Nav::Keys, d.run_id(), body))
}
