//! The shell of one run (SPEC §4.1, §4.5): gathers its inputs (keys,
//! credits, budget sources, claims, exemptions), asks the core for the plan,
//! records the intent, sends the PATCHes and records their outcomes and
//! the warnings (`warn_at`, `warn_before`). Used by
//! `apply`, `run`, `demo` and the service.

mod gather;
mod outlook;
pub use outlook::{Observation, RunOutlook, Seen};
mod record;
mod send;
pub mod sent;
pub mod sources;
mod unlisted;
mod warnings;

use crate::clock::Clock;
use crate::config::Config;
use crate::engine::reconcile::{Guard, Inputs, Planner, Reconciliation};
use crate::engine::warnings::ForecastWarning;
use crate::engine::{Change, ChangeKind, Hold, Outcome, Plan};
use crate::openrouter::{ApiError, Client};
use crate::store::Store;
use crate::store::leader::Leading;
use chrono::{DateTime, Utc};
use gather::Gathered;
pub use send::send_change;
use std::collections::{BTreeSet, HashMap};
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
    /// This replica took the lead (SPEC §14).
    Takeover,
}

impl Trigger {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Startup => "startup",
            Trigger::Reload => "reload",
            Trigger::Manual => "manual",
            Trigger::Takeover => "takeover",
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
    /// Each change row, with its final outcome.
    pub rows: Vec<RecordedChange>,
    /// Keys listed.
    pub keys_seen: usize,
    /// Whether the guard held changes back.
    pub guard_tripped: bool,
    /// Set when the run stopped early (credential refused, API unreachable).
    pub error: Option<String>,
    /// Open rows of earlier runs resolved by this one.
    pub resolved: Vec<Resolved>,
    /// Where the spend of the evaluated rules is heading (SPEC §11).
    pub outlook: RunOutlook,
    /// The early warnings (`budget_forecast`) this run recorded.
    pub forecast_warnings: Vec<ForecastWarning>,
    /// What the run saw of the account, for the dashboard; `None` when it
    /// stopped before listing the keys.
    pub seen: Option<Seen>,
}

/// One change row of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedChange {
    /// The row's id.
    pub id: i64,
    /// The change.
    pub change: Change,
    /// Its final outcome in this run.
    pub outcome: Outcome,
}

/// A row left open by an earlier run, settled by this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Resolved {
    /// The row's id.
    pub id: i64,
    /// Its outcome now.
    pub outcome: Outcome,
}

impl RunReport {
    /// Rows that ended with `outcome`.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.rows.iter().filter(|r| r.outcome == outcome).count()
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
    pub reconciliation: Reconciliation,
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
    /// Whether this process leads (SPEC §14): checked before each batch of
    /// requests; always on SQLite.
    pub leading: Leading,
    http: reqwest::Client,
    /// Plans this runner's runs, keeping what does not change between them
    /// (the keys each rule selects).
    planner: Arc<std::sync::Mutex<Planner>>,
}

/// A failure that stops a run before any change is planned. The API's are
/// displayed with what to do about them ([`ApiError::explain`]).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The API refused the credential (401/403).
    #[error("{}", .0.explain())]
    AuthFailed(ApiError),
    /// The API failed otherwise.
    #[error("{}", .0.explain())]
    Api(ApiError),
    /// keywarden itself failed (the database, the configuration).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Runner {
    /// A runner over `store` and `client`.
    pub fn new(store: Store, client: Client, config: Arc<Config>, clock: Arc<dyn Clock>) -> Runner {
        Runner {
            store,
            client,
            config,
            clock,
            leading: Leading::always(),
            http: reqwest::Client::builder()
                .user_agent(concat!("keywarden/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("an HTTP client with default settings"),
            planner: Arc::default(),
        }
    }

    /// This runner, sending only while `leading` holds.
    pub fn leading_by(self, leading: Leading) -> Runner {
        Runner { leading, ..self }
    }

    fn guard(&self, force: bool) -> Guard {
        Guard {
            max_changes_per_run: self.config.daemon.max_changes_per_run,
            max_disable_fraction: self.config.daemon.max_disable_fraction,
            force,
        }
    }

    /// What a run would change at `at` (default now), recording nothing.
    pub async fn preview(
        &self,
        due: Option<&BTreeSet<String>>,
        at: Option<DateTime<Utc>>,
    ) -> Result<Preview, RunError> {
        let now = at.unwrap_or_else(|| self.clock.now());
        let gathered = self.gather(due, None, now).await?;
        let reconciliation = self.plan_with(&gathered, due, now, false).await?;
        Ok(Preview {
            at: now,
            keys_seen: gathered.keys.len(),
            reconciliation,
        })
    }

    async fn plan_with(
        &self,
        g: &Gathered,
        due: Option<&BTreeSet<String>>,
        now: DateTime<Utc>,
        force: bool,
    ) -> anyhow::Result<Reconciliation> {
        // Three reads at once, on connections of the pool.
        let (claims, exemptions, states) = tokio::try_join!(
            self.store.claims(),
            self.store.exemptions(),
            self.store.rule_states()
        )?;
        let standing: HashMap<String, BTreeSet<String>> = states
            .into_iter()
            .map(|(rule, (_, holding))| (rule, holding))
            .collect();
        let mut planner = self.planner.lock().unwrap_or_else(|e| e.into_inner());
        planner.plan(&Inputs {
            rules: &g.rules,
            due,
            standing: &standing,
            keys: &g.keys,
            workspaces: &g.workspaces,
            claims: &claims,
            exemptions: &exemptions,
            amounts: &g.amounts,
            credits: g.credits.as_ref(),
            series: &g.series,
            guardrails: &g.guardrails,
            now,
            default_tz: self.config.daemon.default_timezone()?,
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
        let gathered = match self.gather(due, Some(run_id), now).await {
            Ok(g) => g,
            Err(RunError::Internal(e)) => return Err(e),
            Err(e) => return self.stop(report, e, now).await,
        };
        report.keys_seen = gathered.keys.len();
        report.resolved = self
            .resolve_open(&gathered.keys, &gathered.guardrails, run_id)
            .await?;
        let reconciliation = self.plan_with(&gathered, due, now, req.force).await?;
        report.guard_tripped = reconciliation.guard_tripped;
        for (rule, holding) in &reconciliation.holding {
            let hashes = holding.iter().map(|&i| gathered.keys[i].hash.as_str());
            self.store.save_rule_state(rule, now, hashes).await?;
        }
        self.record_notes(run_id, now, &reconciliation, &gathered.keys)
            .await?;

        let mut plan = reconciliation.plan;
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
            .map(|c| {
                initial
                    .or(c.held.as_ref().map(Hold::outcome))
                    .unwrap_or(Outcome::Pending)
            })
            .collect();
        for id in plan.exemptions_first_held() {
            self.store.mark_exemption_held(id, now).await?;
        }
        // The figures, the warnings and the usage snapshots do not depend on
        // the answers: they are made and recorded while the requests are out.
        let sending = async {
            if dry_run {
                return Ok(None);
            }
            self.send(run_id, &plan, &ids, &mut finals).await
        };
        let noting = async {
            let outlook = outlook::run_outlook(&gathered, due, now);
            let warnings = self
                .record_warnings(run_id, now, &gathered, &plan, &outlook)
                .await?;
            self.store
                .record_snapshots_for(
                    now,
                    &gathered.keys,
                    self.config.history.snapshot_interval,
                    &gathered.forecast_keys,
                )
                .await?;
            Ok::<_, anyhow::Error>((outlook, warnings))
        };
        let (stopped, noted) = tokio::join!(sending, noting);
        report.error = stopped?;
        (report.outlook, report.forecast_warnings) = noted?;
        report.rows = ids
            .into_iter()
            .zip(plan.changes.iter().cloned())
            .zip(finals)
            .map(|((id, change), outcome)| RecordedChange {
                id,
                change,
                outcome,
            })
            .collect();
        report.plan = plan;
        let rules_evaluated = gathered.rules.len();
        report.seen = Some(Seen::of(gathered, now));
        self.finish(&report, rules_evaluated).await?;
        Ok(report)
    }
}
