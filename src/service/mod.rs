//! The service (`keywarden run`, SPEC §7): one run loop that owns running.
//!
//! Cron jobs and calendar wake-ups only say "rule X is due"; the loop merges
//! what comes due while a run is in flight into the next run, so runs never
//! overlap. The loop also pings the systemd watchdog, reloads on `SIGHUP`,
//! notices rule changes made through the CLI (and reschedules), and stops on
//! `SIGTERM`/`SIGINT`, giving the in-flight run [`STOP_GRACE`] to finish.
//! On PostgreSQL, several replicas share the database and only the one that
//! leads ([`leadership`]) runs rules and delivers notifications.

pub mod leadership;
pub mod lock;
pub mod memory;
pub mod rules_files;
pub mod schedule;
pub mod systemd;

use crate::config::Database;
use crate::context::{Context, Shell};
use crate::domain::event::EventKind;
use crate::domain::{Field, FieldValue};
use crate::metrics::{Exposition, Health, Metrics};
use crate::notify::{Backoff, Notifier, Webhook};
use crate::rules::Rule;
use crate::run::{RunReport, RunRequest, Runner, Trigger};
use crate::store::Store;
use crate::store::leader::{Leader, Leading};
use crate::ui::{Dashboard, Feed};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use leadership::{Campaign, Role};
use lock::InstanceLock;
use schedule::Schedules;
use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use systemd::LastRun;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;

/// How long a run in flight at `SIGTERM` may take to finish; after that the
/// service exits anyway and the next run resolves the open rows.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// What the service is started with.
#[derive(Clone)]
pub struct ServiceOptions {
    /// The global flags and the clock.
    pub context: Context,
    /// Webhook retry timing.
    pub notify_backoff: Backoff,
}

/// Runs the service until `SIGTERM`/`SIGINT`. Configuration, rules files,
/// the lock and the metrics address fail before anything runs, as
/// [`UsageError`](crate::exit::UsageError)s (exit 2).
pub async fn run(opts: ServiceOptions) -> anyhow::Result<()> {
    // Runs are local tasks of this set, so they go on while the loop awaits
    // something else (a reload waiting for the database that the run is
    // writing to): a run is never left holding the write lock unpolled.
    tokio::task::LocalSet::new().run_until(serve(opts)).await
}

/// The service itself, inside [`run`]'s local set.
async fn serve(opts: ServiceOptions) -> anyhow::Result<()> {
    // Signals are caught from the start: a `SIGHUP` sent right after
    // `READY=1` (or during the start-up run) must not kill the service, as
    // its default action would.
    let signals = Signals::new()?;
    let config = opts.context.config()?;
    let database = config.database()?;
    let _lock = match &database {
        Database::Sqlite(db) => Some(InstanceLock::acquire(db)?),
        Database::Postgres(_) => None,
    };
    let shell = Shell::open(config, opts.context.clock.clone()).await?;
    let config = &shell.config;
    rules_files::sync_rules_files(&shell.store, &config.daemon.rules_files, shell.clock.now())
        .await?;
    let default_tz = config.daemon.default_timezone()?;
    let exposition = match config.metrics.listen {
        Some(_) => Exposition::Served,
        None => Exposition::Unserved,
    };
    let metrics = Arc::new(Metrics::new(shell.clock.clone(), exposition));
    let (leading, campaign) = match &database {
        Database::Sqlite(_) => (Leading::always(), None),
        Database::Postgres(_) => {
            let leading = Leading::not_yet();
            let campaign = Campaign::start(
                shell.store.clone(),
                shell.clock.clone(),
                config.daemon.standby_poll,
                leading.clone(),
            );
            (leading, Some(campaign))
        }
    };
    metrics.set_leader(leading.is_held());
    let runner = runner(&shell, &metrics, &leading)?;
    let health = Arc::new(Health::default());
    if let Some(listen) = &config.metrics.listen {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| crate::exit::UsageError::new(format!("[metrics].listen {listen}: {e}")))?;
        tracing::info!(
            "serving /metrics and /healthz on {}",
            listener.local_addr()?
        );
        let app = crate::metrics::router(metrics.clone(), health.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!("the metrics server stopped: {e}");
            }
        });
    }
    let dashboard = match &config.ui.listen {
        Some(listen) => {
            let role = crate::ui::replica_role(&leading);
            let served =
                crate::ui::serve(&shell, listen, role, schedule::next_run, Feed::Runs).await?;
            Some(served.dashboard)
        }
        None => None,
    };
    let (due_tx, due_rx) = mpsc::unbounded_channel();
    let notifications = match leading.is_held() {
        true => Some(Notifications::start(&shell, opts.notify_backoff)?),
        false => None,
    };
    let (campaign, mut roles) = campaign.unzip();
    let mut service = Service {
        notifications,
        leading,
        role: None,
        _campaign: campaign,
        opts,
        default_tz,
        shell,
        runner,
        metrics,
        health,
        dashboard,
        due_tx,
        schedules: None,
        rules: Vec::new(),
        wakeup: None,
        last_run: LastRun::Ok,
    };
    service.metrics.refresh(&service.shell.store).await?;
    tracing::info!(%database, "keywarden started");
    if let Some(roles) = &mut roles
        && let Some(first) = roles.recv().await
    {
        service.role_changed(first).await;
    }
    if service.leading.is_held() {
        service.run_now(Trigger::Startup).await;
    }
    // A database that went away since the start-up run (PostgreSQL
    // restarting) is not fatal: the loop schedules the rules at its first
    // tick that reads them (`follow_rule_changes`, no schedules yet).
    if let Err(e) = service.reschedule().await {
        tracing::error!("cannot read the rules to schedule them, trying again each second: {e:#}");
    }
    systemd::ready(&service.status_line().await);
    service.run_loop(due_rx, signals, roles).await
}

/// The next role the campaign reports; never, on SQLite (no campaign).
async fn next_role(roles: &mut Option<mpsc::UnboundedReceiver<Role>>) -> Option<Role> {
    match roles {
        Some(roles) => roles.recv().await,
        None => std::future::pending().await,
    }
}

/// The signals the loop acts on, registered once.
struct Signals {
    hangup: Signal,
    terminate: Signal,
    interrupt: Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        Ok(Signals {
            hangup: signal(SignalKind::hangup())?,
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }
}

/// The runner of the service, its API requests observed by `metrics`,
/// sending only while `leading` holds.
fn runner(shell: &Shell, metrics: &Arc<Metrics>, leading: &Leading) -> anyhow::Result<Runner> {
    Ok(shell
        .runner(shell.client()?.with_observer(metrics.api_observer()))
        .leading_by(leading.clone()))
}

/// The webhook worker and how to reach it.
struct Notifications {
    wake: Arc<Notify>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Notifications {
    fn start(shell: &Shell, backoff: Backoff) -> anyhow::Result<Notifications> {
        let notifier = Notifier::new(
            shell.store.clone(),
            Webhook::from_config(&shell.config.notify),
            backoff,
            shell.clock.clone(),
        )?;
        let wake = notifier.waker();
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(notifier.run(stopped));
        Ok(Notifications { wake, stop, task })
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

/// Rules due for the next run, merged while a run is in flight.
#[derive(Debug, Default)]
struct Pending {
    all: Option<Trigger>,
    rules: BTreeSet<String>,
}

impl Pending {
    fn take(&mut self) -> Option<RunRequest> {
        let req = match self.all.take() {
            Some(trigger) => RunRequest {
                trigger,
                due: None,
                dry_run: false,
                force: false,
            },
            None if !self.rules.is_empty() => RunRequest {
                trigger: Trigger::Schedule,
                due: Some(std::mem::take(&mut self.rules)),
                dry_run: false,
                force: false,
            },
            None => return None,
        };
        self.rules.clear();
        Some(req)
    }
}

/// Says that a run waits for another process's run (a manual `apply`).
fn waiting_for_run(pid: &str) {
    tracing::info!("waiting for the run of keywarden pid {pid} on this database to finish");
}

/// A run in flight: a local task of the service's [`LocalSet`](tokio::task::LocalSet)
/// (the runner's future is not `Send`), which makes progress whatever the
/// loop is awaiting; the loop starts the next run only once it has ended.
type RunTask = Pin<Box<dyn Future<Output = (anyhow::Result<RunReport>, Duration)>>>;

struct Service {
    opts: ServiceOptions,
    /// The configuration in force, the database and the clock.
    shell: Shell,
    default_tz: Tz,
    runner: Runner,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    /// The dashboard served by this process, which its runs feed.
    dashboard: Option<Arc<Dashboard>>,
    /// The webhook worker: only the leader delivers.
    notifications: Option<Notifications>,
    /// Whether this process leads (always on SQLite).
    leading: Leading,
    /// The role the campaign last reported; `None` on SQLite.
    role: Option<Role>,
    /// The campaign for the lead on PostgreSQL; ends when dropped.
    _campaign: Option<Campaign>,
    due_tx: mpsc::UnboundedSender<String>,
    schedules: Option<Schedules>,
    /// The enabled rules the schedules were built from.
    rules: Vec<Rule>,
    /// The next calendar boundary and the rules it makes due.
    wakeup: Option<(DateTime<Utc>, BTreeSet<String>)>,
    last_run: LastRun,
}

impl Service {
    fn spawn_run(&self, req: RunRequest) -> RunTask {
        let runner = self.runner.clone();
        let store = self.shell.store.clone();
        tracing::info!(trigger = req.trigger.as_str(), rules = ?req.due, "run starting");
        if let Some(dashboard) = &self.dashboard {
            dashboard.run_started();
        }
        let task = tokio::task::spawn_local(async move {
            let started = Instant::now();
            let result = async {
                // On PostgreSQL the leadership lock is the run's turn.
                let _turn = match store.sqlite_path() {
                    Some(_) => Some(store.run_turn(waiting_for_run).await?),
                    None => None,
                };
                runner.run(&req).await
            }
            .await;
            (result, started.elapsed())
        });
        Box::pin(async move {
            task.await.unwrap_or_else(|e| {
                (
                    Err(anyhow::anyhow!("the run ended abnormally: {e}")),
                    Duration::ZERO,
                )
            })
        })
    }

    /// Runs every rule now and waits for it (start-up).
    async fn run_now(&mut self, trigger: Trigger) {
        let task = self.spawn_run(RunRequest {
            trigger,
            due: None,
            dry_run: false,
            force: false,
        });
        self.finished(task.await).await;
    }

    async fn run_loop(
        mut self,
        mut due_rx: mpsc::UnboundedReceiver<String>,
        mut signals: Signals,
        mut roles: Option<mpsc::UnboundedReceiver<Role>>,
    ) -> anyhow::Result<()> {
        let watchdog = systemd::watchdog_interval();
        let period = watchdog.map_or(Duration::from_secs(1), |w| w.min(Duration::from_secs(1)));
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut pending = Pending::default();
        let mut in_flight: Option<RunTask> = None;
        loop {
            tokio::select! {
                Some(rule) = due_rx.recv() => {
                    pending.rules.insert(rule);
                }
                Some(role) = next_role(&mut roles) => {
                    if self.role_changed(role).await {
                        pending.all = Some(Trigger::Takeover);
                    }
                }
                _ = signals.hangup.recv() => {
                    if self.reload().await {
                        pending.all = Some(Trigger::Reload);
                    }
                }
                _ = signals.terminate.recv() => break,
                _ = signals.interrupt.recv() => break,
                done = async { in_flight.as_mut().expect("guarded").await }, if in_flight.is_some() => {
                    in_flight = None;
                    self.finished(done).await;
                }
                _ = tick.tick() => {
                    let now = self.shell.clock.now();
                    self.health.tick(now);
                    if watchdog.is_some() {
                        systemd::watchdog();
                    }
                    if let Some((at, rules)) = self.wakeup.take() {
                        if at <= now {
                            tracing::info!(rules = ?rules, "calendar boundary");
                            pending.rules.extend(rules);
                            self.wakeup = schedule::next_wakeup(&self.rules, self.default_tz, now);
                        } else {
                            self.wakeup = Some((at, rules));
                        }
                    }
                    if let Err(e) = self.follow_rule_changes().await {
                        tracing::error!("cannot read the rules: {e:#}");
                    }
                }
            }
            if in_flight.is_none()
                && self.leading.is_held()
                && let Some(req) = pending.take()
            {
                in_flight = Some(self.spawn_run(req));
            }
        }
        self.shutdown(in_flight).await;
        Ok(())
    }

    /// `STOPPING=1`, stop scheduling, give the run in flight [`STOP_GRACE`].
    async fn shutdown(mut self, in_flight: Option<RunTask>) {
        systemd::stopping();
        tracing::info!("stopping");
        if let Some(schedules) = self.schedules.take() {
            schedules.stop().await;
        }
        if let Some(task) = in_flight {
            match tokio::time::timeout(STOP_GRACE, task).await {
                Ok(done) => self.finished(done).await,
                Err(_) => tracing::warn!(
                    "the run in flight did not finish within {} s; its open changes are resolved by the next run",
                    STOP_GRACE.as_secs()
                ),
            }
        }
        if let Some(notifications) = self.notifications.take() {
            notifications.stop().await;
        }
        tracing::info!("stopped");
    }

    /// Reloads the configuration and the rules files; a broken one is
    /// reported (log, `reload_failed` event and notification) and what was
    /// in force stays. `true` when the reload took effect.
    async fn reload(&mut self) -> bool {
        systemd::reloading();
        tracing::info!("reloading the configuration and rules files");
        let result = self.try_reload().await;
        if let Err(e) = &result {
            let message = format!("{e:#}");
            tracing::error!(
                "reload failed, the previous configuration and rules stay in force:\n{message}"
            );
            let detail = serde_json::json!({ "error": message });
            if let Err(e) = self
                .shell
                .store
                .record_service_event(self.shell.clock.now(), EventKind::ReloadFailed, &detail)
                .await
            {
                tracing::error!("cannot record the failed reload: {e:#}");
            }
            self.enqueue().await;
        }
        systemd::ready(&self.status_line().await);
        result.is_ok()
    }

    async fn try_reload(&mut self) -> anyhow::Result<()> {
        let config = self.opts.context.config()?;
        if config.database_path() != self.shell.config.database_path()
            || config.database.url != self.shell.config.database.url
        {
            anyhow::bail!("the database cannot change on reload (restart the service to move it)");
        }
        let default_tz = config.daemon.default_timezone()?;
        let shell = Shell {
            config: Arc::new(config),
            ..self.shell.clone()
        };
        let runner = runner(&shell, &self.metrics, &self.leading)?;
        rules_files::sync_rules_files(
            &shell.store,
            &shell.config.daemon.rules_files,
            shell.clock.now(),
        )
        .await?;
        if self.notifications.is_some() {
            let notifications = Notifications::start(&shell, self.opts.notify_backoff)?;
            if let Some(old) = self.notifications.replace(notifications) {
                old.stop().await;
            }
        }
        self.shell = shell;
        self.default_tz = default_tz;
        self.runner = runner;
        self.rules.clear(); // reschedule at the next tick
        Ok(())
    }

    /// Rebuilds the schedules when the enabled rules changed (an import,
    /// `rules enable`, a reload).
    async fn follow_rule_changes(&mut self) -> anyhow::Result<()> {
        let rules = enabled_rules(&self.shell.store).await?;
        if rules != self.rules || self.schedules.is_none() {
            self.reschedule().await?;
        }
        Ok(())
    }

    async fn reschedule(&mut self) -> anyhow::Result<()> {
        let rules = enabled_rules(&self.shell.store).await?;
        if let Some(old) = self.schedules.take() {
            old.stop().await;
        }
        let daemon = &self.shell.config.daemon;
        self.schedules = Some(
            Schedules::start(
                &rules,
                &daemon.schedule,
                self.default_tz,
                self.due_tx.clone(),
            )
            .await?,
        );
        let now = self.shell.clock.now();
        self.wakeup = schedule::next_wakeup(&rules, self.default_tz, now);
        if let Some(interval) =
            schedule::shortest_interval(&rules, &daemon.schedule, self.default_tz, now)
        {
            self.health.set_interval(interval);
        }
        tracing::debug!(rules = rules.len(), "schedules built");
        self.rules = rules;
        Ok(())
    }

    /// What follows a run: notifications, metrics, status.
    async fn finished(&mut self, done: (anyhow::Result<RunReport>, Duration)) {
        let now = self.shell.clock.now();
        match done {
            (Ok(report), took) => {
                self.last_run = if report.error.is_some() {
                    LastRun::Error
                } else if report.failed() {
                    LastRun::Failed
                } else {
                    LastRun::Ok
                };
                match &report.error {
                    Some(e) => tracing::error!(run = report.run_id, "run stopped: {e}"),
                    None => tracing::info!(
                        run = report.run_id,
                        keys = report.keys_seen,
                        changes = report.rows.len(),
                        guard_tripped = report.guard_tripped,
                        "run finished in {:.1} s",
                        took.as_secs_f64()
                    ),
                }
                self.metrics.observe_run(took, &report.plan.budgets);
                self.metrics.observe_outlook(&report.outlook);
                self.show(Some(report)).await;
            }
            (Err(e), _) => {
                self.last_run = LastRun::Error;
                tracing::error!("run failed: {e:#}");
                self.show(None).await;
            }
        }
        self.health.run_finished(now);
        self.enqueue().await;
        if let Err(e) = self.metrics.refresh(&self.shell.store).await {
            tracing::error!("cannot update the metrics: {e:#}");
        }
        systemd::status(&self.status_line().await);
        memory::release();
    }

    /// Hands the dashboard what the run of `report` saw (`None`: the run
    /// failed before it was recorded).
    async fn show(&self, report: Option<RunReport>) {
        if let Some(dashboard) = &self.dashboard {
            crate::ui::run_ended(dashboard, report).await;
        }
    }

    /// Enqueues what is new in the history and wakes the webhook worker
    /// (the leader's job: a standby leaves it to the leader).
    async fn enqueue(&self) {
        let Some(notifications) = &self.notifications else {
            return;
        };
        match crate::notify::enqueue(&self.shell.store, self.shell.clock.now()).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::debug!(items = n, "notifications enqueued");
                notifications.wake.notify_one();
            }
            Err(e) => tracing::error!("cannot enqueue notifications: {e:#}"),
        }
    }

    /// `next run 10:05 · 3 keys held disabled · last run ok`.
    async fn status_line(&self) -> String {
        let now = self.shell.clock.now();
        let next = schedule::next_run(
            &self.rules,
            &self.shell.config.daemon.schedule,
            self.default_tz,
            now,
        );
        let held = match self.shell.store.claims().await {
            Ok(claims) => claims
                .iter()
                .filter(|c| c.field == Field::Disabled && c.value == FieldValue::Disabled(true))
                .map(|c| c.key_hash.as_str())
                .collect::<BTreeSet<_>>()
                .len(),
            Err(_) => 0,
        };
        let line = systemd::status_line(next, held, &self.last_run, self.default_tz, now);
        match &self.role {
            None => line,
            Some(role) => format!("{role} · {line}"),
        }
    }

    /// Acts on a change of role: the metrics, `/healthz`, the webhook
    /// worker, the status, and on taking the lead a `leader_changed` event.
    /// `true` when this process has just taken the lead (every rule is then
    /// evaluated at once).
    async fn role_changed(&mut self, role: Role) -> bool {
        let leads = matches!(role, Role::Leads { .. });
        match &role {
            Role::Leads { me, before } => {
                tracing::info!(before = ?before.as_ref().map(ToString::to_string), "leading now ({me})");
                self.metrics.took_the_lead();
                self.record_leader_changed(me, before.as_ref()).await;
            }
            Role::Standby { .. } => tracing::info!("{role}"),
            Role::Lost { why } => {
                tracing::error!("lost the lead, no new request is sent: {why}");
            }
        }
        self.metrics.set_leader(leads);
        self.health.set_standby(!leads);
        match (leads, self.notifications.is_some()) {
            (true, false) => match Notifications::start(&self.shell, self.opts.notify_backoff) {
                Ok(n) => self.notifications = Some(n),
                Err(e) => tracing::error!("cannot start delivering notifications: {e:#}"),
            },
            (false, true) => {
                if let Some(n) = self.notifications.take() {
                    n.stop().await;
                }
            }
            _ => {}
        }
        self.role = Some(role);
        systemd::status(&self.status_line().await);
        leads
    }

    /// Records (and notifies) that `me` leads now, after `before`.
    async fn record_leader_changed(&self, me: &Leader, before: Option<&Leader>) {
        let detail = leadership::leader_changed(me, before);
        if let Err(e) = self
            .shell
            .store
            .record_service_event(self.shell.clock.now(), EventKind::LeaderChanged, &detail)
            .await
        {
            tracing::error!("cannot record the change of leader: {e:#}");
        }
    }
}

async fn enabled_rules(store: &Store) -> anyhow::Result<Vec<Rule>> {
    Ok(store
        .rules()
        .await?
        .into_iter()
        .map(|s| s.rule)
        .filter(|r| r.enabled)
        .collect())
}
