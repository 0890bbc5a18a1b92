//! `check-config`'s look at the account's workspaces: an id or slug of
//! `[openrouter] workspaces` the account does not have, and a selector's
//! `workspaces` glob that matches none of its workspaces, when a management
//! key is configured and the account answers in time; silent otherwise.

use super::{account, config_file, position_of};
use crate::config::{Config, Workspaces};
use crate::domain::Workspace;
use crate::openrouter::Client;
use crate::rules::diagnostic::{Diagnostic, Severity};
use crate::rules::model::Selector;
use crate::rules::parse::RulesFile;
use crate::rules::selector::unmatched_workspaces;

/// A warning for each configured workspace and each selector glob that
/// names no workspace of the account.
pub(super) async fn unknown(config: &Config, files: &[RulesFile]) -> Vec<Diagnostic> {
    let configured: &[String] = match &config.openrouter.workspaces {
        Workspaces::Only(names) => names,
        Workspaces::All => &[],
    };
    let globs = files
        .iter()
        .flat_map(RulesFile::located)
        .any(|l| matches!(&l.rule.keys, Selector::Match(m) if !m.workspaces.is_empty()));
    if configured.is_empty() && !globs {
        return Vec::new();
    }
    let read = |client: Client| async move { client.list_workspaces().await };
    let Some(workspaces) = account::ask(config, read).await else {
        return Vec::new();
    };
    let mut warnings = unknown_configured(config, configured, &workspaces);
    warnings.extend(unmatched_globs(files, &workspaces));
    warnings
}

/// The configured ids and slugs that are no workspace of the account.
fn unknown_configured(
    config: &Config,
    configured: &[String],
    workspaces: &[Workspace],
) -> Vec<Diagnostic> {
    let known: Vec<&str> = workspaces.iter().map(|w| w.slug.as_str()).collect();
    let (file, text) = config_file(config);
    let (line, col) = position_of(&text, "openrouter", "workspaces");
    configured
        .iter()
        .filter(|name| !workspaces.iter().any(|w| w.is(name)))
        .map(|name| Diagnostic {
            severity: Severity::Warning,
            file: file.clone(),
            line,
            col,
            rule: None,
            field: Some("[openrouter].workspaces".into()),
            message: format!(
                "{name:?} is neither the id nor the slug of a workspace of the account \
                 (its workspaces: {}): a run will fail",
                known.join(", ")
            ),
        })
        .collect()
}

/// The selectors' `workspaces` globs that match no workspace of the account.
fn unmatched_globs(files: &[RulesFile], workspaces: &[Workspace]) -> Vec<Diagnostic> {
    files
        .iter()
        .flat_map(RulesFile::located)
        .flat_map(|l| {
            unmatched_workspaces(&l.rule.keys, workspaces)
                .into_iter()
                .map(move |glob| {
                    l.diagnostic(
                        Severity::Warning,
                        "keys.workspaces",
                        format!(
                            "{glob:?} matches no workspace of the account (by id, slug or \
                             name): no key is selected through it"
                        ),
                    )
                })
        })
        .collect()
}
