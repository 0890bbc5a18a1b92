//! Sending the PATCHes and the bulk guardrail calls of a plan and
//! completing their rows with what happened (SPEC §4.5, §12): a key's rows
//! are completed once every request for it is back (see [`super::sent`]).

use super::sent::{Completion, Sent};
use super::{RunReport, Runner};
use crate::domain::event::EventKind;
use crate::domain::{Field, FieldValue};
use crate::engine::plan::{Change, GuardrailAction, GuardrailBatch};
use crate::engine::{ChangeKind, Outcome, Plan};
use crate::openrouter::guardrails::GUARDRAIL_PAGE;
use crate::openrouter::{ApiError, Client, KeyPatch};
use crate::store::Store;
use crate::store::leader::LeadershipLost;
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet, HashMap};

impl Runner {
    /// Sends the bulk guardrail calls, then one PATCH per key (bounded by
    /// the client's concurrency and rate limits), and completes the rows
    /// with what happened.
    pub(super) async fn send(
        &self,
        plan: &Plan,
        ids: &[i64],
        finals: &mut [Outcome],
        report: &mut RunReport,
    ) -> anyhow::Result<()> {
        // Rows that send nothing are done at once.
        let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (n, c) in plan.changes.iter().enumerate() {
            if c.held.is_some() {
                continue;
            }
            if c.sends_patch() {
                by_key.entry(c.key_hash.as_str()).or_default().push(n);
            } else {
                self.store
                    .complete_changes(&[ids[n]], Outcome::Applied, None, 0, None)
                    .await?;
                if c.kind == ChangeKind::Deleted {
                    self.store.delete_claims_of_key(&c.key_hash).await?;
                }
                finals[n] = Outcome::Applied;
            }
        }
        let patches: BTreeMap<String, KeyPatch> = plan
            .patches()
            .into_iter()
            .map(|update| (update.key_hash, patch_of(&update.values)))
            .collect();
        let concurrency = self.config.openrouter.max_concurrency.max(1);
        let batches = plan.guardrail_batches(GUARDRAIL_PAGE);
        self.confirm_leading()?;
        let mut guardrails = send_guardrails(&self.client, batches, concurrency).await;
        self.confirm_leading()?;
        // No new request once the lead is lost; the rows not sent stay
        // pending for the next leader (SPEC §4.5).
        let leading = self.leading.clone();
        let keys = by_key.into_iter().take_while(move |_| leading.is_held());
        let mut results = futures::stream::iter(keys.map(|(hash, rows)| {
            let client = self.client.clone();
            let patch = patches.get(hash).cloned();
            let hash = hash.to_string();
            async move {
                let attempted = match patch {
                    Some(patch) => Some(client.update_key(&hash, &patch).await),
                    None => None,
                };
                (hash, rows, attempted)
            }
        }))
        .buffer_unordered(concurrency);
        let mut auth_failure: Option<ApiError> = None;
        while let Some((hash, rows, attempted)) = results.next().await {
            let done = Completion::of(
                attempted.as_ref().map(Sent::patch),
                guardrails.remove(&hash),
            );
            complete(&self.store, &rows, plan, ids, &done).await?;
            for &n in &rows {
                finals[n] = done.outcome;
            }
            let Some(attempted) = attempted else {
                continue;
            };
            match &attempted.result {
                Err(ApiError::KeyNotFound { .. }) => {
                    // Deleted between listing and PATCH: its claims go.
                    self.store.delete_claims_of_key(&hash).await?;
                }
                Err(e @ ApiError::AuthFailed { .. }) if auth_failure.is_none() => {
                    auth_failure = Some(e.clone());
                    break;
                }
                _ => {}
            }
        }
        drop(results);
        self.confirm_leading()?;
        if let Some(err) = auth_failure {
            // 401/403 stop the run: a PATCH not sent is failed, and said so;
            // a guardrail call sent before counts for what it did.
            let mut unsent: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
            for n in (0..finals.len()).filter(|&n| finals[n] == Outcome::Pending) {
                unsent
                    .entry(plan.changes[n].key_hash.as_str())
                    .or_default()
                    .push(n);
            }
            for (hash, rows) in unsent {
                let patch = patches
                    .contains_key(hash)
                    .then(|| Sent::not_sent("the run stopped when the API refused the credential"));
                let done = Completion::of(patch, guardrails.remove(hash));
                complete(&self.store, &rows, plan, ids, &done).await?;
                for n in rows {
                    finals[n] = done.outcome;
                }
            }
            self.store
                .record_event(
                    Some(report.run_id),
                    self.clock.now(),
                    EventKind::AuthFailed,
                    None,
                    None,
                    &serde_json::json!({ "error": err.to_string() }),
                )
                .await?;
            report.error = Some(err.explain());
        }
        Ok(())
    }
}

impl Runner {
    /// Fails with [`LeadershipLost`] when this process no longer leads.
    fn confirm_leading(&self) -> Result<(), LeadershipLost> {
        match self.leading.is_held() {
            true => Ok(()),
            false => Err(LeadershipLost),
        }
    }
}

/// Sends `change`, recorded as row `id`, to its key on its own (its PATCH,
/// its guardrail call, or both: what `keywarden revert` does) and completes
/// the row with what happened.
pub async fn send_change(
    client: &Client,
    store: &Store,
    id: i64,
    change: &Change,
) -> anyhow::Result<Completion> {
    let plan = Plan {
        changes: vec![change.clone()],
        ..Plan::default()
    };
    let mut guardrails = send_guardrails(client, plan.guardrail_batches(GUARDRAIL_PAGE), 1).await;
    let attempted = match plan.patches().first() {
        Some(update) => Some(
            client
                .update_key(&update.key_hash, &patch_of(&update.values))
                .await,
        ),
        None => None,
    };
    let done = Completion::of(
        attempted.as_ref().map(Sent::patch),
        guardrails.remove(&change.key_hash),
    );
    complete(store, &[0], &plan, &[id], &done).await?;
    Ok(done)
}

/// Sends the bulk guardrail calls, at most `concurrency` at once; what
/// each key's call came to, by key hash.
async fn send_guardrails(
    client: &Client,
    batches: Vec<GuardrailBatch>,
    concurrency: usize,
) -> HashMap<String, Sent> {
    let mut results = futures::stream::iter(batches.into_iter().map(|batch| {
        let client = client.clone();
        async move {
            let sent = match batch.action {
                GuardrailAction::Assign(id) => Sent::guardrail(
                    "guardrail assignment",
                    &client.assign_keys(id, &batch.key_hashes).await,
                ),
                GuardrailAction::Remove(id) => Sent::guardrail(
                    "guardrail removal",
                    &client.unassign_keys(id, &batch.key_hashes).await,
                ),
            };
            (batch.key_hashes, sent)
        }
    }))
    .buffer_unordered(concurrency);
    let mut by_key = HashMap::new();
    while let Some((hashes, sent)) = results.next().await {
        for hash in hashes {
            by_key.insert(hash, sent.clone());
        }
    }
    by_key
}

/// Completes one key's `rows` (positions in the plan's changes, recorded
/// as `ids`) as `done` says: a row in part when only some of its requests
/// took.
async fn complete(
    store: &Store,
    rows: &[usize],
    plan: &Plan,
    ids: &[i64],
    done: &Completion,
) -> anyhow::Result<()> {
    let mut whole = Vec::new();
    for &n in rows {
        let took: BTreeSet<Field> = plan.changes[n]
            .fields
            .keys()
            .filter(|f| done.took.contains(f))
            .copied()
            .collect();
        if took.is_empty() {
            whole.push(ids[n]);
            continue;
        }
        store
            .complete_change_in_part(
                ids[n],
                done.outcome,
                &took,
                done.http_status,
                done.attempts,
                done.error.as_deref(),
            )
            .await?;
    }
    if whole.is_empty() {
        return Ok(());
    }
    store
        .complete_changes(
            &whole,
            done.outcome,
            done.http_status,
            done.attempts,
            done.error.as_deref(),
        )
        .await
}

/// The PATCH body that gives a key `values`.
fn patch_of(values: &[FieldValue]) -> KeyPatch {
    let mut patch = KeyPatch::default();
    for value in values {
        patch.set(*value);
    }
    patch
}
