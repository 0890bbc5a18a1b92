//! `keywarden history`: recorded changes, newest first (SPEC §5).

use super::Context;
use super::key_arg::resolve_key;
use crate::cli::{Format, HistoryArgs};
use crate::context::Shell;
use crate::domain::timestamp::rfc3339;
use crate::engine::{ChangeKind, Outcome};
use crate::exit::UsageError;
use crate::output::{self, FieldsStyle, fields_text};
use crate::store::{ChangeRow, HistoryFilter};
use crate::timearg::{parse_time, parse_until};
use chrono::{DateTime, Utc};
use std::process::ExitCode;

/// Runs `history`.
pub async fn run(ctx: &Context, args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let now = ctx.clock.now();
    let since = time_flag("--since", args.since.as_deref(), |s| parse_time(s, now))?;
    let until = time_flag("--until", args.until.as_deref(), |s| parse_until(s, now))?;
    let kind = named_flag(
        "--kind",
        args.kind.as_deref(),
        ChangeKind::parse,
        ChangeKind::ALL,
    )?;
    let outcome = named_flag(
        "--outcome",
        args.outcome.as_deref(),
        Outcome::parse,
        Outcome::ALL,
    )?;
    if let Some(limit) = args.limit.filter(|n| *n < 1) {
        return Err(UsageError::new(format!(
            "--limit: must be at least 1, not {limit}"
        )));
    }
    if args.format == Format::Html {
        return Err(UsageError::new(
            "--format: history prints table, json, jsonl, csv or markdown (html is for `keywarden report`)",
        ));
    }
    let Shell { config, store, .. } = ctx.open().await?;
    let key_hash = match &args.key {
        Some(key) => Some(resolve_key(&config, &store, key).await?),
        None => None,
    };
    let filter = HistoryFilter {
        since,
        until,
        key_hash,
        rule: args.rule,
        kind,
        outcome,
        limit: args.limit,
        offset: None,
    };
    let rows = store.changes(&filter).await?;
    if rows.is_empty() {
        let message = format!(
            "no changes recorded between {} and {}",
            since.map_or("the beginning".into(), rfc3339),
            until.map_or("now".into(), rfc3339)
        );
        match args.format {
            Format::Json => println!("[]"),
            Format::Jsonl => {}
            Format::Csv => print!("{}", output::csv(CSV_HEADER, [])?),
            _ => {
                println!("{message}");
                return Ok(ExitCode::SUCCESS);
            }
        }
        eprintln!("{message}");
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", render(&rows, args.format)?);
    Ok(ExitCode::SUCCESS)
}

/// The columns of `--format csv`.
const CSV_HEADER: &[&str] = &[
    "id",
    "run_id",
    "at",
    "rule",
    "key_hash",
    "key_name",
    "kind",
    "fields",
    "reason",
    "outcome",
    "error",
    "http_status",
    "attempts",
    "request_id",
];

/// The columns of the table and Markdown forms.
const TABLE_HEADER: &[&str] = &[
    "id", "at", "rule", "key", "kind", "fields", "outcome", "reason",
];

/// Prints `rows` in `format` (every line ends with `\n`).
fn render(rows: &[ChangeRow], format: Format) -> anyhow::Result<String> {
    Ok(match format {
        Format::Json => serde_json::to_string_pretty(rows)? + "\n",
        Format::Jsonl => {
            let mut out = String::new();
            for row in rows {
                out += &serde_json::to_string(row)?;
                out.push('\n');
            }
            out
        }
        Format::Csv => output::csv(CSV_HEADER, rows.iter().map(csv_row))?,
        Format::Markdown => markdown(TABLE_HEADER, rows.iter().map(table_row)),
        Format::Table | Format::Html => {
            output::table(TABLE_HEADER, rows.iter().map(table_row)) + "\n"
        }
    })
}

fn table_row(row: &ChangeRow) -> Vec<String> {
    vec![
        row.id.to_string(),
        rfc3339(row.at),
        row.rule.clone(),
        row.key_name.clone(),
        row.kind.to_string(),
        fields_text(&row.fields, FieldsStyle::Listing),
        row.outcome.to_string(),
        row.reason.clone(),
    ]
}

fn csv_row(row: &ChangeRow) -> Vec<String> {
    let optional = |v: Option<String>| v.unwrap_or_default();
    vec![
        row.id.to_string(),
        optional(row.run_id.map(|r| r.to_string())),
        rfc3339(row.at),
        row.rule.clone(),
        row.key_hash.clone(),
        row.key_name.clone(),
        row.kind.to_string(),
        serde_json::to_string(&row.fields).expect("field changes serialize"),
        row.reason.clone(),
        row.outcome.to_string(),
        optional(row.error.clone()),
        optional(row.http_status.map(|s| s.to_string())),
        row.attempts.to_string(),
        optional(row.request_id.clone()),
    ]
}

/// A Markdown pipe table (cells with `|` escaped, line breaks flattened,
/// other control characters made printable).
fn markdown(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let line = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
    let cell = |s: String| {
        crate::output::printable(&s.replace('|', "\\|").replace(['\r', '\n'], " ")).into_owned()
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    out += &line(header.iter().map(|_| "---".to_string()).collect());
    for row in rows {
        out += &line(row.into_iter().map(cell).collect());
    }
    out
}

/// Parses a time flag; a bad value is a usage error naming the flag.
fn time_flag(
    flag: &str,
    value: Option<&str>,
    parse: impl Fn(&str) -> Result<DateTime<Utc>, String>,
) -> anyhow::Result<Option<DateTime<Utc>>> {
    value
        .map(|v| parse(v).map_err(|e| UsageError::new(format!("{flag}: {e}"))))
        .transpose()
}

/// Parses a flag naming one of `all`; a bad value is a usage error listing them.
fn named_flag<T: std::fmt::Display + Copy>(
    flag: &str,
    value: Option<&str>,
    parse: fn(&str) -> Option<T>,
    all: &[T],
) -> anyhow::Result<Option<T>> {
    value
        .map(|v| {
            parse(v).ok_or_else(|| {
                let names: Vec<String> = all.iter().map(|t| t.to_string()).collect();
                UsageError::new(format!("{flag}: `{v}` is not one of {}", names.join(", ")))
            })
        })
        .transpose()
}
