//! Sending the PATCHes of a plan and completing their rows with what
//! happened (SPEC §4.5).

use super::{RunReport, Runner};
use crate::domain::FieldValue;
use crate::domain::event::EventKind;
use crate::engine::{ChangeKind, Outcome, Plan};
use crate::openrouter::{ApiError, KeyPatch};
use futures::StreamExt;
use std::collections::BTreeMap;

impl Runner {
    /// Sends one PATCH per key (bounded by the client's concurrency and
    /// rate limits), and completes the rows with what happened.
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
        let mut results = futures::stream::iter(by_key.into_iter().map(|(hash, rows)| {
            let client = self.client.clone();
            let patch = patches.get(hash).cloned().unwrap_or_default();
            let hash = hash.to_string();
            async move {
                let attempted = client.update_key(&hash, &patch).await;
                (hash, rows, attempted)
            }
        }))
        .buffer_unordered(concurrency);
        let mut auth_failure: Option<ApiError> = None;
        while let Some((hash, rows, attempted)) = results.next().await {
            let row_ids: Vec<i64> = rows.iter().map(|&n| ids[n]).collect();
            let (outcome, error) = match &attempted.result {
                Ok(_) => (Outcome::Applied, None),
                Err(e) if e.is_ambiguous() => (Outcome::Unknown, Some(e.to_string())),
                Err(e) => (Outcome::Failed, Some(e.to_string())),
            };
            self.store
                .complete_changes(
                    &row_ids,
                    outcome,
                    attempted.http_status,
                    attempted.attempts,
                    error.as_deref(),
                )
                .await?;
            for &n in &rows {
                finals[n] = outcome;
            }
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
        if let Some(err) = auth_failure {
            // 401/403 stop the run: what was not sent is failed, and said so.
            let unsent: Vec<usize> = (0..finals.len())
                .filter(|&n| finals[n] == Outcome::Pending)
                .collect();
            let unsent_ids: Vec<i64> = unsent.iter().map(|&n| ids[n]).collect();
            if !unsent_ids.is_empty() {
                self.store
                    .complete_changes(
                        &unsent_ids,
                        Outcome::Failed,
                        None,
                        0,
                        Some("not sent: the run stopped when the API refused the credential"),
                    )
                    .await?;
            }
            for n in unsent {
                finals[n] = Outcome::Failed;
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

/// The PATCH body that gives a key `values`.
fn patch_of(values: &[FieldValue]) -> KeyPatch {
    let mut patch = KeyPatch::default();
    for value in values {
        patch.set(*value);
    }
    patch
}
