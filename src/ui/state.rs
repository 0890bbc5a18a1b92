//! What the dashboard serves from: the shell (configuration, database,
//! clock), a runner to observe the account, and the last observation.

use super::role::RoleSource;
use crate::config::UiToken;
use crate::context::Shell;
use crate::domain::{Credits, Guardrail};
use crate::engine::outlook::Outlook;
use crate::openrouter::KeyListing;
use crate::rules::Rule;
use crate::run::Runner;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::sync::{Arc, RwLock};
use tokio::sync::watch;

/// The next scheduled run of the enabled rules after an instant, given the
/// default schedule and timezone (the service's
/// `schedule::next_run`, handed in so the dashboard need not import the
/// service that serves it).
pub type NextRun = fn(&[Rule], &str, Tz, DateTime<Utc>) -> Option<DateTime<Utc>>;

/// The account as last observed: read from the API when the dashboard
/// starts and after every run, so a page costs no API request.
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
            runs: watch::Sender::new(0),
        }
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
