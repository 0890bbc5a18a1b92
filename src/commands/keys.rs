//! `keywarden keys list`: every key of the account, live, with what
//! keywarden holds on it (SPEC §6: "live keys, usage, matching rules, claims"),
//! and where the spend of the budget and forecast rules covering it is
//! heading (SPEC §11).

use super::Context;
use crate::cli::{Format, KeysCommand};
use crate::config::Config;
use crate::context::{Shell, client};
use crate::domain::Key;
use crate::engine::Claim;
use crate::engine::outlook::ForecastRow;
use crate::listing::keys::{
    ForecastIndex, Forecasts, Holdings, KeyHoldings, ListedKey, claim_text, forecast_cells,
};
use crate::listing::rules::stored_rules;
use crate::openrouter::{Client, KeyListing};
use crate::output;
use crate::rules::Rule;
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
    let client = client(&config)?;
    let listing = client
        .list()
        .await
        .map_err(|e| anyhow::Error::new(crate::exit::Failure(e.explain())))?;
    let keys = &listing.keys;
    let held = holdings(ctx, config, client, &listing).await?;
    let index = ForecastIndex::new(&held.forecasts);
    let holdings = held
        .holdings
        .with_forecasts(Forecasts::new(&held.forecasts, &index));
    let listed = keys.iter().zip(holdings.of_each(keys, &listing));
    let text = match format {
        Format::Json => {
            let listed: Vec<ListedKey> = listed.map(ListedKey::from).collect();
            serde_json::to_string_pretty(&listed)? + "\n"
        }
        Format::Csv => output::csv(&CSV_HEADER, listed.map(csv_row))?,
        _ => {
            let header = [&TABLE_HEADER[..], &FORECAST_HEADER[..]].concat();
            output::table(&header, listed.map(table_row_with_forecast)) + "\n"
        }
    };
    print!("{text}");
    if let Some(fallback) = &listing.fallback {
        // Under the table for people; on stderr beside JSON and CSV, which
        // carry it in their own way (`keywarden.workspace_fallback`) or not.
        match format {
            Format::Table => println!("note: {}", fallback.note),
            _ => eprintln!("note: {}", fallback.note),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What `keys list` reads before it prints: what keywarden holds, and the
/// forecast rows (which the holdings borrow once indexed).
#[derive(Default)]
struct Held {
    holdings: Holdings<'static>,
    forecasts: Vec<ForecastRow>,
}

/// Reads the rules (once), claims and forecasts from the database (and
/// the budget sources); none when there is no database yet (listing keys does not
/// create one).
async fn holdings(
    ctx: &Context,
    config: Config,
    client: Client,
    listing: &KeyListing,
) -> anyhow::Result<Held> {
    let keys = &listing.keys;
    let path = config.database_path();
    if keys.is_empty() || !path.exists() {
        return Ok(Held::default());
    }
    let shell = Shell::open(config, ctx.clock.clone()).await?;
    let rules = stored_rules(&shell.store).await?;
    let enabled: Vec<Rule> = rules.iter().filter(|r| r.enabled).cloned().collect();
    let forecasts = shell
        .runner(client)
        .outlook_of(&enabled, keys, &listing.workspaces)
        .await?
        .forecasts;
    let holdings = Holdings::read(&shell.store, &rules).await?;
    shell.store.close().await;
    Ok(Held {
        holdings,
        forecasts,
    })
}

const TABLE_HEADER: [&str; 13] = [
    "name",
    "hash",
    "workspace",
    "disabled",
    "limit",
    "reset",
    "remaining",
    "daily",
    "weekly",
    "monthly",
    "total",
    "rules",
    "claims",
];

const CSV_HEADER: [&str; 14] = [
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
    "workspace",
    "rules",
    "claims",
];

/// A key for people: short hash, two decimals, `none` for no limit or
/// reset, `?` for an unknown counter; then its rules and claims.
fn table_row((k, held): (&Key, KeyHoldings)) -> Vec<String> {
    let (limit, remaining) = match k.limit {
        Some(l) => (format!("{l:.2}"), output::usd_or_unknown(k.limit_remaining)),
        None => ("none".to_string(), "-".to_string()),
    };
    vec![
        k.name.clone(),
        output::shorten(&k.hash, 12),
        held.workspace_text(k),
        if k.disabled { "yes" } else { "no" }.to_string(),
        limit,
        k.limit_reset.clone().unwrap_or_else(|| "none".into()),
        remaining,
        output::usd_or_unknown(k.usage_daily),
        output::usd_or_unknown(k.usage_weekly),
        output::usd_or_unknown(k.usage_monthly),
        output::usd_or_unknown(k.usage),
        held.rules.join(", "),
        claims_text(&held.claims, ", "),
    ]
}

const FORECAST_HEADER: [&str; 2] = ["USD/h", "forecast"];

/// [`table_row`] and the most pressing of the key's forecasts
/// ([`forecast_cells`]).
fn table_row_with_forecast((k, held): (&Key, KeyHoldings)) -> Vec<String> {
    let forecast = forecast_cells(&held.forecasts);
    let mut row = table_row((k, held));
    row.extend([forecast.rate, forecast.projection]);
    row
}

/// A key for programs: full hash, exact numbers, empty when null; rules
/// and claims separated by `; `.
fn csv_row((k, held): (&Key, KeyHoldings)) -> Vec<String> {
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
        held.workspace.clone().unwrap_or_default(),
        held.rules.join("; "),
        claims_text(&held.claims, "; "),
    ]
}

fn claims_text(claims: &[Claim], separator: &str) -> String {
    claims
        .iter()
        .map(claim_text)
        .collect::<Vec<_>>()
        .join(separator)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Field, FieldValue};

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
        let row = table_row((&key(), KeyHoldings::default()));
        assert_eq!(
            row,
            [
                "team-a-ci",
                "f01d52c0ffee…",
                "-",
                "yes",
                "50.00",
                "monthly",
                "?",
                "?",
                "1.50",
                "?",
                "12.35",
                "",
                ""
            ]
        );
        let csv = csv_row((&key(), KeyHoldings::default()));
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
                "",
                "",
                "",
                ""
            ]
        );
    }

    #[test]
    fn no_limit_reads_none_not_unknown() {
        let mut k = key();
        k.limit = None;
        k.limit_reset = None;
        let row = table_row((&k, KeyHoldings::default()));
        assert_eq!((&*row[4], &*row[5], &*row[6]), ("none", "none", "-"));
    }

    fn claim(field: Field, original: FieldValue, value: FieldValue) -> Claim {
        Claim {
            key_hash: key().hash,
            field,
            rule: "team-a-monthly".into(),
            original,
            value,
            since: chrono::DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn claims_read_as_what_keywarden_set_and_why() {
        let held = KeyHoldings {
            workspace: Some("research".into()),
            workspace_fallback: None,
            rules: vec!["team-a-monthly".into(), "ci-daily".into()],
            claims: vec![
                claim(
                    Field::Disabled,
                    FieldValue::Disabled(false),
                    FieldValue::Disabled(true),
                ),
                claim(
                    Field::Limit,
                    FieldValue::Limit(None),
                    FieldValue::Limit(Some(5.0)),
                ),
            ],
            ..KeyHoldings::default()
        };
        let row = table_row((&key(), held));
        assert_eq!(row[2], "research");
        assert_eq!(row[11], "team-a-monthly, ci-daily");
        assert_eq!(
            row[12],
            "disabled by team-a-monthly, limit 5.00 by team-a-monthly"
        );
        let enabled = claim(
            Field::Disabled,
            FieldValue::Disabled(true),
            FieldValue::Disabled(false),
        );
        assert_eq!(claim_text(&enabled), "enabled by team-a-monthly");
    }
}
