//! Recording what a run found and did: the notes of the plan (budget
//! readings, conflicts, a guard trip), exemptions that held a change, rows
//! left open by an earlier run, and the run row itself (SPEC §4.5, §5).

use super::{Resolved, RunError, RunReport, Runner};
use crate::domain::event::EventKind;
use crate::domain::{Field, Key};
use crate::engine::inputs::Guardrails;
use crate::engine::reconcile::Reconciliation;
use crate::engine::settle::{Settlement, settle};
use crate::engine::{Hold, Outcome};
use crate::store::RunSummary;
use chrono::{DateTime, Utc};
use std::collections::{BTreeSet, HashMap};

impl Runner {
    /// Records the budget readings (a rule's when the run changes a key
    /// under it, else at most once per `[history].snapshot_interval`), the
    /// conflicts that begin (once: a conflict still holding from an earlier
    /// run is not recorded again) and a guard trip as events.
    pub(super) async fn record_notes(
        &self,
        run_id: i64,
        now: DateTime<Utc>,
        o: &Reconciliation,
        keys: &[Key],
    ) -> anyhow::Result<()> {
        let changed: BTreeSet<&str> = o.plan.changes.iter().map(|c| &*c.rule).collect();
        let readings = self
            .store
            .record_budget_readings(
                run_id,
                now,
                &o.plan.budgets,
                &changed,
                self.config.history.snapshot_interval,
            )
            .await?;
        let unevaluated: BTreeSet<(&str, Field)> = o
            .frozen
            .iter()
            .map(|&(i, field)| (keys[i].hash.as_str(), field))
            .collect();
        let begun = self
            .store
            .record_conflicts(run_id, now, &o.plan.conflicts, &unevaluated)
            .await?;
        tracing::debug!(
            readings = o.plan.budgets.len(),
            recorded = readings,
            "budget readings"
        );
        tracing::debug!(
            conflicts = o.plan.conflicts.len(),
            begun,
            "equal-priority conflicts"
        );
        if o.guard_tripped {
            let held: Vec<&str> = o
                .plan
                .changes
                .iter()
                .filter(|c| c.held == Some(Hold::Guard))
                .map(|c| c.key_hash.as_str())
                .collect();
            let detail = serde_json::json!({
                "held_changes": held.len(),
                "max_changes_per_run": self.config.daemon.max_changes_per_run,
                "max_disable_fraction": self.config.daemon.max_disable_fraction,
            });
            self.store
                .record_event(
                    Some(run_id),
                    now,
                    EventKind::GuardTripped,
                    None,
                    None,
                    &detail,
                )
                .await?;
        }
        Ok(())
    }

    /// Resolves rows left `pending` or `unknown` by an earlier run, by reading
    /// the key (and its assignment): `applied` when it holds the values, else
    /// `failed` (the plan that follows retries what did not take). A row
    /// that moved a guardrail stays open while the assignments are unread.
    pub(super) async fn resolve_open(
        &self,
        keys: &[Key],
        guardrails: &Guardrails,
        run_id: i64,
    ) -> anyhow::Result<Vec<Resolved>> {
        let by_hash: HashMap<&str, &Key> = keys.iter().map(|k| (k.hash.as_str(), k)).collect();
        let mut resolved = Vec::new();
        for row in self.store.open_changes().await? {
            if row.fields.contains_key(&Field::Guardrail) && guardrails.listed().is_err() {
                continue;
            }
            let key = by_hash.get(row.key_hash.as_str()).copied();
            let Settlement {
                outcome,
                error,
                took,
            } = settle(&row.fields, key, run_id);
            self.store
                .complete_change_in_part(
                    row.id,
                    outcome,
                    &took,
                    row.http_status,
                    row.attempts,
                    error.as_deref(),
                )
                .await?;
            resolved.push(Resolved {
                id: row.id,
                outcome,
            });
        }
        Ok(resolved)
    }

    pub(super) async fn stop(
        &self,
        mut report: RunReport,
        err: RunError,
        now: DateTime<Utc>,
    ) -> anyhow::Result<RunReport> {
        let (status, message) = match &err {
            RunError::AuthFailed(_) => ("auth_failed", err.to_string()),
            RunError::Api(_) | RunError::Internal(_) => ("error", err.to_string()),
        };
        if let RunError::AuthFailed(e) = &err {
            self.store
                .record_event(
                    Some(report.run_id),
                    now,
                    EventKind::AuthFailed,
                    None,
                    None,
                    &serde_json::json!({ "error": e.to_string() }),
                )
                .await?;
        }
        report.error = Some(message);
        self.store
            .finish_run(
                report.run_id,
                self.clock.now(),
                &RunSummary {
                    status: status.into(),
                    error: report.error.clone(),
                    ..RunSummary::default()
                },
            )
            .await?;
        Ok(report)
    }

    pub(super) async fn finish(&self, report: &RunReport, rules: usize) -> anyhow::Result<()> {
        let status = if report.error.is_some() {
            "auth_failed"
        } else if report.failed() {
            "failed"
        } else {
            "ok"
        };
        let notes = serde_json::json!({
            "skips": report.plan.skips,
            // Each conflict is an event when it begins; the run keeps the count.
            "conflicts": report.plan.conflicts.len(),
            "resolved": report.resolved,
        });
        self.store
            .finish_run(
                report.run_id,
                self.clock.now(),
                &RunSummary {
                    keys_seen: report.keys_seen as i64,
                    rules_evaluated: rules as i64,
                    changes: report.rows.len() as i64,
                    applied: report.count(Outcome::Applied) as i64,
                    failed: (report.count(Outcome::Failed) + report.count(Outcome::Unknown)) as i64,
                    held: report.count(Outcome::Held) as i64,
                    status: status.into(),
                    error: report.error.clone(),
                    notes,
                },
            )
            .await
    }
}
