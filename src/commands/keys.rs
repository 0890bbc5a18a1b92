//! `keywarden keys list`: every key of the account, live.

use super::Context;
use crate::cli::{Format, KeysCommand};
use crate::openrouter::{Client, ClientSettings, Key};
use crate::output;
use std::process::ExitCode;

/// Runs `keys`.
pub async fn run(ctx: &Context, cmd: KeysCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        KeysCommand::List { format } => list(ctx, format).await,
    }
}

/// `keys list [--format table|json|csv]`.
async fn list(ctx: &Context, format: Format) -> anyhow::Result<ExitCode> {
    if !matches!(format, Format::Table | Format::Json | Format::Csv) {
        return Err(crate::exit::UsageError::new(
            "`keys list` prints --format table, json or csv",
        ));
    }
    let config = ctx.config()?;
    let client = Client::new(ClientSettings::from_config(&config)?)?;
    let keys = client
        .list_keys()
        .await
        .map_err(|e| anyhow::Error::new(crate::exit::Failure(e.explain())))?;
    let text = match format {
        Format::Json => serde_json::to_string_pretty(&keys)? + "\n",
        Format::Csv => output::csv(&CSV_HEADER, keys.iter().map(csv_row))?,
        _ => output::table(&TABLE_HEADER, keys.iter().map(table_row)) + "\n",
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

const TABLE_HEADER: [&str; 10] = [
    "name",
    "hash",
    "disabled",
    "limit",
    "reset",
    "remaining",
    "daily",
    "weekly",
    "monthly",
    "total",
];

const CSV_HEADER: [&str; 11] = [
    "name",
    "hash",
    "disabled",
    "limit",
    "limit_reset",
    "limit_remaining",
    "usage_daily",
    "usage_weekly",
    "usage_monthly",
    "usage",
    "workspace_id",
];

/// A key for people: short hash, two decimals, `none` for no limit or
/// reset, `?` for an unknown counter.
fn table_row(k: &Key) -> Vec<String> {
    let (limit, remaining) = match k.limit {
        Some(l) => (format!("{l:.2}"), output::usd_or_unknown(k.limit_remaining)),
        None => ("none".to_string(), "-".to_string()),
    };
    vec![
        k.name.clone(),
        output::shorten(&k.hash, 12),
        if k.disabled { "yes" } else { "no" }.to_string(),
        limit,
        k.limit_reset.clone().unwrap_or_else(|| "none".into()),
        remaining,
        output::usd_or_unknown(k.usage_daily),
        output::usd_or_unknown(k.usage_weekly),
        output::usd_or_unknown(k.usage_monthly),
        output::usd_or_unknown(k.usage),
    ]
}

/// A key for programs: full hash, exact numbers, empty when null.
fn csv_row(k: &Key) -> Vec<String> {
    vec![
        k.name.clone(),
        k.hash.clone(),
        k.disabled.to_string(),
        output::number_or_empty(k.limit),
        k.limit_reset.clone().unwrap_or_default(),
        output::number_or_empty(k.limit_remaining),
        output::number_or_empty(k.usage_daily),
        output::number_or_empty(k.usage_weekly),
        output::number_or_empty(k.usage_monthly),
        output::number_or_empty(k.usage),
        k.workspace_id.clone().unwrap_or_default(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        serde_json::from_value(serde_json::json!({
            "hash": "f01d52c0ffee00112233", "name": "team-a-ci", "disabled": true,
            "limit": 50.0, "limit_remaining": null, "limit_reset": "monthly",
            "usage": 12.345, "usage_daily": null, "usage_weekly": 1.5, "usage_monthly": null
        }))
        .unwrap()
    }

    #[test]
    fn unknown_counters_are_a_question_mark_in_the_table_and_empty_in_csv() {
        let row = table_row(&key());
        assert_eq!(
            row,
            [
                "team-a-ci",
                "f01d52c0ffee…",
                "yes",
                "50.00",
                "monthly",
                "?",
                "?",
                "1.50",
                "?",
                "12.35"
            ]
        );
        let csv = csv_row(&key());
        assert_eq!(
            csv,
            [
                "team-a-ci",
                "f01d52c0ffee00112233",
                "true",
                "50",
                "monthly",
                "",
                "",
                "1.5",
                "",
                "12.345",
                ""
            ]
        );
    }

    #[test]
    fn no_limit_reads_none_not_unknown() {
        let mut k = key();
        k.limit = None;
        k.limit_reset = None;
        let row = table_row(&k);
        assert_eq!((&*row[3], &*row[4], &*row[5]), ("none", "none", "-"));
    }
}
