//! `/history`: the changes, filterable like `keywarden history`, paged.

use super::layout::{Nav, page, when};
use crate::engine::{ChangeKind, Outcome};
use crate::output::{FieldsStyle, fields_text};
use crate::store::ChangeRow;
use crate::ui::error::UiError;
use crate::ui::filters::{HistoryQuery, PAGE_SIZE};
use crate::ui::paging::Page;
use crate::ui::state::Dashboard;
use crate::ui::table::{Column, table};
use axum::extract::{Query, State};
use maud::{Markup, html};
use std::sync::Arc;

/// The columns of a change, as `history` prints them.
pub fn change_columns() -> [Column<ChangeRow>; 8] {
    [
        Column::figures("id", |r| html! { (r.id) }),
        Column::text("at", |r| html! { (when(Some(r.at))) }),
        Column::text("rule", |r| html! { (r.rule) }),
        Column::text("key", |r| html! { (r.key_name) }),
        Column::text("kind", |r| html! { (r.kind) }),
        Column::text(
            "fields",
            |r| html! { (fields_text(&r.fields, FieldsStyle::Listing)) },
        ),
        Column::text(
            "outcome",
            |r| html! { span class=(outcome_class(r.outcome)) { (r.outcome) } },
        ),
        Column::text("reason", |r| html! { (r.reason) }),
    ]
}

fn outcome_class(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Applied => "ok",
        Outcome::Failed | Outcome::Unknown => "bad",
        Outcome::Held => "warn",
        _ => "muted",
    }
}

/// `GET /history?since=…&until=…&key=…&rule=…&kind=…&outcome=…&page=N`.
pub async fn show(
    State(d): State<Arc<Dashboard>>,
    Query(query): Query<HistoryQuery>,
) -> Result<Markup, UiError> {
    let filter = query.filter(&d.shell.store, d.shell.clock.now()).await?;
    let rows = d.shell.store.changes(&filter).await?;
    let page_no = query.page();
    let link = |page: i64| {
        let q = &query;
        let params = [
            ("since", q.since.as_str()),
            ("until", &q.until),
            ("key", &q.key),
            ("rule", &q.rule),
            ("kind", &q.kind),
            ("outcome", &q.outcome),
        ];
        Page::link("/history", &params, page as usize)
    };
    let body = html! {
        h1 { "History" }
        form.filters method="get" action="/history" {
            (field("since", "since", &query.since, "7d, 2026-12-01"))
            (field("until", "until", &query.until, "now"))
            (field("key", "key", &query.key, "name or hash"))
            (field("rule", "rule", &query.rule, ""))
            (choice("kind", &query.kind, ChangeKind::ALL.iter().map(|k| k.to_string())))
            (choice("outcome", &query.outcome, Outcome::ALL.iter().map(|o| o.to_string())))
            button type="submit" { "Filter" }
        }
        (table(&change_columns(), &rows, "No changes recorded that pass these filters."))
        div.pager {
            @if page_no > 1 { a href=(link(page_no - 1)) { "← newer" } }
            span.muted { "page " (page_no) }
            @if rows.len() as i64 == PAGE_SIZE { a href=(link(page_no + 1)) { "older →" } }
        }
    };
    Ok(page(Nav::History, d.run_id(), body))
}

/// A text field of a filter form.
pub fn field(name: &str, label: &str, value: &str, placeholder: &str) -> Markup {
    html! {
        label { (label) input type="text" name=(name) value=(value) placeholder=(placeholder); }
    }
}

/// A drop-down of a filter form, "any" first.
pub fn choice(name: &str, value: &str, options: impl Iterator<Item = String>) -> Markup {
    html! {
        label { (name)
            select name=(name) {
                option value="" { "any" }
                @for o in options { option value=(o) selected[o == value] { (o) } }
            }
        }
    }
}
