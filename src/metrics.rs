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

/// The labels of a budget reading's two gauges, kept compactly (one a key
/// of a scope `each` rule): the rule's name and the key's hash are shared
/// with the plan, the window and the scope are static words.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BudgetLabels {
    rule: Arc<str>,
    window: &'static str,
    scope: &'static str,
    /// Empty for a scope `group` budget.
    key_hash: Option<Arc<str>>,
}

impl BudgetLabels {
    fn of(reading: &BudgetReading) -> BudgetLabels {
        BudgetLabels {
            rule: reading.rule.clone(),
            window: reading.window.as_str(),
            scope: match reading.key_hash {
                Some(_) => "each",
                None => "group",
            },
            key_hash: reading.key_hash.clone(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WindowLabels {
    window: String,
}

/// Whether anything serves `/metrics` (`[metrics].listen`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exposition {
    /// `/metrics` is served: every series is kept.
    Served,
    /// Nothing serves `/metrics`: the budget and forecast series (one a key
    /// of a scope `each` rule) are not kept, as nobody could read them.
    Unserved,
}

/// The exported series.
pub struct Metrics {
    exposition: Exposition,
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
    /// Every series, registered and empty; the budget and forecast series
    /// are kept only if the exposition is served.
    pub fn new(clock: Arc<dyn Clock>, exposition: Exposition) -> Metrics {
        let mut registry = Registry::with_prefix("keywarden");
        let m = Metrics {
            exposition,
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

    /// Brings the history counters up to the counts in `store`, if served
    /// (nothing reads them otherwise, and counting a long history after
    /// every run is not free).
    pub async fn refresh(&self, store: &Store) -> anyhow::Result<()> {
        if self.exposition == Exposition::Unserved {
            return Ok(());
        }
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

    /// Records a run's duration and, if served, its budget readings.
    pub fn observe_run(&self, duration: Duration, budgets: &[BudgetReading]) {
        self.run_duration.observe(duration.as_secs_f64());
        if self.exposition == Exposition::Unserved {
            return;
        }
        let mut windows = self.windows.lock().expect("metrics lock");
        for b in budgets {
            let labels = BudgetLabels::of(b);
            self.spend.get_or_create(&labels).set(b.spend_usd);
            self.budget.get_or_create(&labels).set(b.budget_usd);
            windows.insert(b.window);
        }
    }

    /// Records, if served, where the spend of the rules a run evaluated is
    /// heading.
    pub fn observe_outlook(&self, outlook: &RunOutlook) {
        if self.exposition == Exposition::Served {
            self.forecasts.observe(outlook);
        }
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
    use crate::clock::FixedClock;
    use crate::engine::outlook::ForecastRow;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// A run's readings: two keys of a scope `each` rule, and a group.
    fn readings() -> Vec<BudgetReading> {
        let reading = |rule: &str, key_hash: Option<&str>, spend_usd: f64| BudgetReading {
            rule: rule.into(),
            key_hash: key_hash.map(Into::into),
            window: Window::Daily,
            spend_usd,
            budget_usd: 1.0,
        };
        vec![
            reading("per-key", Some("aaaa"), 0.25),
            reading("per-key", Some("bbbb"), 2.5),
            reading("team", None, 2.75),
        ]
    }

    /// The sample lines of the exposition whose metric starts with `prefix`.
    fn samples(text: &str, prefix: &str) -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .map(str::to_string)
            .collect()
    }

    #[tokio::test]
    async fn the_history_is_counted_only_when_served() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("kw.db")).await.unwrap();
        let at = utc("2026-12-16T16:00:00Z");
        let run = store.start_run("manual", at, false).await.unwrap();
        let summary = crate::store::RunSummary {
            status: "ok".into(),
            ..Default::default()
        };
        store.finish_run(run, at, &summary).await.unwrap();
        let clock: Arc<dyn Clock> = Arc::new(FixedClock(at));
        let served = Metrics::new(clock.clone(), Exposition::Served);
        let unserved = Metrics::new(clock, Exposition::Unserved);
        for m in [&served, &unserved] {
            m.refresh(&store).await.unwrap();
        }
        let counted = r#"keywarden_runs_total{trigger="manual",status="ok"} 1"#;
        assert!(served.encode().contains(counted), "{}", served.encode());
        assert_eq!(
            samples(&unserved.encode(), "keywarden_runs_total{"),
            Vec::<String>::new()
        );
        store.close().await;
    }

    #[test]
    fn budget_and_forecast_series_are_kept_only_when_served() {
        let clock: Arc<dyn Clock> = Arc::new(FixedClock(utc("2026-12-16T16:00:00Z")));
        let served = Metrics::new(clock.clone(), Exposition::Served);
        let unserved = Metrics::new(clock, Exposition::Unserved);
        for m in [&served, &unserved] {
            m.observe_run(Duration::from_secs(2), &readings());
            m.observe_outlook(&RunOutlook {
                rules: ["per-key".into()].into(),
                rows: vec![ForecastRow::example(
                    "per-key",
                    Some("key-1"),
                    Some(0.5),
                    0.25,
                )],
            });
        }

        let text = served.encode();
        let mut budgets = samples(&text, "keywarden_budget_usd{");
        budgets.sort();
        assert_eq!(
            budgets,
            [
                r#"keywarden_budget_usd{rule="per-key",window="daily",scope="each",key_hash="aaaa"} 1.0"#,
                r#"keywarden_budget_usd{rule="per-key",window="daily",scope="each",key_hash="bbbb"} 1.0"#,
                r#"keywarden_budget_usd{rule="team",window="daily",scope="group",key_hash=""} 1.0"#,
            ],
            "{text}"
        );
        assert_eq!(
            samples(&text, "keywarden_budget_spend_usd{").len(),
            3,
            "{text}"
        );
        assert_eq!(
            samples(&text, "keywarden_budget_burn_rate_usd_per_hour{").len(),
            1,
            "{text}"
        );
        assert_eq!(
            samples(&text, "keywarden_budget_window_reset_seconds{").len(),
            1,
            "{text}"
        );

        // Nothing serves it: no series a key, but the run is still counted.
        let text = unserved.encode();
        assert_eq!(
            samples(&text, "keywarden_budget_"),
            Vec::<String>::new(),
            "{text}"
        );
        assert!(
            text.contains("keywarden_run_duration_seconds_count 1"),
            "{text}"
        );
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
