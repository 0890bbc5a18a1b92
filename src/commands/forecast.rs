//! `keywarden forecast`: where each budget's spend is heading (SPEC §11),
//! live from the API and the database, changing nothing.

use super::{Context, api_failure};
use crate::cli::{Format, PlanArgs};
use crate::domain::timestamp::rfc3339_minutes;
use crate::engine::outlook::{ForecastRow, Outlook};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use std::io::Write;
use std::process::ExitCode;

/// Runs `forecast`.
pub async fn run(ctx: &Context, args: PlanArgs) -> anyhow::Result<ExitCode> {
    let runner = ctx.runner().await?;
    let at = super::at_arg(args.at.as_deref(), runner.clock.now())?;
    let only = super::due_rules(&runner, &args.rules).await?;
    let outlook = runner
        .outlook(only.as_ref(), at)
        .await
        .map_err(api_failure)?;
    let text = match args.format {
        Format::Json => serde_json::to_string(&outlook)? + "\n",
        _ => table_text(&outlook),
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// An amount in USD with two decimals, or `?` when unknown.
fn usd(x: Option<f64>) -> String {
    x.map_or_else(|| "?".into(), |x| format!("{x:.2}"))
}

/// The forecasts as a table for people; ends with a newline.
fn table_text(outlook: &Outlook) -> String {
    let header = format!("forecast at {}:\n", outlook.at.format("%Y-%m-%d %H:%M UTC"));
    if outlook.forecasts.is_empty() {
        return header + "no rule has a budget or forecast condition\n";
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header([
        "rule",
        "key",
        "window",
        "budget",
        "spend",
        "USD/h",
        "projected",
        "crossing",
        "status",
    ]);
    for row in &outlook.forecasts {
        table.add_row(cells(row));
    }
    format!("{header}{table}\n")
}

fn cells(row: &ForecastRow) -> [String; 9] {
    let budget = match row.budget_usd {
        Some(b) if (row.at_fraction - 1.0).abs() > f64::EPSILON => {
            format!("{:.0}% of {b:.2}", row.at_fraction * 100.0)
        }
        b => usd(b),
    };
    [
        row.rule.clone(),
        row.key_name.clone().unwrap_or_else(|| "(group)".into()),
        row.window.to_string(),
        budget,
        usd(row.spend_usd),
        usd(row.rate_usd_per_hour),
        usd(row.projected_usd),
        row.crossing_at.map_or_else(|| "-".into(), rfc3339_minutes),
        serde_json::to_value(row.status)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
    ]
}
