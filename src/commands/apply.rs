//! `keywarden apply`: one run now.

use super::Context;
use super::turn::ManualTurn;
use crate::cli::ApplyArgs;
use crate::engine::Outcome;
use crate::exit;
use crate::output::{FieldsStyle, fields_text};
use crate::run::{RecordedChange, Resolved, RunRequest, Trigger};
use std::process::ExitCode;

/// Runs `apply`: evaluates every enabled rule (or those named), records and
/// sends the changes; exit 1 when something failed or was held back.
pub async fn run(ctx: &Context, args: ApplyArgs) -> anyhow::Result<ExitCode> {
    let runner = ctx.runner().await?;
    let due = super::due_rules(&runner, &args.rules).await?;
    let turn = ManualTurn::take(
        &runner.store,
        runner.clock.as_ref(),
        args.wait,
        runner.config.daemon.standby_poll,
    )
    .await?;
    let report = runner
        .run(&RunRequest {
            trigger: Trigger::Manual,
            due,
            dry_run: args.dry_run,
            force: args.force,
        })
        .await;
    turn.end().await;
    let report = report?;
    for RecordedChange {
        id,
        change,
        outcome,
    } in &report.rows
    {
        let line = format!(
            "#{id} {}  {}  {}  {}  — {} (rule {})",
            change.key_name,
            fields_text(&change.fields, FieldsStyle::Listing),
            change.kind,
            outcome,
            change.reason,
            change.rule
        );
        println!("{}", crate::output::printable(&line));
    }
    for Resolved { id, outcome } in &report.resolved {
        println!("#{id} from an earlier run resolved: {outcome}");
    }
    let summary: Vec<String> = Outcome::ALL
        .iter()
        .map(|o| (o, report.count(*o)))
        .filter(|(_, n)| *n > 0)
        .map(|(o, n)| format!("{n} {o}"))
        .collect();
    if report.rows.is_empty() && report.error.is_none() {
        println!(
            "run {}: no changes ({} keys seen)",
            report.run_id, report.keys_seen
        );
    } else if !report.rows.is_empty() {
        println!(
            "run {}: {} changes: {}",
            report.run_id,
            report.rows.len(),
            summary.join(", ")
        );
    }
    if report.guard_tripped {
        eprintln!(
            "the blast-radius guard held these changes back ([daemon].max_changes_per_run / max_disable_fraction); \
             check them with `keywarden plan`, then `keywarden apply --force` to apply them once"
        );
    }
    if let Some(err) = &report.error {
        eprintln!("error: {err}");
    }
    Ok(ExitCode::from(if report.failed() {
        exit::FAILURE
    } else {
        exit::OK
    }))
}
