//! `/budgets`: every budget and forecast rule by group or key: spend
//! against budget as a bar, the burn rate, the projection and crossing
//! time, and a chart of this window's spend per rule (the report's chart).

use super::layout::{Nav, page, pager, when};
use crate::domain::Window;
use crate::engine::forecast::Status;
use crate::engine::outlook::ForecastRow;
use crate::listing::rules::stored_rules;
use crate::report::charts::budget_chart;
use crate::report::projection::projections;
use crate::store::report::{Bucket, BudgetPoint};
use crate::ui::api::observed_at;
use crate::ui::error::UiError;
use crate::ui::paging::{PAGE_ITEMS, Page, PageQuery};
use crate::ui::state::Dashboard;
use crate::ui::table::{Column, table, usd};
use axum::extract::{Query, State};
use chrono::{DateTime, Duration, Utc};
use maud::{Markup, PreEscaped, html};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Charts drawn, one per rule and window, in the rows' order.
const CHARTS_SHOWN: usize = 6;

/// How far back the chart of a `total` window looks.
const TOTAL_CHART_DAYS: i64 = 30;

fn columns() -> [Column<ForecastRow>; 8] {
    [
        Column::text("rule", |r| html! { (r.rule) }),
        Column::text(
            "key",
            |r| html! { (r.key_name.as_deref().unwrap_or("(group)")) },
        ),
        Column::text("window", |r| html! { (r.window) }),
        Column::text("spend against budget", spend_bar),
        Column::figures("USD/h", |r| usd(r.rate_usd_per_hour)),
        Column::figures("projected", |r| usd(r.projected_usd)),
        Column::text("crossing", |r| html! { (when(r.crossing_at)) }),
        Column::text("status", |r| status(r.status)),
    ]
}

/// `12.30 of 50.00` with a bar (`<meter>`: no inline style needed).
fn spend_bar(r: &ForecastRow) -> Markup {
    let Some(budget) = r.budget_usd.map(|b| b * r.at_fraction) else {
        return html! { (usd(r.spend_usd)) " of " span.muted { "unknown budget" } };
    };
    let spend = r.spend_usd.unwrap_or(0.0);
    html! {
        meter min="0" max=(budget) low=(budget * 0.8) high=(budget * 0.95) optimum="0" value=(spend) {}
        " " (usd(r.spend_usd)) " of " (format!("{budget:.2}"))
    }
}

fn status(status: Status) -> Markup {
    match status {
        Status::Ok => html! { span.ok { "ok" } },
        Status::WillCross => html! { span.warn { "will cross" } },
        Status::Crossed => html! { span.bad { "crossed" } },
        Status::Unknown => html! { span.muted { "unknown rate" } },
    }
}

/// Where the chart of `window` at `now` starts.
fn chart_since(window: Window, now: DateTime<Utc>) -> DateTime<Utc> {
    window
        .bounds(now)
        .map_or(now - Duration::days(TOTAL_CHART_DAYS), |b| b.start)
}

/// `GET /budgets?page=N`: 500 rows a page, and the charts.
pub async fn show(
    State(d): State<Arc<Dashboard>>,
    Query(query): Query<PageQuery>,
) -> Result<Markup, UiError> {
    let view = d.view();
    let rows = view.forecast_rows();
    // The charts read the database up to now: its readings may be newer
    // than the last observation of the account.
    let now = d.shell.clock.now();
    let charted: Vec<(&str, Window)> = rows
        .iter()
        .map(|r| (r.rule.as_str(), r.window))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .take(CHARTS_SHOWN)
        .collect();
    let since = charted
        .iter()
        .map(|(_, w)| chart_since(*w, now))
        .min()
        .unwrap_or(now);
    let points = d
        .shell
        .store
        .report_budget_points(since, now + Duration::seconds(1), Bucket::Rule)
        .await?;
    let rules = stored_rules(&d.shell.store).await?;
    let projections = projections(&points, &rules, now);
    let mut charts = Vec::new();
    for (rule, window) in &charted {
        let mine: Vec<BudgetPoint> = points
            .iter()
            .filter(|p| p.rule == *rule && p.window == window.as_str())
            .cloned()
            .collect();
        if mine.is_empty() {
            continue;
        }
        let until = window.bounds(now).map_or(now, |b| b.end);
        let svg = budget_chart(
            rule,
            window.as_str(),
            &mine,
            chart_since(*window, now),
            until,
            projections
                .iter()
                .find(|p| p.rule == *rule && p.window == window.as_str()),
        )?;
        charts.push(svg);
    }
    let shown = Page::new(query.page, rows.len());
    let body = html! {
        h1 { "Budgets" }
        p.muted { "Figures at " (when(Some(observed_at(&d, &view)))) "; the projection is the spend at the window's end at the current rate." }
        (table(&columns(), shown.of(rows), "No rule has a budget or forecast condition."))
        @if rows.len() > PAGE_ITEMS {
            p.muted { (rows.len()) " rows, " (PAGE_ITEMS) " a page; those with a known budget are in " a href="/api/budgets" { "/api/budgets" } "." }
            (pager("/budgets", &[], shown))
        }
        @for svg in &charts {
            // plotters' SVG: text and shapes only, no script or link.
            div.chart { (PreEscaped(svg)) }
        }
    };
    Ok(page(Nav::Budgets, d.run_id(), body))
}
