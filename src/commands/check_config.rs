//! `keywarden check-config`: validates the configuration and every rules
//! file it names, without touching the database (SPEC §3.4). The network
//! is used for one thing only: when a rule names a guardrail and the
//! account is reachable, a name that resolves to none or several is a
//! warning (SPEC §12).

mod guardrails;

use super::Context;
use crate::config::Config;
use crate::rules::diagnostic::{Diagnostic, LineIndex, Severity};
use crate::rules::parse::checks::{check_schedule, check_timezone};
use crate::rules::parse::{RulesFile, across_files, read_rules_file};
use std::process::ExitCode;

/// Runs `check-config`: prints every diagnostic to stderr, one a line, then
/// a summary; exit 2 when there is an error.
pub async fn run(ctx: &Context) -> anyhow::Result<ExitCode> {
    let config = ctx.config()?;
    let mut diagnostics = daemon_defaults(&config);
    let mut files: Vec<RulesFile> = Vec::new();
    for path in &config.daemon.rules_files {
        match read_rules_file(path) {
            Ok(file) => files.push(file),
            Err(errors) => diagnostics.extend(errors),
        }
    }
    for file in &files {
        diagnostics.extend(file.warnings.iter().cloned());
    }
    diagnostics.extend(across_files(&files));
    if !diagnostics.iter().any(Diagnostic::is_error) {
        diagnostics.extend(guardrails::unresolved(&config, &files).await);
    }
    for d in &diagnostics {
        eprintln!("{d}");
    }
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    let file_count = config.daemon.rules_files.len();
    if errors > 0 {
        eprintln!(
            "{}, {} in {}",
            plural(errors, "error"),
            plural(warnings, "warning"),
            plural(file_count, "file")
        );
        return Ok(ExitCode::from(crate::exit::USAGE));
    }
    if warnings > 0 {
        eprintln!(
            "{} in {}",
            plural(warnings, "warning"),
            plural(file_count, "file")
        );
    }
    let rules: usize = files.iter().map(|f| f.rules.len()).sum();
    println!(
        "ok: {} in {}",
        plural(rules, "rule"),
        plural(file_count, "file")
    );
    Ok(ExitCode::SUCCESS)
}

/// `2 errors`, `1 warning`.
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Checks `[daemon].schedule` and `[daemon].timezone`, the defaults of rules
/// that name none.
fn daemon_defaults(config: &Config) -> Vec<Diagnostic> {
    let checks = [
        ("schedule", check_schedule(&config.daemon.schedule)),
        ("timezone", check_timezone(&config.daemon.timezone)),
    ];
    let text = config
        .source
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    let file = config
        .source
        .as_ref()
        .map_or_else(|| "(defaults)".to_string(), |p| p.display().to_string());
    checks
        .into_iter()
        .filter_map(|(field, result)| {
            let message = result.err()?;
            let (line, col) = position_of(&text, field);
            Some(Diagnostic {
                severity: Severity::Error,
                file: file.clone(),
                line,
                col,
                rule: None,
                field: Some(format!("[daemon].{field}")),
                message,
            })
        })
        .collect()
}

/// The 1-based line:col of `[daemon].field`'s value in the config text
/// (1:1 when it cannot be found).
fn position_of(text: &str, field: &str) -> (usize, usize) {
    let offset = toml_edit::ImDocument::parse(text)
        .ok()
        .and_then(|doc| doc.get("daemon")?.get(field)?.span())
        .map_or(0, |s| s.start);
    let pos = LineIndex::new(text).position(offset);
    (pos.line, pos.col)
}
