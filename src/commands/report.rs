//! `keywarden report`: the historical change report (SPEC §5).

use super::Context;
use crate::cli::{Format, ReportArgs};
use crate::context::open_store;
use crate::domain::timestamp::rfc3339;
use crate::exit::UsageError;
use crate::output;
use crate::report::{self, Report, html, text};
use crate::timearg::{parse_time, parse_until};
use chrono::{DateTime, Duration, Utc};
use std::io::Write as _;
use std::process::ExitCode;

/// How far back the report looks without `--since`.
pub const DEFAULT_DAYS: i64 = 30;

/// Runs `report`.
pub async fn run(ctx: &Context, args: ReportArgs) -> anyhow::Result<ExitCode> {
    let config = ctx.config()?;
    let (since, until) = period(&args, ctx.clock.now())?;
    let store = open_store(&config).await?;
    let mut report = report::build(&store, since, until, args.group_by).await?;
    report::add_projections(&store, &mut report, ctx.clock.now()).await?;
    let text = match args.format {
        Format::Table if report.totals.changes == 0 => nothing_recorded(&report),
        Format::Markdown if report.totals.changes == 0 => nothing_recorded(&report),
        Format::Table => text::table(&report),
        Format::Markdown => text::markdown(&report),
        Format::Csv => text::csv(&report)?,
        Format::Json => format!("{}\n", serde_json::to_string_pretty(&report)?),
        Format::Html => html::render(&store, &report).await?,
        Format::Jsonl => {
            return Err(UsageError::new(
                "report --format: use table, markdown, csv, json or html",
            ));
        }
    };
    match &args.output {
        Some(path) => output::write_private(path, &text)?,
        None => std::io::stdout().write_all(text.as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `[since, until)` from `--since`/`--until` (default: the last 30 days up to now).
pub fn period(
    args: &ReportArgs,
    now: DateTime<Utc>,
) -> anyhow::Result<(DateTime<Utc>, DateTime<Utc>)> {
    let until = match &args.until {
        Some(s) => parse_until(s, now).map_err(|e| UsageError::new(format!("--until: {e}")))?,
        None => now,
    };
    let since = match &args.since {
        Some(s) => parse_time(s, now).map_err(|e| UsageError::new(format!("--since: {e}")))?,
        None => until - Duration::days(DEFAULT_DAYS),
    };
    if since >= until {
        return Err(UsageError::new(format!(
            "--since {} is not before --until {}",
            rfc3339(since),
            rfc3339(until)
        )));
    }
    Ok((since, until))
}

/// The friendly line of an empty period.
fn nothing_recorded(report: &Report) -> String {
    format!(
        "no changes recorded between {} and {}\n",
        rfc3339(report.since),
        rfc3339(report.until)
    )
}
