//! SPEC §10 "a run over 10,000 keys with 1,000 changes against a sandbox
//! that adds 20 ms per request finishes within 1.5× the bound set by
//! `max_concurrency` and `requests_per_second`": a full `Runner::run`
//! against the in-process sandbox, at `max_concurrency` 8 and 1 (the naive
//! strategy: one request at a time), printed as a table.

mod support;

use keywarden::config::{Config, ManagementKey};
use keywarden::openrouter::{Client, ClientSettings};
use keywarden::run::{RunRequest, Runner, Trigger};
use keywarden::sandbox::faults::Latency;
use keywarden::sandbox::{Faults, Sandbox, SandboxOptions};
use keywarden::store::Store;
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEYS: usize = 10_000;
const CHANGES: usize = 1_000;
const LATENCY_MS: u64 = 20;
const RATE: u32 = 50;
/// A per-key daily budget of 1 USD; the bench spends 2 USD on every tenth key.
const RULES: &str = r#"
[[rule]]
name = "daily-cap"
keys = "all"
[rule.when]
budget = { usd = 1.0, window = "daily" }
[rule.set]
disabled = true
"#;

/// What one run took.
struct Measured {
    concurrency: usize,
    wall: Duration,
    requests: usize,
    patches: usize,
    bound: Duration,
}

async fn measure(concurrency: usize) -> Measured {
    let sandbox = Sandbox::start(
        "127.0.0.1:0",
        SandboxOptions {
            keys: KEYS,
            start: Some(support::start()),
            ..SandboxOptions::default()
        },
    )
    .await
    .expect("the sandbox starts");
    let account = sandbox.account();
    for key in account.keys().iter().step_by(KEYS / CHANGES) {
        account.spend(&key.hash, 2.0, false).expect("spends");
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut config = Config::default();
    config.openrouter.base_url = sandbox.base_url();
    config.openrouter.max_concurrency = concurrency;
    config.openrouter.requests_per_second = RATE;
    config.database.path = Some(dir.path().join("keywarden.db"));
    config.daemon.max_changes_per_run = KEYS;
    config.daemon.max_disable_fraction = 1.0;
    let store = Store::open(&config.database_path()).await.expect("opens");
    let rules = keywarden::rules::parse_rules("rules.toml", RULES).expect("parses");
    store
        .sync_rules(
            &keywarden::rules::model::Origin::File("rules.toml".into()),
            &rules.rules,
            true,
            account.now(),
        )
        .await
        .expect("stores the rules");
    let o = &config.openrouter;
    let client = Client::new(ClientSettings {
        base_url: o.base_url.clone(),
        management_key: ManagementKey::from_text(sandbox.management_key().to_string())
            .expect("a key"),
        workspaces: o.workspaces.clone(),
        timeout: o.timeout,
        max_concurrency: o.max_concurrency,
        requests_per_second: o.requests_per_second,
        max_retries: o.max_retries,
    })
    .expect("a client");
    let runner = Runner::new(store, client, Arc::new(config), Arc::new(account.clone()));
    account
        .set_faults(Faults {
            latency_ms: Some(Latency::Fixed(LATENCY_MS)),
            ..Faults::default()
        })
        .expect("faults");
    account.clear_requests();
    let started = Instant::now();
    let report = runner
        .run(&RunRequest {
            trigger: Trigger::Manual,
            due: None,
            dry_run: false,
            force: false,
        })
        .await
        .expect("the run completes");
    let wall = started.elapsed();
    assert!(report.error.is_none(), "the run failed: {:?}", report.error);
    let journal = account.requests();
    let patches = journal.iter().filter(|r| r.method == "PATCH").count();
    assert_eq!(patches, CHANGES, "every over-budget key is disabled once");
    sandbox.shutdown().await;
    Measured {
        concurrency,
        wall,
        requests: journal.len(),
        patches,
        bound: bound(journal.len(), concurrency),
    }
}

/// The least time `requests` can take: no faster than the rate allows, and
/// no faster than `concurrency` requests of `LATENCY_MS` each at a time.
fn bound(requests: usize, concurrency: usize) -> Duration {
    let by_rate = requests as f64 / RATE as f64;
    let by_latency = requests as f64 * LATENCY_MS as f64 / 1e3 / concurrency as f64;
    Duration::from_secs_f64(by_rate.max(by_latency))
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let concurrent = runtime.block_on(measure(8));
    let naive = runtime.block_on(measure(1));
    let pages = KEYS / 100 + 1;
    println!(
        "\nrun: {KEYS} keys, {CHANGES} need a change; the sandbox adds {LATENCY_MS} ms to every request; requests_per_second = {RATE}"
    );
    println!(
        "  expected requests: listing {pages} pages ({} full + 1 empty) + {CHANGES} PATCHes = {}",
        pages - 1,
        pages + CHANGES
    );
    println!(
        "  bound = max(requests / requests_per_second, requests x {LATENCY_MS} ms / max_concurrency)"
    );
    println!(
        "{:>16} {:>9} {:>9} {:>9} {:>9} {:>8}  target",
        "strategy", "wall", "requests", "PATCHes", "bound", "ratio"
    );
    for (name, m) in [("concurrency 8", &concurrent), ("naive (1)", &naive)] {
        let ratio = m.wall.as_secs_f64() / m.bound.as_secs_f64();
        let target = if m.concurrency > 1 {
            format!("<= 1.5x bound: {}", support::verdict(ratio <= 1.5))
        } else {
            "baseline".to_string()
        };
        println!(
            "{name:>16} {:>7.2} s {:>9} {:>9} {:>7.2} s {:>7.2}x  {target}",
            m.wall.as_secs_f64(),
            m.requests,
            m.patches,
            m.bound.as_secs_f64(),
            ratio
        );
    }
    println!(
        "  naive / concurrency 8 = {:.2}x",
        naive.wall.as_secs_f64() / concurrent.wall.as_secs_f64()
    );
}
