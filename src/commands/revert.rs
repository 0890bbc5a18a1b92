//! `keywarden revert CHANGE_ID [--dry-run] [--exempt-until TIME]` (SPEC §5):
//! puts the fields of an applied change back to their `from` values, if the
//! key still holds the `to` values and no enabled rule still asserts them.
//!
//! Refusals (no such change, not applied, nothing to put back, the key
//! changed since, a rule still asserting) exit 2 and change nothing; a
//! PATCH that fails exits 1 and is recorded as a failed `revert`.

use super::Context;
use super::turn::ManualTurn;
use crate::cli::RevertArgs;
use crate::context::{client, open_store};
use crate::domain::timestamp::rfc3339;
use crate::domain::{Field, Guardrail, Key};
use crate::engine::plan::{Change, FieldChange};
use crate::engine::{ChangeKind, Outcome};
use crate::exit::UsageError;
use crate::openrouter::Client;
use crate::output::{FieldsStyle, fields_text};
use crate::rules::model::Selector;
use crate::rules::selector::CompiledSelector;
use crate::run::send_change;
use crate::run::sent::Completion;
use crate::store::{ChangeRow, Store};
use crate::timearg::parse_time;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::process::ExitCode;

/// Runs `revert`.
pub async fn run(ctx: &Context, args: RevertArgs) -> anyhow::Result<ExitCode> {
    let config = ctx.config()?;
    let now = ctx.clock.now();
    let exempt_until = args
        .exempt_until
        .as_deref()
        .map(|s| parse_time(s, now).map_err(|e| UsageError::new(format!("--exempt-until: {e}"))))
        .transpose()?;
    if exempt_until.is_some_and(|t| t <= now) {
        return Err(UsageError::new("--exempt-until must be in the future"));
    }
    let store = open_store(&config).await?;
    let client = client(&config)?;
    let change = revertible(&store, args.change_id).await?;
    // A revert reads the key, checks it and PATCHes it: no run in between.
    let _turn = match args.dry_run {
        true => None,
        false => Some(
            ManualTurn::take(
                &store,
                ctx.clock.as_ref(),
                args.wait,
                config.daemon.standby_poll,
            )
            .await?,
        ),
    };
    let mut key = client
        .get_key(&change.key_hash)
        .await
        .map_err(|e| anyhow::anyhow!("cannot read key {}: {e}", change.key_name))?;
    let guardrails = read_guardrail(&client, &change, &mut key).await?;
    still_holds(&change, &key)?;
    let asserting = asserting_rules(&store, &client, &change, &key, &guardrails, now).await?;
    let revert = revert_change(&change);
    let summary = fields_text(&revert.fields, FieldsStyle::Sentence);

    if args.dry_run {
        if let Some(until) = exempt_until {
            for rule in &asserting {
                println!(
                    "would exempt {} from rule {rule} until {}",
                    key.name,
                    rfc3339(until)
                );
            }
        }
        println!(
            "would revert change {} on {}: {summary}",
            change.id, key.name
        );
        return Ok(ExitCode::SUCCESS);
    }
    if !asserting.is_empty() {
        let Some(until) = exempt_until else {
            return Err(UsageError::new(format!(
                "refused: rule {} still asserts {} on key {}; it would set it again at its next run. \
                 Pass --exempt-until TIME to exempt the key from it and revert",
                asserting.join(", rule "),
                change
                    .fields
                    .iter()
                    .map(|(f, fc)| format!("{f} = {}", fc.to))
                    .collect::<Vec<_>>()
                    .join(", "),
                key.name
            )));
        };
        for rule in &asserting {
            let reason = format!("revert of change {}", change.id);
            let id = store
                .add_exemption(&key.hash, Some(rule), until, &reason, now)
                .await?;
            println!(
                "exempted {} from rule {rule} until {} (exemption {id})",
                key.name,
                rfc3339(until)
            );
        }
    }

    let ids = store
        .record_changes(None, now, std::slice::from_ref(&revert), None)
        .await?;
    let Completion { outcome, error, .. } = send_change(&client, &store, ids[0], &revert).await?;
    match error {
        None => {
            println!(
                "reverted change {} on {}: {summary} (change {})",
                change.id, key.name, ids[0]
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(e) => Err(anyhow::anyhow!(
            "the revert of change {} on {} ended {outcome}: {e} (recorded as change {})",
            change.id,
            key.name,
            ids[0]
        )),
    }
}

/// The change `id`, if it is one that can be put back: applied, and a kind
/// that moved the key (not `drift` or `deleted`).
async fn revertible(store: &Store, id: i64) -> anyhow::Result<ChangeRow> {
    let change = store
        .change(id)
        .await?
        .ok_or_else(|| UsageError::new(format!("no change {id} (see keywarden history)")))?;
    if change.outcome != Outcome::Applied {
        return Err(UsageError::new(format!(
            "refused: change {id} is {}, not applied: it did not change the key",
            change.outcome
        )));
    }
    if matches!(change.kind, ChangeKind::Drift | ChangeKind::Deleted) {
        return Err(UsageError::new(format!(
            "refused: change {id} is a {} row: keywarden changed nothing on the key",
            change.kind
        )));
    }
    Ok(change)
}

/// Refuses when the key no longer holds every `to` value of the change.
fn still_holds(change: &ChangeRow, key: &Key) -> anyhow::Result<()> {
    for (field, fc) in &change.fields {
        let current = key.get(*field);
        if current != fc.to {
            return Err(UsageError::new(format!(
                "refused: key {} has {field} = {current} now, not the {} change {} set; nothing to revert",
                key.name, fc.to, change.id
            )));
        }
    }
    Ok(())
}

/// The account's guardrails, and the key given the one it holds, when the
/// change moved its guardrail (nothing is read otherwise).
async fn read_guardrail(
    client: &Client,
    change: &ChangeRow,
    key: &mut Key,
) -> anyhow::Result<Vec<Guardrail>> {
    if !change.fields.contains_key(&Field::Guardrail) {
        return Ok(Vec::new());
    }
    let guardrails = client
        .list_guardrails(
            key.workspace_id
                .as_slice()
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .as_slice(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot read the guardrails: {e}"))?;
    let assignments = client
        .list_assignments()
        .await
        .map_err(|e| anyhow::anyhow!("cannot read the guardrail assignments: {e}"))?;
    key.guardrail = assignments.get(&key.hash).copied();
    Ok(guardrails)
}

/// The enabled rules that still assert one of the change's `to` values on
/// the key: they select it, their `when` held for it at their last
/// evaluation, and no exemption covers it now. The account's workspaces are
/// read only when such a rule selects keys by workspace (none when they
/// cannot be listed: the workspace is then known by its id).
async fn asserting_rules(
    store: &Store,
    client: &Client,
    change: &ChangeRow,
    key: &Key,
    guardrails: &[Guardrail],
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<String>> {
    let states = store.rule_states().await?;
    let exemptions = store.exemptions().await?;
    let mut candidates = Vec::new();
    for stored in store.rules().await? {
        let rule = stored.rule;
        // A guardrail that resolves to none or several asserts nothing.
        let sets_a_to_value = rule
            .set
            .resolve(guardrails)
            .unwrap_or_else(|_| rule.set.fields())
            .iter()
            .any(|v| change.fields.get(&v.field()).is_some_and(|fc| fc.to == *v));
        let holds = states
            .get(&rule.name)
            .is_some_and(|(_, holding)| holding.contains(&key.hash));
        let exempt = exemptions
            .iter()
            .any(|e| e.covers(&key.hash, &rule.name, now));
        if rule.enabled && sets_a_to_value && holds && !exempt {
            candidates.push(rule);
        }
    }
    let by_workspace = candidates
        .iter()
        .any(|r| matches!(&r.keys, Selector::Match(m) if !m.workspaces.is_empty()));
    let workspaces = match by_workspace {
        true => client.list_workspaces().await.unwrap_or_default(),
        false => Vec::new(),
    };
    Ok(candidates
        .into_iter()
        .filter(|r| CompiledSelector::new(&r.keys).matches(key, &workspaces))
        .map(|r| r.name)
        .collect())
}

/// The `revert` change: every field from its `to` back to its `from`.
fn revert_change(change: &ChangeRow) -> Change {
    let fields: BTreeMap<_, _> = change
        .fields
        .iter()
        .map(|(f, fc)| {
            (
                *f,
                FieldChange {
                    from: fc.to,
                    to: fc.from,
                },
            )
        })
        .collect();
    Change {
        key_hash: change.key_hash.clone(),
        key_name: change.key_name.clone(),
        rule: change.rule.clone(),
        kind: ChangeKind::Revert,
        reason: format!("keywarden revert of change {} ({})", change.id, change.kind),
        fields,
        held: None,
    }
}
