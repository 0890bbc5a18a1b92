//! `keywarden plan`: what a run would change now (or at `--at`), and why.

use super::{Context, api_failure};
use crate::cli::{Format, PlanArgs};
use crate::engine::plan::{Change, Plan};
use crate::output::{FieldsStyle, fields_text};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use std::collections::HashSet;
use std::io::Write;
use std::process::ExitCode;

/// Runs `plan`.
pub async fn run(ctx: &Context, args: PlanArgs) -> anyhow::Result<ExitCode> {
    let runner = ctx.runner().await?;
    let at = super::at_arg(args.at.as_deref(), runner.clock.now())?;
    let due = super::due_rules(&runner, &args.rules).await?;
    let preview = runner
        .preview(due.as_ref(), at)
        .await
        .map_err(api_failure)?;
    let plan = &preview.reconciliation.plan;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&plan_json(plan))?),
        _ => {
            let header = format!(
                "plan at {} over {} keys:\n",
                preview.at.format("%Y-%m-%d %H:%M UTC"),
                preview.keys_seen
            );
            // One write of whole lines: a log line on the same terminal or
            // pipe never lands in the middle of one.
            let text = header + &changes_text(&plan.changes) + &notes_text(plan);
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes())?;
            stdout.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The JSON form of a plan: `{"changes": […], "conflicts": […], "skips": […]}`.
pub fn plan_json(plan: &Plan) -> serde_json::Value {
    serde_json::json!({
        "changes": plan.changes.iter().map(change_json).collect::<Vec<_>>(),
        "conflicts": plan.conflicts,
        "skips": plan.skips,
    })
}

fn change_json(c: &Change) -> serde_json::Value {
    serde_json::json!({
        "key_hash": c.key_hash,
        "key_name": c.key_name,
        "rule": c.rule,
        "kind": c.kind,
        "fields": c.fields,
        "reason": c.reason,
        "held": c.held,
    })
}

/// The changes as a table, or `no changes` when there are none; ends with a
/// newline.
fn changes_text(changes: &[Change]) -> String {
    if changes.is_empty() {
        return "no changes: every key already has the settings its rules want\n".into();
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["key", "rule", "kind", "change", "note", "reason"]);
    for c in changes {
        let note = c
            .held
            .as_ref()
            .map(|h| h.outcome().to_string())
            .unwrap_or_default();
        table.add_row(
            [
                c.key_name.as_str(),
                c.rule.as_str(),
                c.kind.as_str(),
                &fields_text(&c.fields, FieldsStyle::Listing),
                &note,
                c.reason.as_str(),
            ]
            .map(crate::output::printable),
        );
    }
    format!("{table}\n")
}

/// The lines under the table: each conflict, and each rule that was not
/// evaluated, once per rule and reason (a per-key skip repeats for every
/// key the rule selects).
fn notes_text(plan: &Plan) -> String {
    let conflicts = plan.conflicts.iter().map(|c| {
        format!(
            "conflict: rules {} and {} (equal priority) set {} of key {} differently; {} wins\n",
            c.winner, c.loser, c.field, c.key_hash, c.winner
        )
    });
    let mut seen = HashSet::new();
    let skips = plan
        .skips
        .iter()
        .filter(|s| seen.insert((s.rule.as_str(), s.reason.as_str())))
        .map(|s| {
            let line = format!("not evaluated: rule {}: {}", s.rule, s.reason);
            format!("{}\n", crate::output::printable(&line))
        });
    conflicts.chain(skips).collect()
}
