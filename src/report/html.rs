//! The report as one self-contained HTML page: inline CSS and SVG only (no
//! script, stylesheet, font, image source or `url()`), readable printed.
//! A summary first, then a chart of spend against budget per budget rule,
//! the timeline of held keys, and the change table.

use super::periods::{self, Period};
use super::text::{
    PROJECTION_HEADER, PROJECTION_TITLE, TOTAL, hours_minutes, projection_rows, title,
};
use super::{Counters, Report, charts};
use crate::domain::timestamp::rfc3339;
use crate::engine::Outcome;
use crate::store::report::{Bucket, BudgetPoint};
use crate::store::{ChangeRow, HistoryFilter, Store};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// At most this many changes are listed in the page (the newest); `history`
/// lists them all.
pub const CHANGE_TABLE_LIMIT: i64 = 500;

const STYLE: &str = "
body { font-family: sans-serif; color: #222; margin: 2em auto; max-width: 1140px; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ccc; }
.period { color: #555; margin-top: 0; }
.cards { display: flex; flex-wrap: wrap; gap: 0.8em; margin: 1em 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.6em 1em; min-width: 8em; }
.card .n { font-size: 1.5em; font-weight: bold; display: block; }
.card .what { color: #555; font-size: 0.85em; }
table { border-collapse: collapse; width: 100%; font-size: 0.85em; margin: 0.6em 0; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
tr.total td { font-weight: bold; }
td.num { text-align: right; }
figure { margin: 1em 0; page-break-inside: avoid; break-inside: avoid; }
figure svg { max-width: 100%; height: auto; }
.failed, .unknown { color: #b00; }
@media print { body { margin: 0; max-width: none; } h2 { page-break-after: avoid; } }
";

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Renders the HTML report of `report`, reading the chart data (budget
/// readings per rule, held periods, the newest changes) from `store`.
pub async fn render(store: &Store, report: &Report) -> anyhow::Result<String> {
    let (since, until) = (report.since, report.until);
    let points = store
        .report_budget_points(since, until, Bucket::Rule)
        .await?;
    let mut applied = store
        .changes(&HistoryFilter {
            until: Some(until),
            outcome: Some(Outcome::Applied),
            ..HistoryFilter::default()
        })
        .await?;
    applied.sort_by(|a, b| (&a.key_hash, a.at, a.id).cmp(&(&b.key_hash, b.at, b.id)));
    let held: Vec<Period> = periods::held_periods(&applied)
        .into_iter()
        .filter(|p| p.clip(since, until).is_some())
        .collect();
    let recent = store
        .changes(&HistoryFilter {
            since: Some(since),
            until: Some(until),
            limit: Some(CHANGE_TABLE_LIMIT),
            ..HistoryFilter::default()
        })
        .await?;
    page(report, &points, &held, &recent)
}

fn page(
    report: &Report,
    points: &[BudgetPoint],
    held: &[Period],
    recent: &[ChangeRow],
) -> anyhow::Result<String> {
    let mut h = String::new();
    writeln!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>",
        esc(&title(report))
    )?;
    writeln!(
        h,
        "<h1>keywarden report</h1>\n<p class=\"period\">{} to {} (UTC), grouped by {}</p>",
        rfc3339(report.since),
        rfc3339(report.until),
        report.group_by
    )?;
    summary(&mut h, report)?;

    writeln!(h, "<h2>Spend against budgets</h2>")?;
    let mut by_rule: BTreeMap<(&str, &str), Vec<BudgetPoint>> = BTreeMap::new();
    for p in points {
        by_rule
            .entry((&p.rule, &p.window))
            .or_default()
            .push(p.clone());
    }
    if by_rule.is_empty() {
        writeln!(h, "<p>No budget rule was evaluated in this period.</p>")?;
    }
    for ((rule, window), series) in &by_rule {
        let projection = report
            .projections
            .iter()
            .find(|p| (p.rule.as_str(), p.window.as_str()) == (*rule, *window));
        let svg =
            charts::budget_chart(rule, window, series, report.since, report.until, projection)?;
        writeln!(
            h,
            "<figure class=\"budget-chart\" data-rule=\"{}\" data-window=\"{}\">\n{svg}\n</figure>",
            esc(rule),
            esc(window)
        )?;
    }

    writeln!(h, "<h2>Timeline</h2>")?;
    if held.is_empty() {
        writeln!(
            h,
            "<p>keywarden held no key disabled or under a setting in this period.</p>"
        )?;
    } else {
        let svg = charts::timeline_chart(held, report.since, report.until)?;
        writeln!(h, "<figure class=\"timeline\">\n{svg}\n</figure>")?;
    }

    changes_table(&mut h, report, recent)?;
    writeln!(h, "</body>\n</html>")?;
    Ok(h)
}

fn summary(h: &mut String, report: &Report) -> anyhow::Result<()> {
    let t = &report.totals;
    writeln!(h, "<h2>Summary</h2>\n<div class=\"cards\">")?;
    for (n, what) in [
        (t.changes.to_string(), "changes"),
        (t.keys_disabled.to_string(), "keys disabled"),
        (t.keys_reenabled.to_string(), "keys re-enabled"),
        (
            hours_minutes(t.disabled_seconds),
            "held disabled (all keys)",
        ),
        (t.failures.to_string(), "failures"),
        (t.source_errors.to_string(), "source errors"),
        (t.guard_trips.to_string(), "guard trips"),
    ] {
        writeln!(
            h,
            "<div class=\"card\"><span class=\"n\">{}</span><span class=\"what\">{what}</span></div>",
            esc(&n)
        )?;
    }
    writeln!(h, "</div>")?;
    writeln!(
        h,
        "<table class=\"groups\">\n<tr><th>{}</th><th>changes</th><th>by kind</th><th>by outcome</th>\
         <th>keys disabled</th><th>keys re-enabled</th><th>time disabled</th><th>failures</th>\
         <th>source errors</th><th>guard trips</th></tr>",
        esc(report.group_by)
    )?;
    for g in &report.groups {
        group_row(h, &g.group, &g.counters, "")?;
    }
    group_row(h, TOTAL, t, " class=\"total\"")?;
    writeln!(h, "</table>")?;
    let budgets: Vec<_> = report
        .groups
        .iter()
        .flat_map(|g| g.budgets.iter().map(move |b| (&g.group, b)))
        .collect();
    if !budgets.is_empty() {
        writeln!(
            h,
            "<table class=\"budgets\">\n<tr><th>{}</th><th>rule</th><th>window</th><th>budget USD</th>\
             <th>peak spend USD</th><th>exceeded at</th></tr>",
            esc(report.group_by)
        )?;
        for (group, b) in budgets {
            writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{:.2}</td>\
                 <td class=\"num\">{:.2}</td><td>{}</td></tr>",
                esc(group),
                esc(&b.rule),
                esc(&b.window),
                b.budget_usd,
                b.spend_usd,
                b.exceeded_at.map_or_else(|| "-".to_string(), rfc3339)
            )?;
        }
        writeln!(h, "</table>")?;
    }
    projection_table(h, report)
}

/// Where the budgets are heading, when the report reaches the present.
fn projection_table(h: &mut String, report: &Report) -> anyhow::Result<()> {
    let rows = projection_rows(report);
    if rows.is_empty() {
        return Ok(());
    }
    let cells = |tag: &str, row: Vec<String>| {
        row.iter()
            .map(|c| format!("<{tag}>{}</{tag}>", esc(c)))
            .collect::<String>()
    };
    let header = PROJECTION_HEADER.map(String::from).to_vec();
    writeln!(
        h,
        "<h3>{PROJECTION_TITLE}</h3>\n<table class=\"projections\">\n<tr>{}</tr>",
        cells("th", header)
    )?;
    for row in rows {
        writeln!(h, "<tr>{}</tr>", cells("td", row))?;
    }
    writeln!(h, "</table>")?;
    Ok(())
}

fn group_row(h: &mut String, name: &str, c: &Counters, class: &str) -> anyhow::Result<()> {
    let list = |pairs: Vec<(String, i64)>| {
        pairs
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    writeln!(
        h,
        "<tr{class}><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td>\
         <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
         <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
        esc(name),
        c.changes,
        list(c.by_kind.iter().map(|(k, n)| (k.to_string(), *n)).collect()),
        list(
            c.by_outcome
                .iter()
                .map(|(o, n)| (o.to_string(), *n))
                .collect()
        ),
        c.keys_disabled,
        c.keys_reenabled,
        hours_minutes(c.disabled_seconds),
        c.failures,
        c.source_errors,
        c.guard_trips
    )?;
    Ok(())
}

fn changes_table(h: &mut String, report: &Report, recent: &[ChangeRow]) -> anyhow::Result<()> {
    writeln!(h, "<h2>Changes</h2>")?;
    if (recent.len() as i64) < report.totals.changes {
        writeln!(
            h,
            "<p>The newest {} of {} changes; <code>keywarden history</code> lists them all.</p>",
            recent.len(),
            report.totals.changes
        )?;
    }
    writeln!(
        h,
        "<table class=\"changes\">\n<tr><th>id</th><th>at</th><th>key</th><th>rule</th><th>kind</th>\
         <th>fields</th><th>outcome</th><th>reason</th></tr>"
    )?;
    for c in recent {
        let fields: Vec<String> = c
            .fields
            .iter()
            .map(|(f, fc)| format!("{f}: {} → {}", fc.from, fc.to))
            .collect();
        let outcome = match &c.error {
            Some(e) => format!("{} ({})", c.outcome, e),
            None => c.outcome.to_string(),
        };
        writeln!(
            h,
            "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"{}\">{}</td><td>{}</td></tr>",
            c.id,
            rfc3339(c.at),
            esc(&c.key_name),
            esc(&c.rule),
            c.kind,
            esc(&fields.join(", ")),
            c.outcome,
            esc(&outcome),
            esc(&c.reason)
        )?;
    }
    writeln!(h, "</table>")?;
    Ok(())
}
