//! `/metrics` and `/healthz` of the running service.

use crate::daemon;

use daemon::{
    Daemon, PATIENCE, Setup, budget_rule, disabled, eventually, free_port, hash_of, sandbox,
};
use keywarden::store::Store;
use keywarden::store::runs::HistoryFilter;
use std::collections::BTreeMap;
use std::time::Duration;

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread")]
async fn metrics_parse_as_prometheus_text_and_count_what_history_shows() {
    let sandbox = sandbox(None).await;
    let port = free_port();
    let setup = Setup::new(
        &budget_rule("team-a-*", 10.0),
        &format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let service = Daemon::start(&setup, &sandbox, "metrics");
    service.wait_for("READY=1", PATIENCE).await;
    let a = hash_of(&sandbox, "team-a-01");
    sandbox.account().spend(&a, 12.0, false).unwrap();
    assert!(eventually(PATIENCE, || disabled(&sandbox, "team-a-01")).await);
    tokio::time::sleep(2 * SECOND).await;

    let base = format!("http://127.0.0.1:{port}");
    let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    // On SQLite the service is the one process: always the leader.
    assert_eq!(health.text().await.unwrap(), "ok: leader\n");
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text");

    let mut exported: BTreeMap<(String, String), f64> = BTreeMap::new();
    for s in scrape
        .samples
        .iter()
        .filter(|s| s.metric == "keywarden_changes_total")
    {
        // prometheus-parse reads the OpenMetrics `_total` sample of a
        // `# TYPE keywarden_changes counter` family as untyped.
        let (prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v)) = s.value
        else {
            panic!("keywarden_changes_total is not a number: {:?}", s.value);
        };
        exported.insert(
            (
                s.labels["kind"].to_string(),
                s.labels["outcome"].to_string(),
            ),
            v,
        );
    }
    let store = Store::open(&setup.database).await.unwrap();
    let mut history: BTreeMap<(String, String), f64> = BTreeMap::new();
    for row in store.changes(&HistoryFilter::default()).await.unwrap() {
        *history
            .entry((
                row.kind.as_str().to_string(),
                row.outcome.as_str().to_string(),
            ))
            .or_default() += 1.0;
    }
    assert!(
        history.contains_key(&("assert".into(), "applied".into())),
        "{history:?}"
    );
    assert_eq!(exported, history, "\n{text}");

    let gauge = |name: &str| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name)
            .map(|s| match s.value {
                prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                ref other => panic!("{name}: {other:?}"),
            })
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    assert_eq!(gauge("keywarden_budget_usd"), 10.0);
    assert_eq!(gauge("keywarden_leader"), 1.0);
    assert_eq!(gauge("keywarden_budget_spend_usd"), 12.0);
    assert!(gauge("keywarden_budget_window_reset_seconds") > 0.0);
    assert!(
        text.contains("keywarden_runs_total{trigger=\"startup\",status=\"ok\"} 1"),
        "{text}"
    );

    // Every request the client sent, by method and status, and their latency.
    let requests = |method: &str, status: &str| {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == "keywarden_api_requests_total")
            .find(|s| {
                s.labels.get("method") == Some(method) && s.labels.get("status") == Some(status)
            })
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
                ref other => panic!("keywarden_api_requests_total: {other:?}"),
            })
    };
    let patches = sandbox
        .account()
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();
    assert_eq!(patches, 1, "one PATCH disabled team-a-01");
    assert_eq!(requests("PATCH", "200"), Some(1.0), "\n{text}");
    assert!(
        requests("GET", "200").is_some_and(|n| n >= 2.0),
        "the start-up run and the scheduled ones listed keys:\n{text}"
    );
    let timed: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("keywarden_api_request_duration_seconds_count "))
        .unwrap_or_else(|| panic!("no latency histogram in\n{text}"))
        .trim()
        .parse()
        .unwrap();
    assert!(timed >= 3.0, "every request is timed:\n{text}");
    assert!(
        text.contains("keywarden_api_request_duration_seconds_bucket{le=\"0.005\"}"),
        "{text}"
    );
}

/// Three rules: a budget rule without the history for a rate, a group
/// forecast that will not cross this month, a per-key `total` forecast that
/// will (SPEC §11); every second, snapshots every second.
const FORECAST_RULES: &str = r#"
[[rule]]
name = "cap"
keys = { names = ["team-b-01"] }
schedule = "*/1 * * * * *"
when.budget = { usd = 10.0, window = "monthly", scope = "group" }
set.disabled = true

[[rule]]
name = "team-a-pace"
keys = { names = ["team-a-*"] }
schedule = "*/1 * * * * *"
when.forecast = { usd = 1000000000.0, window = "monthly", scope = "group", lookback = "4s", within = "1s" }
set.limit = 5.0

[[rule]]
name = "team-a-lifetime"
keys = { names = ["team-a-*"] }
schedule = "*/1 * * * * *"
when.forecast = { usd = 1000000.0, window = "total", lookback = "4s", within = "1s" }
set.limit = 5.0
"#;

/// The gauges `name` of the scrape, by their `rule` label.
fn gauges(
    scrape: &prometheus_parse::Scrape,
    name: &str,
) -> BTreeMap<String, (f64, prometheus_parse::Labels)> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .map(|s| {
            let v = match s.value {
                prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                ref other => panic!("{name}: {other:?}"),
            };
            (s.labels["rule"].to_string(), (v, s.labels.clone()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_export_burn_rate_projection_and_crossing_of_sandbox_traffic() {
    // The sandbox clock stands still but for the test moving it a minute at
    // a time: the traffic spends 1 USD a sandbox minute.
    let sandbox = sandbox(Some(chrono::Utc::now())).await;
    let port = free_port();
    let setup = Setup::new(
        FORECAST_RULES,
        &format!(
            "[metrics]\nlisten = \"127.0.0.1:{port}\"\n\n[history]\nsnapshot_interval = \"1s\"\n"
        ),
    );
    crate::common::steady_traffic(&sandbox, "team-a-01", 60.0);
    let service = Daemon::start(&setup, &sandbox, "metrics-forecast");
    service.wait_for("READY=1", PATIENCE).await;

    let url = format!("http://127.0.0.1:{port}/metrics");
    let deadline = std::time::Instant::now() + PATIENCE;
    let scrape = loop {
        sandbox.account().advance(chrono::Duration::minutes(1));
        let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
        let scrape =
            prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
        let rates = gauges(&scrape, "keywarden_budget_burn_rate_usd_per_hour");
        if rates.contains_key("team-a-pace") && rates.contains_key("team-a-lifetime") {
            break scrape;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no burn rates yet:\n{text}\n{}",
            service.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let rates = gauges(&scrape, "keywarden_budget_burn_rate_usd_per_hour");
    let projected = gauges(&scrape, "keywarden_budget_projected_usd");
    let crossing = gauges(&scrape, "keywarden_budget_crossing_timestamp_seconds");

    // The group: spending, its projection known, no crossing this month.
    let (rate, labels) = &rates["team-a-pace"];
    assert!(*rate > 0.0, "{rates:?}");
    assert_eq!(
        (
            labels.get("group"),
            labels.get("window"),
            labels.get("key_hash")
        ),
        (Some("(group)"), Some("monthly"), Some(""))
    );
    assert!(projected["team-a-pace"].0 > 0.0, "{projected:?}");
    assert!(!crossing.contains_key("team-a-pace"), "{crossing:?}");

    // The key: a total budget has no window end to project to, and the
    // crossing is ahead.
    let (at, labels) = &crossing["team-a-lifetime"];
    let a = hash_of(&sandbox, "team-a-01");
    assert_eq!(
        (
            labels.get("group"),
            labels.get("window"),
            labels.get("key_hash")
        ),
        (Some("team-a-01"), Some("total"), Some(a.as_str()))
    );
    assert!(*at > chrono::Utc::now().timestamp() as f64, "{at}");
    assert!(!projected.contains_key("team-a-lifetime"), "{projected:?}");

    // Too little history for the budget rule's rate: its spend and budget
    // are there, none of the three gauges.
    let budgets = gauges(&scrape, "keywarden_budget_usd");
    assert_eq!(budgets.get("cap").map(|b| b.0), Some(10.0), "{budgets:?}");
    for figures in [&rates, &projected, &crossing] {
        assert!(!figures.contains_key("cap"), "{figures:?}");
    }
}
