//! `keywarden history`: recorded changes, newest first (SPEC §5).

use super::Context;
use crate::cli::{Format, HistoryArgs};
use crate::clock::{Clock as _, SystemClock};
use crate::config::Config;
use crate::domain::Field;
use crate::engine::plan::FieldChange;
use crate::engine::{ChangeKind, Outcome};
use crate::exit::{Failure, UsageError};
use crate::openrouter::{Client, ClientSettings};
use crate::output;
use crate::store::{ChangeRow, HistoryFilter, Store, ts as stamp};
use crate::timearg::{parse_time, parse_until};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::process::ExitCode;

/// Runs `history`.
pub async fn run(ctx: &Context, args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let now = SystemClock.now();
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
    let config = ctx.config()?;
    let store = Store::open(&config.database_path()).await?;
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
    };
    let rows = store.changes(&filter).await?;
    if rows.is_empty() {
        let message = format!(
            "no changes recorded between {} and {}",
            since.map_or("the beginning".into(), stamp),
            until.map_or("now".into(), stamp)
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
        stamp(row.at),
        row.rule.clone(),
        row.key_name.clone(),
        row.kind.to_string(),
        fields_text(&row.fields),
        row.outcome.to_string(),
        row.reason.clone(),
    ]
}

fn csv_row(row: &ChangeRow) -> Vec<String> {
    let optional = |v: Option<String>| v.unwrap_or_default();
    vec![
        row.id.to_string(),
        optional(row.run_id.map(|r| r.to_string())),
        stamp(row.at),
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

/// A change's fields for people: `disabled false→true; limit 100.00→5.00`.
pub(crate) fn fields_text(fields: &BTreeMap<Field, FieldChange>) -> String {
    fields
        .iter()
        .map(|(field, change)| format!("{field} {}→{}", change.from, change.to))
        .collect::<Vec<_>>()
        .join("; ")
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

/// Whether `s` has the form of an OpenRouter key hash (64 hex digits).
fn looks_like_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Resolves a KEY argument: a hash that history knows, a key name that
/// history knows for exactly one hash, anything shaped like a hash, or else
/// (when a credential is configured) a name the account has for exactly one
/// key, looked up live. Ambiguous and unknown names are usage errors.
pub(crate) async fn resolve_key(
    config: &Config,
    store: &Store,
    key: &str,
) -> anyhow::Result<String> {
    if store.key_hash_known(key).await? {
        return Ok(key.to_string());
    }
    let hashes = store.key_hashes_named(key).await?;
    match hashes.as_slice() {
        [hash] => Ok(hash.clone()),
        [] if looks_like_hash(key) => Ok(key.to_string()),
        [] => resolve_live(config, key).await,
        _ => Err(UsageError::new(format!(
            "the key name `{key}` is ambiguous: history knows it for the keys {}; give the hash",
            hashes.join(", ")
        ))),
    }
}

/// Looks a key name up on the account, when a credential is configured.
async fn resolve_live(config: &Config, key: &str) -> anyhow::Result<String> {
    let Ok(settings) = ClientSettings::from_config(config) else {
        return Err(UsageError::new(format!(
            "no key named `{key}` in the history; give the key's hash (64 hex digits, see `keywarden keys list`), \
             or set OPENROUTER_MANAGEMENT_KEY to look the name up on the account"
        )));
    };
    let keys = Client::new(settings)?.list_keys().await.map_err(|e| {
        anyhow::Error::new(Failure(format!(
            "no key named `{key}` in the history, and the account could not be asked: {}",
            e.explain()
        )))
    })?;
    let hashes: Vec<String> = keys
        .into_iter()
        .filter(|k| k.name == key)
        .map(|k| k.hash)
        .collect();
    match hashes.as_slice() {
        [hash] => Ok(hash.clone()),
        [] => Err(UsageError::new(format!(
            "no key named `{key}` in the history or on the account (see `keywarden keys list`)"
        ))),
        _ => Err(UsageError::new(format!(
            "the key name `{key}` is ambiguous: the account has it for the keys {}; give the hash",
            hashes.join(", ")
        ))),
    }
}
