//! `keywarden demo`: the offline tour (SPEC §9).

use super::Context;
use crate::cli::DemoArgs;
use crate::demo::{DemoOptions, run as simulate};
use crate::report::{self, GroupBy};
use chrono::Duration;
use std::process::ExitCode;

/// Where the demo writes its HTML report.
pub const REPORT_FILE: &str = "keywarden-demo-report.html";

/// Runs the demo: simulate, narrate, then print the report and write the HTML.
pub async fn run(ctx: &Context, args: DemoArgs) -> anyhow::Result<ExitCode> {
    let options = DemoOptions {
        seed: args.seed,
        days: args.days,
        ..DemoOptions::default()
    };
    let temp = tempfile::tempdir()?;
    let database = ctx
        .database
        .clone()
        .unwrap_or_else(|| temp.path().join("keywarden-demo.db"));
    let mut stdout = std::io::stdout();
    let store = simulate(&options, &database, &mut stdout).await?;

    let since = options.start;
    let until = options.start + Duration::days(i64::from(options.days));
    let built = report::build(&store, since, until, GroupBy::Rule).await?;
    println!("\n{}", report::text::table(&built));
    let html = report::html::render(&store, &built).await?;
    // Mode 0600, like every report: it names keys and rules.
    crate::output::write_private(std::path::Path::new(REPORT_FILE), &html)?;
    println!("The report, with charts: {REPORT_FILE}");
    if ctx.database.is_some() {
        println!(
            "The history is kept in {}: try `keywarden --database {} history`.",
            database.display(),
            database.display()
        );
    } else {
        println!(
            "Keep the history to explore with `keywarden --database demo.db demo`, then `keywarden --database demo.db history`."
        );
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}
