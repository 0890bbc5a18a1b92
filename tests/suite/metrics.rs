//! `/metrics` and `/healthz` of the running service.

use crate::daemon;

use daemon::{Daemon, PATIENCE, Setup, budget_rule, disabled, eventually, hash_of, sandbox};
use keywarden::store::Store;
use keywarden::store::runs::HistoryFilter;
use std::collections::BTreeMap;
use std::time::Duration;

const SECOND: Duration = Duration::from_secs(1);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

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
