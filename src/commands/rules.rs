//! `keywarden rules …`: list, show, import, export, enable, disable,
//! remove and the revision history of the rules kept in the database.

use super::Context;
use crate::cli::{Format, RulesCommand};
use crate::config::Config;
use crate::context::Shell;
use crate::context::open_store;
use crate::domain::timestamp::rfc3339;
use crate::exit::{USAGE, UsageError};
use crate::listing::rules::RuleListing;
use crate::rules::export::to_toml;
use crate::rules::model::{Conditions, Origin, Rule, Selector};
use crate::rules::read_rules_file;
use crate::store::Store;
use crate::store::rules::{Revision, StoredRule};
use chrono::{DateTime, Utc};
use std::path::Path;
use std::process::ExitCode;

/// Runs `rules …`.
pub async fn run(ctx: &Context, command: RulesCommand) -> anyhow::Result<ExitCode> {
    let config = ctx.config()?;
    if let RulesCommand::Import { file, prune } = &command {
        // Validate before the database is even opened: an invalid file changes nothing.
        return import(ctx, config, file, *prune).await;
    }
    let store = open_store(&config).await?;
    let now = ctx.clock.now();
    match command {
        RulesCommand::List { format } => list(&store.rules().await?, format)?,
        RulesCommand::Show { name } => {
            let stored = store.rule(&name).await?.ok_or_else(|| no_rule(&name))?;
            print!(
                "# origin: {}\n{}",
                stored.origin.as_string(),
                to_toml(&[stored.rule])
            );
        }
        RulesCommand::Export => {
            let rules: Vec<Rule> = store.rules().await?.into_iter().map(|s| s.rule).collect();
            print!("{}", to_toml(&rules));
        }
        RulesCommand::Enable { name } => set_enabled(&store, &name, true, now).await?,
        RulesCommand::Disable { name } => set_enabled(&store, &name, false, now).await?,
        RulesCommand::Remove { name } => {
            if !store.remove_rule(&name, &Origin::Cli, now).await? {
                return Err(no_rule(&name));
            }
            println!("removed rule {name:?}");
        }
        RulesCommand::History { name } => {
            let revisions = store.revisions(name.as_deref()).await?;
            if let Some(name) = &name {
                if revisions.is_empty() && store.rule(name).await?.is_none() {
                    return Err(no_rule(name));
                }
            }
            for r in &revisions {
                print!("{}", revision(r));
            }
        }
        RulesCommand::Import { .. } => unreachable!("handled above"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The error for an unknown rule name (exit 2).
fn no_rule(name: &str) -> anyhow::Error {
    UsageError::new(format!("no rule named {name:?} (see keywarden rules list)"))
}

/// `rules enable` / `rules disable`.
async fn set_enabled(
    store: &Store,
    name: &str,
    enabled: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    if !store
        .set_rule_enabled(name, enabled, &Origin::Cli, now)
        .await?
    {
        return Err(no_rule(name));
    }
    println!(
        "{} rule {name:?}",
        if enabled { "enabled" } else { "disabled" }
    );
    Ok(())
}

/// `rules import FILE [--prune]`: validates the whole file, then opens the
/// database `config` names and syncs it in one transaction; any error
/// leaves the database unchanged.
async fn import(
    ctx: &Context,
    config: Config,
    file: &Path,
    prune: bool,
) -> anyhow::Result<ExitCode> {
    let parsed = match read_rules_file(file) {
        Ok(parsed) => parsed,
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!(
                "{}: {} error{}; nothing imported",
                file.display(),
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            );
            return Ok(ExitCode::from(USAGE));
        }
    };
    for w in &parsed.warnings {
        eprintln!("{w}");
    }
    let absolute = std::path::absolute(file)?;
    let origin = Origin::File(absolute.display().to_string());
    let Shell { store, clock, .. } = Shell::open(config, ctx.clock.clone()).await?;
    let summary = store
        .sync_rules(&origin, &parsed.rules, prune, clock.now())
        .await?;
    println!(
        "imported {}: {} added, {} updated, {} removed, {} unchanged",
        file.display(),
        summary.added.len(),
        summary.updated.len(),
        summary.removed.len(),
        summary.unchanged.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// `rules list`: a table for people or a JSON array.
fn list(rules: &[StoredRule], format: Format) -> anyhow::Result<()> {
    match format {
        Format::Table => {
            let rows = rules.iter().map(|s| {
                let r = &s.rule;
                vec![
                    r.name.clone(),
                    if r.enabled { "yes" } else { "no" }.to_string(),
                    r.priority.to_string(),
                    selector_summary(&r.keys),
                    conditions_summary(&r.when),
                    r.set
                        .fields()
                        .iter()
                        .map(|v| format!("{}={v}", v.field()))
                        .chain(
                            r.set
                                .guardrail
                                .iter()
                                .map(|g| format!("guardrail={}", g.as_str())),
                        )
                        .collect::<Vec<_>>()
                        .join(", "),
                    s.origin.as_string(),
                ]
            });
            println!(
                "{}",
                crate::output::table(
                    &[
                        "rule", "enabled", "priority", "keys", "when", "set", "origin"
                    ],
                    rows
                )
            );
        }
        Format::Json => {
            let items: Vec<RuleListing> = rules.iter().map(RuleListing::of).collect();
            println!("{}", serde_json::to_string_pretty(&items)?);
        }
        other => {
            return Err(UsageError::new(format!(
                "rules list prints table or json, not {other:?}"
            )));
        }
    }
    Ok(())
}

/// `all`, or the listed items of a selector.
fn selector_summary(s: &Selector) -> String {
    let Selector::Match(m) = s else {
        return "all".into();
    };
    let mut parts: Vec<String> = m.hashes.iter().map(|h| format!("hash {h}")).collect();
    parts.extend(m.names.iter().cloned());
    parts.extend(m.labels.iter().map(|l| format!("label {l}")));
    parts.extend(m.workspaces.iter().map(|w| format!("workspace {w}")));
    let x = &m.exclude;
    let excluded: Vec<&String> = x.hashes.iter().chain(&x.names).chain(&x.labels).collect();
    if !excluded.is_empty() {
        parts.push(format!(
            "except {}",
            excluded
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    parts.join(", ")
}

/// The names of the conditions a rule has (`always` when none).
fn conditions_summary(c: &Conditions) -> String {
    let present = [
        ("budget", c.budget.is_some()),
        ("forecast", c.forecast.is_some()),
        ("credits_below", c.credits_below.is_some()),
        ("season", c.season.is_some()),
        ("between", c.between.is_some()),
        ("weekdays", c.weekdays.is_some()),
        ("hours", c.hours.is_some()),
    ];
    let names: Vec<&str> = present
        .iter()
        .filter(|(_, p)| *p)
        .map(|(n, _)| *n)
        .collect();
    if names.is_empty() {
        "always".into()
    } else {
        names.join(", ")
    }
}

/// One revision: who and when, then a unified diff of the rule's TOML.
fn revision(r: &Revision) -> String {
    let text = |rule: &Option<Rule>| {
        rule.as_ref()
            .map(|r| to_toml(std::slice::from_ref(r)))
            .unwrap_or_default()
    };
    let (before, after) = (text(&r.before), text(&r.after));
    let what = match (&r.before, &r.after) {
        (None, _) => "created",
        (_, None) => "removed",
        _ => "changed",
    };
    let diff = similar::TextDiff::from_lines(&before, &after)
        .unified_diff()
        .header("before", "after")
        .to_string();
    format!(
        "revision {} {} rule {:?} by {} at {}\n{diff}\n",
        r.id,
        what,
        r.rule,
        r.who,
        rfc3339(r.at)
    )
}
