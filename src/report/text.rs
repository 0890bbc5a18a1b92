//! The report as a terminal table, Markdown and CSV: one row per group and
//! a total row, then the budget lines.

use super::{BudgetLine, Counters, Report};
use crate::domain::timestamp::rfc3339;
use crate::engine::{ChangeKind, Outcome};
use crate::output;

/// The name of the total row.
pub const TOTAL: &str = "(total)";

const SUMMARY_HEADER: [&str; 10] = [
    "group",
    "changes",
    "by kind",
    "by outcome",
    "keys disabled",
    "keys re-enabled",
    "time disabled",
    "failures",
    "source errors",
    "guard trips",
];

const BUDGET_HEADER: [&str; 6] = [
    "group",
    "rule",
    "window",
    "budget USD",
    "peak spend USD",
    "exceeded at",
];

/// The header of the projection table.
pub const PROJECTION_HEADER: [&str; 8] = [
    "rule",
    "window",
    "spend USD",
    "budget USD",
    "USD/h",
    "projected USD",
    "window ends",
    "reaches budget",
];

/// The title of the projection table.
pub const PROJECTION_TITLE: &str = "Where budgets are heading";

/// The projections, one row each: the spend at the last reading, the rate,
/// the spend projected to the window's end (`-` for `total`) and when it
/// reaches the budget (`-` when not before the window ends).
pub fn projection_rows(report: &Report) -> Vec<Vec<String>> {
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| t.map_or_else(|| "-".into(), rfc3339);
    report
        .projections
        .iter()
        .map(|p| {
            vec![
                p.rule.clone(),
                p.window.clone(),
                format!("{:.2}", p.spend_usd),
                format!("{:.2}", p.threshold_usd),
                format!("{:.2}", p.rate_usd_per_hour),
                p.projected_usd
                    .map_or_else(|| "-".into(), |u| format!("{u:.2}")),
                time(p.window_end),
                time(p.crossing_at),
            ]
        })
        .collect()
}

/// `36h 31m`: whole hours and minutes (seconds rounded to the minute).
pub fn hours_minutes(seconds: i64) -> String {
    let minutes = (seconds + 30) / 60;
    format!("{}h {:02}m", minutes / 60, minutes % 60)
}

/// `assert 3, release 2`: the non-zero counts.
fn nonzero<K: std::fmt::Display>(counts: impl IntoIterator<Item = (K, i64)>) -> String {
    let parts: Vec<String> = counts
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

fn summary_row(name: &str, c: &Counters) -> Vec<String> {
    vec![
        name.to_string(),
        c.changes.to_string(),
        nonzero(c.by_kind.iter().map(|(k, n)| (k, *n))),
        nonzero(c.by_outcome.iter().map(|(o, n)| (o, *n))),
        c.keys_disabled.to_string(),
        c.keys_reenabled.to_string(),
        hours_minutes(c.disabled_seconds),
        c.failures.to_string(),
        c.source_errors.to_string(),
        c.guard_trips.to_string(),
    ]
}

fn summary_rows(report: &Report) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = report
        .groups
        .iter()
        .map(|g| summary_row(&g.group, &g.counters))
        .collect();
    rows.push(summary_row(TOTAL, &report.totals));
    rows
}

fn budget_rows(report: &Report) -> Vec<Vec<String>> {
    report
        .groups
        .iter()
        .flat_map(|g| {
            g.budgets.iter().map(|b| {
                vec![
                    g.group.clone(),
                    b.rule.clone(),
                    b.window.clone(),
                    format!("{:.2}", b.budget_usd),
                    format!("{:.2}", b.spend_usd),
                    b.exceeded_at.map_or_else(|| "-".into(), rfc3339),
                ]
            })
        })
        .collect()
}

/// The title line: period and grouping.
pub fn title(report: &Report) -> String {
    format!(
        "keywarden report {} to {}, by {}",
        rfc3339(report.since),
        rfc3339(report.until),
        report.group_by
    )
}

/// The report as tables for a terminal.
pub fn table(report: &Report) -> String {
    let mut out = format!(
        "{}\n{}\n",
        title(report),
        output::table(&SUMMARY_HEADER, summary_rows(report))
    );
    let budgets = budget_rows(report);
    if !budgets.is_empty() {
        out.push_str(&format!(
            "\nSpend against budgets\n{}\n",
            output::table(&BUDGET_HEADER, budgets)
        ));
    }
    let projections = projection_rows(report);
    if !projections.is_empty() {
        out.push_str(&format!(
            "\n{PROJECTION_TITLE}\n{}\n",
            output::table(&PROJECTION_HEADER, projections)
        ));
    }
    out
}

fn markdown_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let line = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    out.push_str(&line(header.iter().map(|_| "---".to_string()).collect()));
    for row in rows {
        out.push_str(&line(row.iter().map(|c| c.replace('|', "\\|")).collect()));
    }
    out
}

/// The report as Markdown: a heading and two tables.
pub fn markdown(report: &Report) -> String {
    let mut out = format!(
        "## {}\n\n{}",
        title(report),
        markdown_table(&SUMMARY_HEADER, &summary_rows(report))
    );
    let budgets = budget_rows(report);
    if !budgets.is_empty() {
        out.push_str(&format!(
            "\n### Spend against budgets\n\n{}",
            markdown_table(&BUDGET_HEADER, &budgets)
        ));
    }
    let projections = projection_rows(report);
    if !projections.is_empty() {
        out.push_str(&format!(
            "\n### {PROJECTION_TITLE}\n\n{}",
            markdown_table(&PROJECTION_HEADER, &projections)
        ));
    }
    out
}

/// `rule window spend budget exceeded_at` (`-` when not exceeded), one per
/// budget line, joined by `; `.
fn budgets_cell(budgets: &[BudgetLine]) -> String {
    budgets
        .iter()
        .map(|b| {
            format!(
                "{} {} {:.2} {:.2} {}",
                b.rule,
                b.window,
                b.spend_usd,
                b.budget_usd,
                b.exceeded_at.map_or_else(|| "-".into(), rfc3339)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The report as CSV: a header, one line per group, then the total line
/// (group `(total)`). Each kind and outcome has its own column
/// (`kind_assert`, `outcome_applied`, …); `budgets` holds the group's budget
/// lines as `rule window spend_usd budget_usd exceeded_at` joined by `; `.
pub fn csv(report: &Report) -> anyhow::Result<String> {
    let mut header: Vec<String> = vec!["group".into(), "changes".into()];
    header.extend(ChangeKind::ALL.iter().map(|k| format!("kind_{k}")));
    header.extend(Outcome::ALL.iter().map(|o| format!("outcome_{o}")));
    header.extend(
        [
            "keys_disabled",
            "keys_reenabled",
            "disabled_hours",
            "failures",
            "source_errors",
            "guard_trips",
            "budgets",
        ]
        .map(String::from),
    );
    let row = |name: &str, c: &Counters, budgets: &[BudgetLine]| {
        let mut cells = vec![name.to_string(), c.changes.to_string()];
        cells.extend(c.by_kind.values().map(i64::to_string));
        cells.extend(c.by_outcome.values().map(i64::to_string));
        cells.extend([
            c.keys_disabled.to_string(),
            c.keys_reenabled.to_string(),
            c.disabled_hours.to_string(),
            c.failures.to_string(),
            c.source_errors.to_string(),
            c.guard_trips.to_string(),
            budgets_cell(budgets),
        ]);
        cells
    };
    let mut rows: Vec<Vec<String>> = report
        .groups
        .iter()
        .map(|g| row(&g.group, &g.counters, &g.budgets))
        .collect();
    rows.push(row(TOTAL, &report.totals, &[]));
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    output::csv(&header, rows)
}
