//! What the dashboard serves from: the shell (configuration, database,
//! clock), a runner to observe the account, and the last observation.

use super::role::RoleSource;
use crate::config::UiToken;
use crate::context::Shell;
use crate::domain::{Credits, Guardrail};
use crate::engine::evaluate::Amounts;
use crate::engine::outlook::{ForecastRow, Outlook};
use crate::listing::keys::{ForecastIndex, Forecasts};
use crate::openrouter::KeyListing;
use crate::rules::Rule;
use crate::run::Runner;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use tokio::sync::watch;

/// The next scheduled run of the enabled rules after an instant, given the
/// default schedule and timezone (the service's
/// `schedule::next_run`, handed in so the dashboard need not import the
/// service that serves it).
pub type NextRun = fn(&[Rule], &str, Tz, DateTime<Utc>) -> Option<DateTime<Utc>>;

/// Where the dashboard's view of the account comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// It lists the keys itself, when it starts and after every run
    /// (`keywarden ui`).
    Observed,
    /// The runs of its own process hand it what they listed when they end
    /// (`keywarden run`); it lists the keys itself only after a run of
    /// another process (a manual `apply`).
    Runs,
}

/// What the dashboard does after a run: [`Dashboard::after_run`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterRun {
    /// Nothing yet: a run of this process will hand over its view.
    Wait,
    /// Tell open pages: the view is the run's own.
    Show,
    /// List the keys, read the budgets, then tell open pages.
    Observe,
}

/// The account as last observed: read from the API when the dashboard
/// starts and after every run (or handed over by the run), so a page costs
/// no API request.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// Every key as listed, with the account's workspaces.
    pub listing: KeyListing,
    /// The account's guardrails, when they were read.
    pub guardrails: Vec<Guardrail>,
    /// Where each budget's spend is heading; `None` before the first
    /// observation.
    pub outlook: Option<Outlook>,
    /// The account's credits, when they could be read.
    pub credits: Option<Credits>,
    /// When the account was observed.
    pub observed_at: Option<DateTime<Utc>>,
    /// Why the last observation failed, if it did (the keys shown are then
    /// those of the one before).
    pub error: Option<String>,
    /// The index of the outlook's rows, made by the first page that needs
    /// it ([`View::forecasts`]).
    pub forecast_index: ForecastCache,
}

impl View {
    /// The rows of the outlook (none before the first observation).
    pub fn forecast_rows(&self) -> &[ForecastRow] {
        self.outlook.as_ref().map_or(&[], |o| &o.forecasts)
    }

    /// The outlook's rows with their index, made once per view: a page
    /// borrows them instead of copying the rows.
    pub fn forecasts(&self) -> Forecasts<'_> {
        let rows = self.forecast_rows();
        let index = self
            .forecast_index
            .0
            .get_or_init(|| ForecastIndex::new(rows));
        Forecasts::new(rows, index)
    }
}

/// Where [`View::forecasts`] keeps the index of the view's rows. Empty
/// until a page needs it; a copy of the view starts empty again (its
/// outlook may be changed), so the index is always of the view it is in.
#[derive(Debug, Default)]
pub struct ForecastCache(OnceLock<ForecastIndex>);

impl Clone for ForecastCache {
    fn clone(&self) -> Self {
        ForecastCache::default()
    }
}

/// The dashboard's state, shared by every request.
pub struct Dashboard {
    /// The configuration, the database and the clock.
    pub shell: Shell,
    /// Lists keys and reads budgets for the view.
    pub runner: Runner,
    /// What this process is (§14).
    pub role: RoleSource,
    /// How to tell the next run.
    pub next_run: NextRun,
    /// The token requests must carry; `None` on loopback without one.
    pub token: Option<UiToken>,
    view: RwLock<Arc<View>>,
    /// Where the view comes from.
    feed: Feed,
    /// The run whose listing the view shows, when a run handed it over.
    view_run: Mutex<Option<i64>>,
    /// Runs of this process under way (their end brings the view).
    runs_under_way: AtomicUsize,
    /// The budget amounts runs read, each source's latest.
    amounts: Mutex<Amounts>,
    runs: watch::Sender<i64>,
}

impl Dashboard {
    /// A dashboard over `shell`, observing through `runner`, with nothing
    /// observed yet.
    pub fn new(
        shell: Shell,
        runner: Runner,
        role: RoleSource,
        next_run: NextRun,
        token: Option<UiToken>,
    ) -> Dashboard {
        Dashboard {
            shell,
            runner,
            role,
            next_run,
            token,
            view: RwLock::new(Arc::new(View::default())),
            feed: Feed::Observed,
            view_run: Mutex::new(None),
            runs_under_way: AtomicUsize::new(0),
            amounts: Mutex::new(Amounts::new()),
            runs: watch::Sender::new(0),
        }
    }

    /// The same dashboard, its view fed as `feed` says.
    pub fn fed_by(self, feed: Feed) -> Dashboard {
        Dashboard { feed, ..self }
    }

    /// What to do now that run `id` is the newest finished run of the
    /// database: observe the account (always, unless fed by runs); fed by
    /// runs, wait while a run of this process is under way or none has
    /// ended yet, show the view a run handed over when `id` is that run,
    /// and observe after another process's run.
    pub fn after_run(&self, id: i64) -> AfterRun {
        if self.feed == Feed::Observed {
            return AfterRun::Observe;
        }
        if self.runs_under_way.load(Ordering::SeqCst) > 0 {
            return AfterRun::Wait;
        }
        match self.view_run() {
            None => AfterRun::Wait,
            Some(run) if run == id => AfterRun::Show,
            Some(_) => AfterRun::Observe,
        }
    }

    /// A run of this process started (its end brings the view: see
    /// [`Dashboard::run_ended`]).
    pub fn run_started(&self) {
        self.runs_under_way.fetch_add(1, Ordering::SeqCst);
    }

    /// A run of this process ended: `seen` is its id and the view of what
    /// it saw (none when it failed before it was recorded).
    pub fn run_ended(&self, seen: Option<(i64, View)>) {
        if let Some((run, view)) = seen {
            self.set_view(view);
            *self.view_run.lock().expect("the view lock") = Some(run);
        }
        self.runs_under_way.fetch_sub(1, Ordering::SeqCst);
    }

    /// The budget amounts of every source a run of this process read: the
    /// latest of each, `read` (a run's) over the earlier runs'.
    pub fn amounts_after(&self, read: Amounts) -> Amounts {
        let mut amounts = self.amounts.lock().expect("the amounts lock");
        amounts.extend(read);
        amounts.clone()
    }

    /// The run whose listing the view shows, when a run handed it over.
    pub fn view_run(&self) -> Option<i64> {
        *self.view_run.lock().expect("the view lock")
    }

    /// The last observation.
    pub fn view(&self) -> Arc<View> {
        self.view.read().expect("the view lock").clone()
    }

    /// Replaces the observation.
    pub fn set_view(&self, view: View) {
        *self.view.write().expect("the view lock") = Arc::new(view);
    }

    /// The id of the newest finished run the pages show.
    pub fn run_id(&self) -> i64 {
        *self.runs.borrow()
    }

    /// Tells open pages that run `id` finished.
    pub fn run_finished(&self, id: i64) {
        self.runs.send_replace(id);
    }

    /// A receiver that wakes when a run finishes.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.runs.subscribe()
    }
}
