//! Live updates: the database's newest finished run is polled every
//! second (a run of this process or of another on the same database); when
//! it moves, the account is observed again — or, in `keywarden run`, shown
//! as the run itself saw it ([`run_ended`]) — and `/api/events` tells every
//! open page, which fetches itself again.

use super::state::{AfterRun, Dashboard, ForecastCache, View};
use crate::domain::{FieldValue, Key};
use crate::engine::Outcome;
use crate::engine::evaluate::Observed;
use crate::engine::outlook::{Outlook, outlook};
use crate::run::{RecordedChange, RunReport};
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// How often the database is asked for its newest finished run.
pub const POLL: Duration = Duration::from_secs(1);

/// Observes the account now, then again after every run, forever (fed
/// by runs: see [`Dashboard::after_run`]).
pub async fn watch_runs(dashboard: Arc<Dashboard>) {
    let mut seen = None;
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let id = match dashboard.shell.store.last_finished_run_id().await {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!("the dashboard cannot read the last run: {e:#}");
                continue;
            }
        };
        if seen == Some(id) {
            continue;
        }
        match dashboard.after_run(id) {
            AfterRun::Wait => continue,
            AfterRun::Show => {}
            AfterRun::Observe => observe(&dashboard).await,
        }
        seen = Some(id);
        dashboard.run_finished(id);
    }
}

/// Lists the keys, reads the budgets and the credits into the view; on
/// failure keeps the keys of the last observation and says why.
pub async fn observe(dashboard: &Dashboard) {
    let now = dashboard.shell.clock.now();
    let credits = dashboard.runner.client.credits().await.ok();
    let view = match dashboard.runner.observe().await {
        Ok(observed) => View {
            listing: observed.listing,
            guardrails: observed.guardrails,
            outlook: Some(observed.outlook),
            credits,
            observed_at: Some(now),
            error: None,
            forecast_index: ForecastCache::default(),
        },
        Err(e) => {
            tracing::warn!("the dashboard cannot observe the account: {e}");
            View {
                error: Some(e.to_string()),
                credits,
                ..(*dashboard.view()).clone()
            }
        }
    };
    dashboard.set_view(view);
}

/// Hands the dashboard what a run of this process saw, when it ended
/// (`report`; `None` when the run failed before it was recorded): the keys
/// as the run listed them with the PATCHes it applied, and where every
/// enabled rule's budget is heading at the run's instant (the run's own
/// figures when it evaluated every rule). No request is made but
/// `GET /credits` when the run did not read the credits. A run that
/// stopped early leaves the keys shown and says why.
pub async fn run_ended(dashboard: &Dashboard, report: Option<RunReport>) {
    let seen = match report {
        Some(report) => Some((report.run_id, view_after(dashboard, report).await)),
        None => None,
    };
    dashboard.run_ended(seen);
}

/// The view after the run of `report`.
async fn view_after(dashboard: &Dashboard, mut report: RunReport) -> View {
    let Some(seen) = report.seen.take() else {
        return View {
            error: report.error,
            ..(*dashboard.view()).clone()
        };
    };
    let credits = match seen.credits {
        Some(credits) => Some(credits),
        None => dashboard.runner.client.credits().await.ok(),
    };
    let every_rule_evaluated = seen
        .rules
        .iter()
        .all(|r| report.outlook.rules.contains(&r.name));
    let amounts = dashboard.amounts_after(seen.amounts);
    let forecasts = if every_rule_evaluated {
        std::mem::take(&mut report.outlook.rows)
    } else {
        let observed = Observed {
            amounts: &amounts,
            credits: seen.credits.as_ref(),
            series: &seen.series,
            now: seen.at,
        };
        outlook(
            &seen.rules,
            &seen.listing.keys,
            &seen.listing.workspaces,
            &observed,
        )
        .forecasts
    };
    let mut listing = seen.listing;
    patch(&mut listing.keys, &report.rows);
    View {
        listing,
        guardrails: seen.guardrails,
        outlook: Some(Outlook {
            at: seen.at,
            forecasts,
        }),
        credits,
        observed_at: Some(seen.at),
        error: None,
        forecast_index: ForecastCache::default(),
    }
}

/// Gives `keys` the values the `rows` applied by PATCH set.
fn patch(keys: &mut [Key], rows: &[RecordedChange]) {
    let mut set: HashMap<&str, Vec<FieldValue>> = HashMap::new();
    for row in rows
        .iter()
        .filter(|r| r.outcome == Outcome::Applied && r.change.sends_patch())
    {
        let values = row.change.fields.values().map(|f| f.to);
        set.entry(&row.change.key_hash).or_default().extend(values);
    }
    if set.is_empty() {
        return;
    }
    for key in keys.iter_mut() {
        for value in set.get(key.hash.as_str()).into_iter().flatten() {
            key.set(*value);
        }
    }
}

/// `GET /api/events`: a server-sent event `run` (data: the run's id) each
/// time a run finishes.
pub async fn events(
    State(dashboard): State<Arc<Dashboard>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut runs = dashboard.subscribe();
    runs.mark_unchanged();
    let stream = futures::stream::unfold(runs, |mut runs| async move {
        runs.changed().await.ok()?;
        let id = *runs.borrow_and_update();
        Some((Ok(Event::default().event("run").data(id.to_string())), runs))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
