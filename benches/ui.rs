//! SPEC §13 dashboard figures:
//! - server time of every page and JSON answer with 10,000 keys (in the
//!   dashboard's view) and the storage bench's history of 1,000,000 changes
//!   (`support::history`), best and median of 5 over loopback HTTP, beside
//!   the 200 ms target;
//! - the resident memory of `keywarden run` (release build) serving the
//!   dashboard, with 10,000 keys in the sandbox, after every page and
//!   answer was fetched three times.

// The service tests' harness; the bench uses part of it.
#[allow(dead_code)]
#[path = "../tests/suite/daemon/mod.rs"]
mod daemon;
mod support;

use daemon::{Daemon, Setup};
use keywarden::clock::FixedClock;
use keywarden::config::{Config, ManagementKey};
use keywarden::context::Shell;
use keywarden::engine::evaluate::{Amounts, Observed};
use keywarden::engine::inputs::Series;
use keywarden::engine::outlook::outlook;
use keywarden::openrouter::{Client, ClientSettings, KeyListing};
use keywarden::sandbox::{Sandbox, SandboxOptions};
use keywarden::ui::{Dashboard, ForecastCache, View, role};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::history::{CHANGE_ROWS, fixture};

const KEYS: usize = 10_000;
const TARGET: Duration = Duration::from_millis(200);
const SAMPLES: usize = 5;

/// Every page and JSON answer, with the filters a person uses.
const PATHS: [&str; 16] = [
    "/",
    "/budgets",
    "/keys",
    "/keys?name=team-a-*&state=enabled",
    "/history",
    "/history?page=500",
    "/history?rule=rule-07&outcome=failed",
    "/rules",
    "/api/status",
    "/api/keys",
    "/api/budgets",
    "/api/forecasts",
    "/api/forecasts?page=100",
    "/api/history",
    "/api/history?page=500",
    "/api/rules",
];

/// The dashboard over the history fixture, its view holding `KEYS` keys
/// and the outlook of 100 rules over them; served on loopback.
async fn dashboard() -> String {
    let path = fixture().await;
    let mut config = Config::default();
    config.database.path = Some(path);
    config.openrouter.base_url = "http://127.0.0.1:9/api/v1".into();
    let keys = support::keys(KEYS);
    let hashes: Vec<String> = keys.iter().map(|k| k.hash.clone()).collect();
    let rules = support::rules(100, &hashes);
    let now = support::start();
    let shell = Shell::open(config, Arc::new(FixedClock(now)))
        .await
        .expect("opens the fixture");
    shell
        .store
        .sync_rules(
            &keywarden::rules::model::Origin::File("bench.toml".into()),
            &rules,
            true,
            now,
        )
        .await
        .expect("stores the rules");
    let key = ManagementKey::from_text("sk-or-v1-bench".into()).expect("a key");
    let client = Client::new(ClientSettings::with_key(&shell.config, key)).expect("a client");
    let runner = shell.runner(client);
    let outlook = outlook(
        &rules,
        &keys,
        &[],
        &Observed {
            amounts: &Amounts::new(),
            credits: None,
            series: &Series::new(),
            now,
        },
    );
    let dashboard = Dashboard::new(shell, runner, role(true), |_, _, _, _| None, None);
    dashboard.set_view(View {
        listing: KeyListing {
            keys,
            ..KeyListing::default()
        },
        guardrails: Vec::new(),
        outlook: Some(outlook),
        credits: None,
        observed_at: Some(now),
        error: None,
        forecast_index: ForecastCache::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let base = format!("http://{}", listener.local_addr().expect("an address"));
    tokio::spawn(async move {
        axum::serve(listener, keywarden::ui::router(Arc::new(dashboard)))
            .await
            .expect("serves");
    });
    base
}

/// Best and median time of `SAMPLES` GETs of `url`, and the answer's size.
async fn time_get(client: &reqwest::Client, url: &str) -> (Duration, Duration, usize) {
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..SAMPLES {
        let started = Instant::now();
        let response = client.get(url).send().await.expect("answers");
        assert!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
        size = response.bytes().await.expect("a body").len();
        times.push(started.elapsed());
    }
    times.sort();
    (times[0], times[SAMPLES / 2], size)
}

/// `keywarden run` serving the dashboard over a sandbox of `KEYS` keys:
/// its resident memory after every page and answer was fetched 3 times.
async fn service_memory() -> (u64, u64) {
    let sandbox = Sandbox::start(
        "127.0.0.1:0",
        SandboxOptions {
            keys: KEYS,
            ..SandboxOptions::default()
        },
    )
    .await
    .expect("the sandbox starts");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let setup = Setup::new(
        "[[rule]]\nname = \"cap\"\nkeys = { names = [\"team-*\"] }\nschedule = \"0 0 1 1 *\"\n\
         [rule.when]\nbudget = { usd = 50.0, window = \"monthly\" }\n[rule.set]\ndisabled = true\n",
        &format!("[ui]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let daemon = Daemon::start(&setup, &sandbox, "ui-bench");
    daemon.wait_for("READY=1", Duration::from_secs(120)).await;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    loop {
        let status: serde_json::Value = client
            .get(format!("{base}/api/status"))
            .send()
            .await
            .expect("answers")
            .json()
            .await
            .expect("JSON");
        if status["keys"]["total"] == KEYS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let before = support::rss_median(daemon.child.id()).await;
    for _ in 0..3 {
        for path in PATHS {
            client
                .get(format!("{base}{path}"))
                .send()
                .await
                .expect("answers")
                .bytes()
                .await
                .expect("a body");
        }
    }
    let after = support::rss_median(daemon.child.id()).await;
    (before, after)
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let base = dashboard().await;
        let client = reqwest::Client::new();
        let mut rows = Vec::new();
        for path in PATHS {
            rows.push((path, time_get(&client, &format!("{base}{path}")).await));
        }
        let (before, after) = service_memory().await;

        let ms = |t: Duration| t.as_secs_f64() * 1e3;
        println!(
            "\nui: {KEYS} keys, {CHANGE_ROWS} changes (loopback HTTP, best and median of {SAMPLES})"
        );
        println!(
            "{:<44} {:>9} {:>9} {:>10}  target",
            "page or answer", "best", "median", "size"
        );
        for (path, (best, median, size)) in rows {
            println!(
                "{:<44} {:>6.1} ms {:>6.1} ms {:>7} KiB  < {} ms: {}",
                path,
                ms(best),
                ms(median),
                size / 1024,
                TARGET.as_millis(),
                support::verdict(median < TARGET)
            );
        }
        println!(
            "{:<44} {:>6.1} MiB, {:.1} MiB after every page and answer 3 times",
            format!("keywarden run + dashboard, {KEYS} keys: resident"),
            before as f64 / 1024.0,
            after as f64 / 1024.0
        );
    });
}
