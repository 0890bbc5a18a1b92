//! `keywarden exempt`: let a person override keywarden on a key for a while
//! (SPEC §4.3).

use super::Context;
use super::key_arg::resolve_key;
use crate::cli::{ExemptCommand, Format};
use crate::context::Shell;
use crate::domain::timestamp::rfc3339;
use crate::engine::Exemption;
use crate::exit::UsageError;
use crate::output;
use crate::store::Store;
use crate::timearg::parse_deadline;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::process::ExitCode;

/// Runs `exempt`.
pub async fn run(ctx: &Context, command: ExemptCommand) -> anyhow::Result<ExitCode> {
    let now = ctx.clock.now();
    match command {
        ExemptCommand::Add {
            key,
            until,
            rule,
            reason,
        } => {
            let until = parse_deadline(&until, now)
                .map_err(|e| UsageError::new(format!("--until: {e}")))?;
            if until <= now {
                return Err(UsageError::new(format!(
                    "--until: {} is not in the future",
                    rfc3339(until)
                )));
            }
            if reason.trim().is_empty() {
                return Err(UsageError::new(
                    "--reason: say why the key is exempt (it is recorded)",
                ));
            }
            let Shell { config, store, .. } = ctx.open().await?;
            if let Some(rule) = &rule
                && store.rule(rule).await?.is_none()
            {
                return Err(UsageError::new(format!(
                    "--rule: no rule named `{rule}` (see `keywarden rules list`)"
                )));
            }
            let key_hash = resolve_key(&config, &store, &key).await?;
            let id = store
                .add_exemption(&key_hash, rule.as_deref(), until, reason.trim(), now)
                .await?;
            println!(
                "exemption {id}: keywarden leaves key {} alone ({}) until {}",
                label(&store, &key_hash).await?,
                rule.map_or("every rule".to_string(), |r| format!("rule {r}")),
                rfc3339(until)
            );
            Ok(ExitCode::SUCCESS)
        }
        ExemptCommand::List { format } => list(ctx, format, now).await,
        ExemptCommand::Remove { id } => {
            let store = ctx.open().await?.store;
            if !store.remove_exemption(id).await? {
                return Err(UsageError::new(format!(
                    "no exemption {id} (see `keywarden exempt list`)"
                )));
            }
            println!("removed exemption {id}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// One exemption as `exempt list --format json` prints it.
#[derive(Serialize)]
struct Listed<'a> {
    #[serde(flatten)]
    exemption: &'a Exemption,
    key_name: Option<String>,
    active: bool,
}

async fn list(ctx: &Context, format: Format, now: DateTime<Utc>) -> anyhow::Result<ExitCode> {
    if !matches!(format, Format::Table | Format::Json) {
        return Err(UsageError::new(
            "--format: exempt list prints table or json",
        ));
    }
    let store = ctx.open().await?.store;
    let exemptions = store.exemptions().await?;
    let mut listed = Vec::with_capacity(exemptions.len());
    for exemption in &exemptions {
        let key_name = store.key_name(&exemption.key_hash).await?;
        listed.push(Listed {
            exemption,
            key_name,
            active: now < exemption.until,
        });
    }
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&listed)?);
        return Ok(ExitCode::SUCCESS);
    }
    if listed.is_empty() {
        println!("no exemptions");
        return Ok(ExitCode::SUCCESS);
    }
    let rows = listed.iter().map(|l| {
        let e = l.exemption;
        vec![
            e.id.to_string(),
            match &l.key_name {
                Some(name) => format!("{name} ({})", output::shorten(&e.key_hash, 12)),
                None => e.key_hash.clone(),
            },
            e.rule.clone().unwrap_or_else(|| "(every rule)".into()),
            rfc3339(e.until),
            if l.active { "active" } else { "expired" }.to_string(),
            e.held_at.map(rfc3339).unwrap_or_default(),
            e.reason.clone(),
        ]
    });
    println!(
        "{}",
        output::table(
            &[
                "id",
                "key",
                "rule",
                "until",
                "status",
                "first held a change",
                "reason"
            ],
            rows
        )
    );
    Ok(ExitCode::SUCCESS)
}

/// `name (hash…)` when history knows the key's name, else the hash.
async fn label(store: &Store, key_hash: &str) -> anyhow::Result<String> {
    Ok(match store.key_name(key_hash).await? {
        Some(name) => format!("{name} ({})", output::shorten(key_hash, 12)),
        None => key_hash.to_string(),
    })
}
