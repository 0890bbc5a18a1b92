//! Live updates: the database's newest finished run is polled every
//! second (a run of this process or of another on the same database); when
//! it moves, the account is observed again and `/api/events` tells every
//! open page, which fetches itself again.

use super::state::{Dashboard, View};
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// How often the database is asked for its newest finished run.
pub const POLL: Duration = Duration::from_secs(1);

/// Observes the account now, then again after every run, forever.
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
        if seen != Some(id) {
            observe(&dashboard).await;
            seen = Some(id);
            dashboard.run_finished(id);
        }
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
