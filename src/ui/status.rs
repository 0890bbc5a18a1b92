//! The Overview's figures and `/api/status`: what this process is, the
//! last and next run, open outages, credits, keys by state and the changes
//! the guard held.

use super::role::Role;
use super::state::Dashboard;
use crate::domain::timestamp;
use crate::domain::{Credits, Field, FieldValue};
use crate::listing::rules::stored_rules;
use crate::store::ChangeRow;
use crate::store::dashboard::{OpenOutage, RunLine};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// How many changes the Overview lists as held by the guard.
const HELD_SHOWN: i64 = 20;

/// `/api/status`: the Overview's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// What this process is.
    pub role: Role,
    /// The newest run, if any.
    pub last_run: Option<RunLine>,
    /// The next scheduled run, if any.
    #[serde(serialize_with = "timestamp::serialize_opt")]
    pub next_run: Option<DateTime<Utc>>,
    /// What is failing now.
    pub outages: Vec<OpenOutage>,
    /// The account's credits, when they could be read.
    pub credits: Option<Credits>,
    /// The keys by state.
    pub keys: KeyCounts,
    /// The changes the blast-radius guard held in the newest run that
    /// held any (at most [`HELD_SHOWN`]).
    pub held_changes: Vec<ChangeRow>,
    /// When the account was last observed.
    #[serde(serialize_with = "timestamp::serialize_opt")]
    pub observed_at: Option<DateTime<Utc>>,
    /// Why the last observation failed, if it did.
    pub observation_error: Option<String>,
}

/// The keys by state.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KeyCounts {
    /// Every key listed.
    pub total: usize,
    /// Enabled.
    pub enabled: usize,
    /// Disabled, by anyone.
    pub disabled: usize,
    /// Disabled by keywarden (a claim on `disabled`).
    pub held_disabled: usize,
}

/// Gathers the Overview's figures.
pub async fn status(dashboard: &Dashboard) -> anyhow::Result<Status> {
    let store = &dashboard.shell.store;
    let view = dashboard.view();
    let config = &dashboard.shell.config;
    let now = dashboard.shell.clock.now();
    let rules = stored_rules(store).await?;
    let next_run = (dashboard.next_run)(
        &rules,
        &config.daemon.schedule,
        config.daemon.default_timezone()?,
        now,
    );
    let held_disabled = store
        .claims()
        .await?
        .iter()
        .filter(|c| c.field == Field::Disabled && c.value == FieldValue::Disabled(true))
        .count();
    let disabled = view.listing.keys.iter().filter(|k| k.disabled).count();
    let last_run = store.latest_run().await?;
    let mut held_changes = store.newest_held_changes(HELD_SHOWN).await?;
    let newest = held_changes.first().map(|c| c.run_id);
    held_changes.retain(|c| Some(c.run_id) == newest);
    Ok(Status {
        role: dashboard.role.now(),
        last_run,
        next_run,
        outages: store.open_outages().await?,
        credits: view.credits,
        keys: KeyCounts {
            total: view.listing.keys.len(),
            enabled: view.listing.keys.len() - disabled,
            disabled,
            held_disabled,
        },
        held_changes,
        observed_at: view.observed_at,
        observation_error: view.error.clone(),
    })
}
