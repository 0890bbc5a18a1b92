//! The shell around the core: gathers a run's inputs (keys, credits, budget
//! sources, claims, exemptions), plans, records the intent, sends the
//! PATCHes and records their outcomes (SPEC §4.1, §4.5).

use super::evaluate::Amounts;
use super::plan::{Change, ChangeKind, Outcome, Plan};
use super::reconcile::{self, Guard, Inputs, Outcomes};
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::Credits;
use crate::domain::{Field, Key};
use crate::openrouter::model::KeyPatch;
use crate::openrouter::{ApiError, Client};
use crate::rules::model::{Amount, Rule};
use crate::rules::source::{self, Resolution};
use crate::store::{RunSummary, Store};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// What started a run (stored on the run row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A rule's schedule or a calendar boundary.
    Schedule,
    /// The service started.
    Startup,
    /// The service was told to reload.
    Reload,
    /// `keywarden apply`.
    Manual,
}

impl Trigger {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Startup => "startup",
            Trigger::Reload => "reload",
            Trigger::Manual => "manual",
        }
    }
}

/// What a run is asked to do.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// Why it runs.
    pub trigger: Trigger,
    /// Rules to evaluate now; `None` = every enabled rule.
    pub due: Option<BTreeSet<String>>,
    /// Record with outcome `dry_run`, send nothing.
    pub dry_run: bool,
    /// Apply what the guard would hold, once.
    pub force: bool,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// The run's id.
    pub run_id: i64,
    /// The plan it carried out.
    pub plan: Plan,
    /// Each change row: its id, the change, and its final outcome.
    pub rows: Vec<(i64, Change, Outcome)>,
    /// Keys listed.
    pub keys_seen: usize,
    /// Whether the guard held changes back.
    pub guard_tripped: bool,
    /// Set when the run stopped early (credential refused, API unreachable).
    pub error: Option<String>,
    /// Open rows of earlier runs resolved by this one: (id, outcome).
    pub resolved: Vec<(i64, Outcome)>,
}

impl RunReport {
    /// Rows that ended with `outcome`.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.rows.iter().filter(|(_, _, o)| *o == outcome).count()
    }

    /// SPEC §6: exit 1 when a change failed or ended unknown, the API failed,
    /// or the guard held changes back.
    pub fn failed(&self) -> bool {
        self.error.is_some()
            || self.guard_tripped
            || self.count(Outcome::Failed) > 0
            || self.count(Outcome::Unknown) > 0
    }
}

/// A plan computed without recording anything (`keywarden plan`).
#[derive(Debug, Clone)]
pub struct Preview {
    /// The evaluation instant.
    pub at: DateTime<Utc>,
    /// Keys listed.
    pub keys_seen: usize,
    /// The plan and holding sets.
    pub outcomes: Outcomes,
}

/// Carries out runs against one account and one database.
#[derive(Clone)]
pub struct Runner {
    /// The database.
    pub store: Store,
    /// The API client.
    pub client: Client,
    /// The configuration.
    pub config: Arc<Config>,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
    http: reqwest::Client,
}

/// A failure that stops a run before any change is planned; displayed with
/// what to do about it ([`ApiError::explain`]).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The API refused the credential (401/403).
    #[error("{}", .0.explain())]
    AuthFailed(ApiError),
    /// The API failed otherwise.
    #[error("{}", .0.explain())]
    Api(ApiError),
}

struct Gathered {
    keys: Vec<Key>,
    credits: Option<Credits>,
    amounts: Amounts,
    rules: Vec<Rule>,
}

impl Runner {
    /// A runner over `store` and `client`.
    pub fn new(store: Store, client: Client, config: Arc<Config>, clock: Arc<dyn Clock>) -> Runner {
        Runner {
            store,
            client,
            config,
            clock,
            http: reqwest::Client::builder()
                .user_agent(concat!("keywarden/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("an HTTP client with default settings"),
        }
    }

    fn default_tz(&self) -> anyhow::Result<Tz> {
        let name = &self.config.daemon.timezone;
        name.parse::<Tz>()
            .map_err(|e| anyhow::anyhow!("[daemon].timezone {name:?}: {e}"))
    }

    fn guard(&self, force: bool) -> Guard {
        Guard {
            max_changes_per_run: self.config.daemon.max_changes_per_run,
            max_disable_fraction: self.config.daemon.max_disable_fraction,
            force,
        }
    }

    /// Lists keys, reads credits when needed and the due rules' budget sources.
    /// `record`: store sources' values and errors (not for `plan`).
    async fn gather(
        &self,
        due: Option<&BTreeSet<String>>,
        run_id: Option<i64>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Result<Gathered, RunError>> {
        let rules: Vec<Rule> = self
            .store
            .rules()
            .await?
            .into_iter()
            .map(|s| s.rule)
            .filter(|r| r.enabled)
            .collect();
        let keys = match self.client.list_keys().await {
            Ok(keys) => keys,
            Err(e) if matches!(e, ApiError::AuthFailed { .. }) => {
                return Ok(Err(RunError::AuthFailed(e)));
            }
            Err(e) => return Ok(Err(RunError::Api(e))),
        };
        let credits = if rules.iter().any(|r| r.when.credits_below.is_some()) {
            match self.client.credits().await {
                Ok(c) => Some(c),
                Err(e) if matches!(e, ApiError::AuthFailed { .. }) => {
                    return Ok(Err(RunError::AuthFailed(e)));
                }
                Err(e) => {
                    tracing::warn!("cannot read the account's credits: {e}");
                    None
                }
            }
        } else {
            None
        };
        let mut amounts = Amounts::new();
        for rule in rules
            .iter()
            .filter(|r| due.is_none_or(|d| d.contains(&r.name)))
        {
            let sources = [
                rule.when.budget.as_ref().map(|b| &b.usd),
                rule.when.credits_below.as_ref(),
            ];
            for amount in sources.into_iter().flatten() {
                let Amount::Source(src) = amount else {
                    continue;
                };
                let id = src.id();
                if amounts.contains_key(&id) {
                    continue;
                }
                let fresh = source::read(src, &self.http).await;
                let stored = self.store.source_value(&id).await?;
                let max_age = std::time::Duration::from_secs(src.max_age_secs);
                let value = match source::resolve(fresh, stored, max_age, now) {
                    Resolution::Fresh(v) => {
                        if run_id.is_some() {
                            self.store.save_source_value(&id, v, now).await?;
                        }
                        Some(v)
                    }
                    Resolution::Stale { value, error } => {
                        self.source_failed(
                            run_id,
                            &rule.name,
                            &id,
                            &error.to_string(),
                            Some(value),
                            now,
                        )
                        .await?;
                        Some(value)
                    }
                    Resolution::Unavailable { error } => {
                        self.source_failed(run_id, &rule.name, &id, &error.to_string(), None, now)
                            .await?;
                        None
                    }
                };
                amounts.insert(id, value);
            }
        }
        Ok(Ok(Gathered {
            keys,
            credits,
            amounts,
            rules,
        }))
    }

    async fn source_failed(
        &self,
        run_id: Option<i64>,
        rule: &str,
        source_id: &str,
        error: &str,
        used: Option<f64>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let Some(run_id) = run_id else {
            tracing::warn!(rule, source = source_id, "budget source failed: {error}");
            return Ok(());
        };
        // Recorded (and so notified) once per outage; every run notes it in its skips.
        if self.store.save_source_error(source_id, error, now).await? {
            tracing::warn!(rule, source = source_id, "budget source failed: {error}");
            let detail = serde_json::json!({
                "source": source_id, "error": error, "stored_value_used": used, "new_outage": true,
            });
            self.store
                .record_event(Some(run_id), now, "source_error", Some(rule), None, &detail)
                .await?;
        } else {
            tracing::debug!(
                rule,
                source = source_id,
                "budget source still failing: {error}"
            );
        }
        Ok(())
    }

    /// What a run would change at `at` (default now), recording nothing.
    pub async fn preview(
        &self,
        due: Option<&BTreeSet<String>>,
        at: Option<DateTime<Utc>>,
    ) -> anyhow::Result<Result<Preview, RunError>> {
        let now = at.unwrap_or_else(|| self.clock.now());
        let gathered = match self.gather(due, None, now).await? {
            Ok(g) => g,
            Err(e) => return Ok(Err(e)),
        };
        let outcomes = self.plan_with(&gathered, due, now, false).await?;
        Ok(Ok(Preview {
            at: now,
            keys_seen: gathered.keys.len(),
            outcomes,
        }))
    }

    async fn plan_with(
        &self,
        g: &Gathered,
        due: Option<&BTreeSet<String>>,
        now: DateTime<Utc>,
        force: bool,
    ) -> anyhow::Result<Outcomes> {
        let claims = self.store.claims().await?;
        let exemptions = self.store.exemptions().await?;
        let standing: HashMap<String, BTreeSet<String>> = self
            .store
            .rule_states()
            .await?
            .into_iter()
            .map(|(rule, (_, holding))| (rule, holding))
            .collect();
        reconcile::plan(&Inputs {
            rules: &g.rules,
            due,
            standing: &standing,
            keys: &g.keys,
            claims: &claims,
            exemptions: &exemptions,
            amounts: &g.amounts,
            credits: g.credits.as_ref(),
            now,
            default_tz: self.default_tz()?,
            guard: self.guard(force),
        })
    }

    /// One whole run: list, resolve open rows, evaluate, record, send, record.
    pub async fn run(&self, req: &RunRequest) -> anyhow::Result<RunReport> {
        let now = self.clock.now();
        let dry_run = req.dry_run || self.config.daemon.dry_run;
        let run_id = self
            .store
            .start_run(req.trigger.as_str(), now, dry_run)
            .await?;
        let mut report = RunReport {
            run_id,
            ..RunReport::default()
        };
        let due = req.due.as_ref();
        let gathered = match self.gather(due, Some(run_id), now).await? {
            Ok(g) => g,
            Err(e) => return self.stop(report, e, now).await,
        };
        report.keys_seen = gathered.keys.len();
        report.resolved = self.resolve_open(&gathered.keys, run_id).await?;
        let outcomes = self.plan_with(&gathered, due, now, req.force).await?;
        report.guard_tripped = outcomes.guard_tripped;
        for (rule, holding) in &outcomes.holding {
            let hashes = holding.iter().map(|&i| gathered.keys[i].hash.as_str());
            self.store.save_rule_state(rule, now, hashes).await?;
        }
        self.record_notes(run_id, now, &outcomes, &gathered.keys)
            .await?;

        let mut plan = outcomes.plan;
        for c in plan.changes.iter_mut() {
            // A vanished key has no name in the listing: history remembers it.
            if c.kind == ChangeKind::Deleted
                && let Some(name) = self.store.key_name(&c.key_hash).await?
            {
                c.key_name = name;
            }
        }
        let initial = dry_run.then_some(Outcome::DryRun);
        let ids = self
            .store
            .record_changes(Some(run_id), now, &plan.changes, initial)
            .await?;
        let mut finals: Vec<Outcome> = plan
            .changes
            .iter()
            .map(|c| initial.or(c.held).unwrap_or(Outcome::Pending))
            .collect();
        for c in plan
            .changes
            .iter()
            .filter(|c| c.held == Some(Outcome::Skipped))
        {
            self.mark_exemption(c, now).await?;
        }
        if !dry_run {
            self.send(&plan, &ids, &mut finals, &mut report).await?;
        }
        report.rows = ids
            .into_iter()
            .zip(plan.changes.iter().cloned())
            .zip(finals)
            .map(|((id, c), o)| (id, c, o))
            .collect();
        report.plan = plan;
        self.store
            .record_snapshots(now, &gathered.keys, self.config.history.snapshot_interval)
            .await?;
        self.finish(&report, gathered.rules.len()).await?;
        Ok(report)
    }

    async fn mark_exemption(&self, change: &Change, now: DateTime<Utc>) -> anyhow::Result<()> {
        for e in self.store.exemptions().await? {
            if e.held_at.is_none() && e.covers(&change.key_hash, &change.rule, now) {
                self.store.mark_exemption_held(e.id, now).await?;
            }
        }
        Ok(())
    }

    /// Records the budget readings (a rule's when the run changes a key
    /// under it, else at most once per `[history].snapshot_interval`), the
    /// conflicts that begin (once: a conflict still holding from an earlier
    /// run is not recorded again) and a guard trip as events.
    async fn record_notes(
        &self,
        run_id: i64,
        now: DateTime<Utc>,
        o: &Outcomes,
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
                .filter(|c| c.held == Some(Outcome::Held))
                .map(|c| c.key_hash.as_str())
                .collect();
            let detail = serde_json::json!({
                "held_changes": held.len(),
                "max_changes_per_run": self.config.daemon.max_changes_per_run,
                "max_disable_fraction": self.config.daemon.max_disable_fraction,
            });
            self.store
                .record_event(Some(run_id), now, "guard_tripped", None, None, &detail)
                .await?;
        }
        Ok(())
    }

    /// Sends one PATCH per key (bounded by the client's concurrency and
    /// rate limits), and completes the rows with what happened.
    async fn send(
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
        let patches: BTreeMap<String, KeyPatch> = plan.patches().into_iter().collect();
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
                    "auth_failed",
                    None,
                    None,
                    &serde_json::json!({ "error": err.to_string() }),
                )
                .await?;
            report.error = Some(err.explain());
        }
        Ok(())
    }

    /// Resolves rows left `pending` or `unknown` by an earlier run, by reading
    /// the key: `applied` when it holds the values, else `failed` (the plan
    /// that follows retries it).
    async fn resolve_open(&self, keys: &[Key], run_id: i64) -> anyhow::Result<Vec<(i64, Outcome)>> {
        let by_hash: HashMap<&str, &Key> = keys.iter().map(|k| (k.hash.as_str(), k)).collect();
        let mut resolved = Vec::new();
        for row in self.store.open_changes().await? {
            let outcome = match by_hash.get(row.key_hash.as_str()) {
                Some(key) if row.fields.iter().all(|(f, fc)| key.get(*f) == fc.to) => {
                    Outcome::Applied
                }
                _ => Outcome::Failed,
            };
            let error = (outcome == Outcome::Failed)
                .then(|| format!("found not applied by run {run_id}; planned again"));
            self.store
                .complete_changes(
                    &[row.id],
                    outcome,
                    row.http_status,
                    row.attempts,
                    error.as_deref(),
                )
                .await?;
            resolved.push((row.id, outcome));
        }
        Ok(resolved)
    }

    async fn stop(
        &self,
        mut report: RunReport,
        err: RunError,
        now: DateTime<Utc>,
    ) -> anyhow::Result<RunReport> {
        let (status, message) = match &err {
            RunError::AuthFailed(_) => ("auth_failed", err.to_string()),
            RunError::Api(_) => ("error", err.to_string()),
        };
        if let RunError::AuthFailed(e) = &err {
            self.store
                .record_event(
                    Some(report.run_id),
                    now,
                    "auth_failed",
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

    async fn finish(&self, report: &RunReport, rules: usize) -> anyhow::Result<()> {
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
            "resolved": report.resolved.iter().map(|(id, o)| serde_json::json!({"id": id, "outcome": o})).collect::<Vec<_>>(),
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
