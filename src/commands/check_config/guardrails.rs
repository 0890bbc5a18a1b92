//! `check-config`'s look at the account: the guardrail names of the rules
//! against the account's guardrails, when a management key is configured
//! and the account answers in time; silent otherwise.

use crate::config::Config;
use crate::domain::GuardrailRef;
use crate::openrouter::{Client, ClientSettings};
use crate::rules::diagnostic::{Diagnostic, Severity};
use crate::rules::parse::RulesFile;
use std::time::Duration;

/// How long the account may take to list its guardrails.
const PATIENCE: Duration = Duration::from_secs(10);

/// A warning for each rule whose `set.guardrail` names no guardrail of the
/// account, or several.
pub(super) async fn unresolved(config: &Config, files: &[RulesFile]) -> Vec<Diagnostic> {
    let named = files
        .iter()
        .flat_map(RulesFile::located)
        .filter(|l| matches!(l.rule.set.guardrail, Some(GuardrailRef::Named(_))));
    let named: Vec<_> = named.collect();
    if named.is_empty() {
        return Vec::new();
    }
    let Ok(client) = ClientSettings::from_config(config).and_then(Client::new) else {
        return Vec::new();
    };
    let read = async {
        let listing = client.list().await?;
        let workspaces: Vec<&str> = listing.workspaces.iter().map(|w| w.id.as_str()).collect();
        client.list_guardrails(&workspaces).await
    };
    let guardrails = match tokio::time::timeout(PATIENCE, read).await {
        Ok(Ok(guardrails)) => guardrails,
        _ => return Vec::new(),
    };
    named
        .into_iter()
        .filter_map(|l| {
            let why = l.rule.set.resolve(&guardrails).err()?;
            Some(Diagnostic {
                severity: Severity::Warning,
                file: l.file.to_string(),
                line: l.pos.line,
                col: l.pos.col,
                rule: Some(l.rule.name.clone()),
                field: Some("set.guardrail".into()),
                message: format!("{why}: a run will not evaluate this rule"),
            })
        })
        .collect()
}
