//! `check-config`'s look at the account: the guardrail names of the rules
//! against the account's guardrails, when a management key is configured
//! and the account answers in time; silent otherwise.

use super::account;
use crate::config::Config;
use crate::domain::GuardrailRef;
use crate::openrouter::Client;
use crate::rules::diagnostic::{Diagnostic, Severity};
use crate::rules::parse::RulesFile;

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
    let read = |client: Client| async move {
        let listing = client.list().await?;
        let workspaces: Vec<&str> = listing.workspaces.iter().map(|w| w.id.as_str()).collect();
        client.list_guardrails(&workspaces).await
    };
    let Some(guardrails) = account::ask(config, read).await else {
        return Vec::new();
    };
    named
        .into_iter()
        .filter_map(|l| {
            let why = l.rule.set.resolve(&guardrails).err()?;
            Some(l.diagnostic(
                Severity::Warning,
                "set.guardrail",
                format!("{why}: a run will not evaluate this rule"),
            ))
        })
        .collect()
}
