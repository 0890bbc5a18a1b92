//! `/`: what this process is, the last and next run, open outages, the
//! account's credits, keys by state and the changes the guard held.

use super::history::change_columns;
use super::layout::{Nav, page, when};
use crate::store::dashboard::{OpenOutage, RunLine};
use crate::ui::error::UiError;
use crate::ui::state::Dashboard;
use crate::ui::status::status;
use crate::ui::table::{Column, table};
use axum::extract::State;
use maud::{Markup, html};
use std::sync::Arc;

/// `GET /`.
pub async fn show(State(d): State<Arc<Dashboard>>) -> Result<Markup, UiError> {
    let s = status(&d).await?;
    let body = html! {
        h1 { "Overview" }
        @if let Some(e) = &s.observation_error {
            p.bad { "The account could not be read: " (e) }
        }
        div.cards {
            (card("This process", html! { (s.role.to_string()) }))
            (card("Last run", last_run(s.last_run.as_ref())))
            (card("Next run", html! { (when(s.next_run)) }))
            (card("Credits left", match s.credits {
                Some(c) => html! { (format!("{:.2}", c.remaining())) " USD" },
                None => html! { span.muted { "unknown" } },
            }))
            (card("Keys", html! { (s.keys.total) }))
            (card("Enabled", html! { (s.keys.enabled) }))
            (card("Disabled", html! { (s.keys.disabled) }))
            (card("Held disabled by keywarden", html! { (s.keys.held_disabled) }))
        }
        h2 { "Open outages" }
        (table(&OUTAGE_COLUMNS, &s.outages, "None: the credential, every budget source and every webhook work."))
        h2 { "Changes held by the guard" }
        (table(&change_columns(), &s.held_changes, "None held in the last run."))
        p.muted { "Keys observed " (when(s.observed_at)) "." }
    };
    Ok(page(Nav::Overview, d.run_id(), body))
}

fn card(label: &str, value: Markup) -> Markup {
    html! { div.card { div.label { (label) } div.value { (value) } } }
}

fn last_run(run: Option<&RunLine>) -> Markup {
    let Some(run) = run else {
        return html! { span.muted { "none yet" } };
    };
    let class = match run.status.as_str() {
        "ok" => "ok",
        "running" => "muted",
        _ => "bad",
    };
    html! {
        span class=(class) { "#" (run.id) " " (run.status) }
        div.detail {
            (when(Some(run.started_at))) " · "
            (run.changes) " changes, " (run.applied) " applied, "
            (run.failed) " failed, " (run.held) " held"
        }
    }
}

const OUTAGE_COLUMNS: [Column<OpenOutage>; 3] = [
    Column::text(
        "what",
        |o| html! { span.bad { (o.kind.replace('_', " ")) } },
    ),
    Column::text("which", |o| html! { (o.subject) }),
    Column::text("since", |o| html! { (when(Some(o.since))) }),
];
