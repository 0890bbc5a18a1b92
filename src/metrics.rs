//! `/metrics` (Prometheus text, via `prometheus-client`) and `/healthz`
//! (SPEC §7).
//!
//! Counters of runs, changes, PATCH responses and source errors are read
//! from the history (see [`Store::history_counts`]), so they equal what
//! `history` shows, including rows made by `keywarden apply`. Every request
//! the service's OpenRouter client sends (retries included) is counted by
//! method and status, and timed, through [`Metrics::api_observer`]. The
//! forecast gauges are in [`forecasts`].

mod forecasts;

use crate::clock::Clock;
use crate::domain::Window;
use crate::engine::plan::BudgetReading;
use crate::run::RunOutlook;
use crate::store::Store;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::{DateTime, Utc};
use forecasts::ForecastGauges;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type GaugeF = Gauge<f64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    trigger: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChangeLabels {
    kind: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
    method: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BudgetLabels {
    rule: String,
    window: String,
    scope: String,
    key_hash: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WindowLabels {
    window: String,
}

/// The exported series.
pub struct Metrics {
    registry: Registry,
    runs: Family<RunLabels, Counter>,
    changes: Family<ChangeLabels, Counter>,
    patches: Family<StatusLabels, Counter>,
    source_errors: Counter,
    run_duration: Histogram,
    api_requests: Family<ApiLabels, Counter>,
    api_duration: Histogram,
    keys: Family<StateLabels, Gauge>,
    spend: Family<BudgetLabels, GaugeF>,
    budget: Family<BudgetLabels, GaugeF>,
    window_reset: Family<WindowLabels, GaugeF>,
    last_success: GaugeF,
    leader: Gauge,
    leader_changes: Counter,
    forecasts: ForecastGauges,
    windows: Mutex<BTreeSet<Window>>,
    clock: Arc<dyn Clock>,
}

impl Metrics {
    /// Every series, registered and empty.
    pub fn new(clock: Arc<dyn Clock>) -> Metrics {
        let mut registry = Registry::with_prefix("keywarden");
        let m = Metrics {
            runs: Family::default(),
            changes: Family::default(),
            patches: Family::default(),
            source_errors: Counter::default(),
            run_duration: Histogram::new(exponential_buckets(0.05, 2.0, 12)),
            api_requests: Family::default(),
            api_duration: Histogram::new(exponential_buckets(0.005, 2.0, 12)),
            keys: Family::default(),
            spend: Family::default(),
            budget: Family::default(),
            window_reset: Family::default(),
            last_success: GaugeF::default(),
            leader: Gauge::default(),
            leader_changes: Counter::default(),
            forecasts: ForecastGauges::default(),
            windows: Mutex::new(BTreeSet::new()),
            clock,
            registry: Registry::default(),
        };
        registry.register(
            "runs",
            "Finished runs, by trigger and status",
            m.runs.clone(),
        );
        registry.register(
            "changes",
            "Change rows, by kind and outcome (as in history)",
            m.changes.clone(),
        );
        registry.register(
            "api_patch_requests",
            "PATCH /keys/{hash} requests sent, by the HTTP status of their final attempt (none: no response)",
            m.patches.clone(),
        );
        registry.register(
            "source_errors",
            "Budget source errors recorded",
            m.source_errors.clone(),
        );
        registry.register(
            "run_duration_seconds",
            "Wall time of whole runs (listing, budget sources, PATCHes), as measured by the service",
            m.run_duration.clone(),
        );
        registry.register(
            "api_requests",
            "Requests sent to the OpenRouter API (retries included), by method and HTTP status (none: no response)",
            m.api_requests.clone(),
        );
        registry.register(
            "api_request_duration_seconds",
            "Latency of requests to the OpenRouter API, from sending to the end of the response",
            m.api_duration.clone(),
        );
        registry.register(
            "keys",
            "Keys by state, as of their latest usage snapshot",
            m.keys.clone(),
        );
        registry.register(
            "budget_spend_usd",
            "Spend in the window of each budget rule (USD)",
            m.spend.clone(),
        );
        registry.register(
            "budget_usd",
            "The budget of each budget rule (USD)",
            m.budget.clone(),
        );
        registry.register(
            "budget_window_reset_seconds",
            "Seconds until each budget window resets (UTC)",
            m.window_reset.clone(),
        );
        registry.register(
            "last_successful_run_timestamp_seconds",
            "When the last run with status ok finished (Unix time)",
            m.last_success.clone(),
        );
        registry.register(
            "leader",
            "1 while this process leads (always on SQLite), 0 while it is a standby",
            m.leader.clone(),
        );
        registry.register(
            "leader_changes",
            "Times this process took the lead (PostgreSQL)",
            m.leader_changes.clone(),
        );
        m.forecasts.register(&mut registry);
        Metrics { registry, ..m }
    }

    /// Whether this process leads now.
    pub fn set_leader(&self, leads: bool) {
        self.leader.set(i64::from(leads));
    }

    /// This process took the lead.
    pub fn took_the_lead(&self) {
        self.leader_changes.inc();
    }

    /// Brings the history counters up to the counts in `store`.
    pub async fn refresh(&self, store: &Store) -> anyhow::Result<()> {
        let counts = store.history_counts().await?;
        for (trigger, status, n) in counts.runs {
            raise(&self.runs.get_or_create(&RunLabels { trigger, status }), n);
        }
        for (kind, outcome, n) in counts.changes {
            raise(
                &self.changes.get_or_create(&ChangeLabels { kind, outcome }),
                n,
            );
        }
        for (status, n) in counts.patches {
            raise(&self.patches.get_or_create(&StatusLabels { status }), n);
        }
        raise(&self.source_errors, counts.source_errors);
        for state in ["enabled", "disabled"] {
            let n = counts
                .keys
                .iter()
                .find(|(s, _)| s == state)
                .map_or(0, |(_, n)| *n);
            self.keys
                .get_or_create(&StateLabels {
                    state: state.into(),
                })
                .set(n as i64);
        }
        if let Some(t) = counts.last_success {
            self.last_success.set(t.timestamp() as f64);
        }
        Ok(())
    }

    /// The client's per-request hook: counts each request by method and
    /// status and records its latency.
    pub fn api_observer(self: &Arc<Self>) -> crate::openrouter::client::Observer {
        let metrics = Arc::clone(self);
        Arc::new(move |method: &str, status: Option<u16>, took: Duration| {
            let status = status.map_or_else(|| "none".to_string(), |s| s.to_string());
            metrics
                .api_requests
                .get_or_create(&ApiLabels {
                    method: method.to_string(),
                    status,
                })
                .inc();
            metrics.api_duration.observe(took.as_secs_f64());
        })
    }

    /// Records a run's duration and its budget readings.
    pub fn observe_run(&self, duration: Duration, budgets: &[BudgetReading]) {
        self.run_duration.observe(duration.as_secs_f64());
        let mut windows = self.windows.lock().expect("metrics lock");
        for b in budgets {
            let labels = BudgetLabels {
                rule: b.rule.to_string(),
                window: b.window.to_string(),
                scope: if b.key_hash.is_some() {
                    "each"
                } else {
                    "group"
                }
                .into(),
                key_hash: b.key_hash.as_deref().unwrap_or_default().to_string(),
            };
            self.spend.get_or_create(&labels).set(b.spend_usd);
            self.budget.get_or_create(&labels).set(b.budget_usd);
            windows.insert(b.window);
        }
    }

    /// Records where the spend of the rules a run evaluated is heading.
    pub fn observe_outlook(&self, outlook: &RunOutlook) {
        self.forecasts.observe(outlook);
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let now = self.clock.now();
        for w in self.windows.lock().expect("metrics lock").iter() {
            if let Some(bounds) = w.bounds(now) {
                self.window_reset
                    .get_or_create(&WindowLabels {
                        window: w.to_string(),
                    })
                    .set((bounds.end - now).num_milliseconds() as f64 / 1000.0);
            }
        }
        let _forecasts = self.forecasts.refresh();
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// Raises a counter to `total` (counters never go down).
fn raise(counter: &Counter, total: u64) {
    let now = counter.get();
    if total > now {
        counter.inc_by(total - now);
    }
}

/// What `/healthz` looks at: the run loop's heartbeat and the last run,
/// and whether this process is a standby (SPEC §14).
#[derive(Debug, Default)]
pub struct Health {
    tick: AtomicI64,
    last_run: AtomicI64,
    interval_secs: AtomicI64,
    standby: AtomicBool,
}

impl Health {
    /// Whether this process is a standby (runs nothing, so no last run is
    /// due) or leads.
    pub fn set_standby(&self, standby: bool) {
        self.standby.store(standby, Ordering::Relaxed);
    }

    /// `leader` or `standby`.
    pub fn role(&self) -> &'static str {
        match self.standby.load(Ordering::Relaxed) {
            true => "standby",
            false => "leader",
        }
    }

    /// The run loop is alive at `now`.
    pub fn tick(&self, now: DateTime<Utc>) {
        self.tick.store(now.timestamp(), Ordering::Relaxed);
    }

    /// A run finished at `at`.
    pub fn run_finished(&self, at: DateTime<Utc>) {
        self.last_run.store(at.timestamp(), Ordering::Relaxed);
    }

    /// The shortest schedule interval of the rules.
    pub fn set_interval(&self, interval: chrono::Duration) {
        self.interval_secs
            .store(interval.num_seconds().max(1), Ordering::Relaxed);
    }

    /// Healthy: the loop ticked within the last 30 s, and, on the leader,
    /// the last run is not older than twice the schedule interval (at least
    /// one minute, so that a run of a few seconds on a per-second schedule
    /// is not a failure). A standby runs nothing: its live loop is enough.
    pub fn is_healthy(&self, now: DateTime<Utc>) -> bool {
        let now = now.timestamp();
        let tick = self.tick.load(Ordering::Relaxed);
        let last_run = self.last_run.load(Ordering::Relaxed);
        let allowed = (2 * self.interval_secs.load(Ordering::Relaxed)).max(60);
        let runs_on_time = last_run > 0 && now - last_run <= allowed;
        tick > 0 && now - tick <= 30 && (self.standby.load(Ordering::Relaxed) || runs_on_time)
    }
}

#[derive(Clone)]
struct Shared {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

/// The routes: `GET /metrics`, `GET /healthz`.
pub fn router(metrics: Arc<Metrics>, health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(serve_metrics))
        .route("/healthz", get(serve_health))
        .with_state(Shared { metrics, health })
}

async fn serve_metrics(State(s): State<Shared>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
}

async fn serve_health(State(s): State<Shared>) -> impl IntoResponse {
    if s.health.is_healthy(s.metrics.clock.now()) {
        (StatusCode::OK, format!("ok: {}\n", s.health.role()))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "unhealthy: the run loop or the last run is late\n".to_string(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn health_needs_a_live_loop_and_a_recent_run() {
        let h = Health::default();
        let now = utc("2026-11-27T10:00:00Z");
        assert!(!h.is_healthy(now));
        h.tick(now);
        h.set_interval(chrono::Duration::minutes(5));
        h.run_finished(now);
        assert!(
            !h.is_healthy(now + chrono::Duration::minutes(10)),
            "the loop stopped ticking"
        );
        assert!(h.is_healthy(now + chrono::Duration::seconds(20)));
        h.tick(now + chrono::Duration::minutes(11));
        assert!(!h.is_healthy(now + chrono::Duration::minutes(11)));
    }
}
