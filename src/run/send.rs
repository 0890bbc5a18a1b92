//! Sending the PATCHes and the bulk guardrail calls of a plan and
//! completing their rows with what happened (SPEC §4.5, §12): a key's rows
//! are completed once every request for it is back (see [`super::sent`]).
//!
//! The PATCHes go out while the rows of those already answered are being
//! completed: the answers queue for the store, so a write never holds a
//! place under `max_concurrency` empty, and the answers that arrived
//! together are completed together (one transaction for the rows that
//! ended alike).

use super::Runner;
use super::sent::{Completion, Sent};
use crate::domain::event::EventKind;
use crate::domain::{Field, FieldValue, Key};
use crate::engine::plan::{Change, GuardrailAction, GuardrailBatch};
use crate::engine::{ChangeKind, Outcome, Plan};
use crate::openrouter::guardrails::GUARDRAIL_PAGE;
use crate::openrouter::{ApiError, Attempted, Client, KeyPatch};
use crate::store::Store;
use crate::store::leader::LeadershipLost;
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tokio::sync::mpsc;

/// What came back for one key: its rows (positions in the plan's changes)
/// and its PATCH's answer (`None` when only a guardrail call was sent).
struct Answer<'a> {
    hash: &'a str,
    rows: Vec<usize>,
    attempted: Option<Attempted<Key>>,
}

/// How one key's rows are completed.
struct KeyDone {
    rows: Vec<usize>,
    completion: Completion,
}

impl Runner {
    /// Sends the bulk guardrail calls, then one PATCH per key (bounded by
    /// the client's concurrency and rate limits), and completes the rows
    /// of run `run_id` with what happened. Returns why the run stopped
    /// early, when the API refused the credential.
    pub(super) async fn send(
        &self,
        run_id: i64,
        plan: &Plan,
        ids: &[i64],
        finals: &mut [Outcome],
    ) -> anyhow::Result<Option<String>> {
        let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        let mut nothing_to_send = Vec::new();
        for (n, c) in plan.changes.iter().enumerate() {
            if c.held.is_some() {
                continue;
            }
            if c.sends_patch() {
                by_key.entry(c.key_hash.as_str()).or_default().push(n);
            } else {
                nothing_to_send.push(n);
            }
        }
        // Rows that send nothing are done at once.
        if !nothing_to_send.is_empty() {
            let done: Vec<i64> = nothing_to_send.iter().map(|&n| ids[n]).collect();
            self.store
                .complete_changes(&done, Outcome::Applied, None, 0, None)
                .await?;
            for &n in &nothing_to_send {
                finals[n] = Outcome::Applied;
                let c = &plan.changes[n];
                if c.kind == ChangeKind::Deleted {
                    self.store.delete_claims_of_key(&c.key_hash).await?;
                }
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
        let (answers, mut inbox) = mpsc::unbounded_channel();
        let sending = send_patches(&self.client, keys, &patches, concurrency, answers);
        let completing = async {
            let mut auth_failure: Option<ApiError> = None;
            while let Some(first) = inbox.recv().await {
                let mut arrived = vec![first];
                while let Ok(next) = inbox.try_recv() {
                    arrived.push(next);
                }
                let mut done = Vec::with_capacity(arrived.len());
                let mut gone = Vec::new();
                for Answer {
                    hash,
                    rows,
                    attempted,
                } in arrived
                {
                    let completion = Completion::of(
                        attempted.as_ref().map(Sent::patch),
                        guardrails.remove(hash),
                    );
                    match attempted.map(|a| a.result) {
                        // Deleted between listing and PATCH: its claims go.
                        Some(Err(ApiError::KeyNotFound { .. })) => gone.push(hash),
                        Some(Err(e @ ApiError::AuthFailed { .. })) if auth_failure.is_none() => {
                            // No more PATCHes go out; those already
                            // answered are completed as they came.
                            auth_failure = Some(e);
                            inbox.close();
                        }
                        _ => {}
                    }
                    done.push(KeyDone { rows, completion });
                }
                complete(&self.store, plan, ids, &done).await?;
                for KeyDone { rows, completion } in &done {
                    for &n in rows {
                        finals[n] = completion.outcome;
                    }
                }
                for hash in gone {
                    self.store.delete_claims_of_key(hash).await?;
                }
            }
            Ok::<_, anyhow::Error>(auth_failure)
        };
        // A store failure stops the run at once: the PATCHes in flight are
        // dropped, none more go out.
        let ((), stopped) = tokio::try_join!(sending, completing)?;
        self.confirm_leading()?;
        let Some(err) = stopped else {
            return Ok(None);
        };
        // 401/403 stop the run: a PATCH not sent is failed, and said so;
        // a guardrail call sent before counts for what it did.
        let mut unsent: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for n in (0..finals.len()).filter(|&n| finals[n] == Outcome::Pending) {
            unsent
                .entry(plan.changes[n].key_hash.as_str())
                .or_default()
                .push(n);
        }
        let done: Vec<KeyDone> = unsent
            .into_iter()
            .map(|(hash, rows)| {
                let patch = patches
                    .contains_key(hash)
                    .then(|| Sent::not_sent("the run stopped when the API refused the credential"));
                KeyDone {
                    rows,
                    completion: Completion::of(patch, guardrails.remove(hash)),
                }
            })
            .collect();
        complete(&self.store, plan, ids, &done).await?;
        for KeyDone { rows, completion } in &done {
            for &n in rows {
                finals[n] = completion.outcome;
            }
        }
        self.store
            .record_event(
                Some(run_id),
                self.clock.now(),
                EventKind::AuthFailed,
                None,
                None,
                &serde_json::json!({ "error": err.to_string() }),
            )
            .await?;
        Ok(Some(err.explain()))
    }
}

/// Sends one PATCH per key of `by_key` (a key without one, whose rows wait
/// only for their guardrail call, is answered at once), at most
/// `concurrency` at once, handing each answer to `answers` as it comes.
/// Stops, dropping the requests in flight, when `answers` is closed. It
/// never fails: the `Result` joins it to the completions, whose failure
/// stops it.
async fn send_patches<'a>(
    client: &Client,
    by_key: impl Iterator<Item = (&'a str, Vec<usize>)>,
    patches: &BTreeMap<String, KeyPatch>,
    concurrency: usize,
    answers: mpsc::UnboundedSender<Answer<'a>>,
) -> anyhow::Result<()> {
    let mut results = futures::stream::iter(by_key.map(|(hash, rows)| {
        let patch = patches.get(hash);
        async move {
            let attempted = match patch {
                Some(patch) => Some(client.update_key(hash, patch).await),
                None => None,
            };
            Answer {
                hash,
                rows,
                attempted,
            }
        }
    }))
    .buffer_unordered(concurrency);
    loop {
        let answer = tokio::select! {
            () = answers.closed() => return Ok(()),
            answer = results.next() => answer,
        };
        let Some(answer) = answer else { return Ok(()) };
        if answers.send(answer).is_err() {
            return Ok(());
        }
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
    let done = KeyDone {
        rows: vec![0],
        completion: Completion::of(
            attempted.as_ref().map(Sent::patch),
            guardrails.remove(&change.key_hash),
        ),
    };
    complete(store, &plan, &[id], std::slice::from_ref(&done)).await?;
    Ok(done.completion)
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

/// Row ids completed alike, in one write.
struct Alike<'a> {
    completion: &'a Completion,
    ids: Vec<i64>,
}

/// Completes the rows of keys (positions in the plan's changes, recorded
/// as `ids`) as each key's completion says: a row in part when only some
/// of its requests took; the rows that read alike (the same outcome,
/// status, attempts and error) in one transaction.
async fn complete(store: &Store, plan: &Plan, ids: &[i64], done: &[KeyDone]) -> anyhow::Result<()> {
    let mut whole: Vec<Alike<'_>> = Vec::new();
    for KeyDone { rows, completion } in done {
        for &n in rows {
            let took: BTreeSet<Field> = plan.changes[n]
                .fields
                .keys()
                .filter(|f| completion.took.contains(f))
                .copied()
                .collect();
            if took.is_empty() {
                match whole.iter_mut().find(|a| a.completion.reads_as(completion)) {
                    Some(alike) => alike.ids.push(ids[n]),
                    None => whole.push(Alike {
                        completion,
                        ids: vec![ids[n]],
                    }),
                }
                continue;
            }
            store
                .complete_change_in_part(
                    ids[n],
                    completion.outcome,
                    &took,
                    completion.http_status,
                    completion.attempts,
                    completion.error.as_deref(),
                )
                .await?;
        }
    }
    for Alike { completion, ids } in whole {
        store
            .complete_changes(
                &ids,
                completion.outcome,
                completion.http_status,
                completion.attempts,
                completion.error.as_deref(),
            )
            .await?;
    }
    Ok(())
}

/// The PATCH body that gives a key `values`.
fn patch_of(values: &[FieldValue]) -> KeyPatch {
    let mut patch = KeyPatch::default();
    for value in values {
        patch.set(*value);
    }
    patch
}
