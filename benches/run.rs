//! SPEC §10 "a run over 10,000 keys with 1,000 changes against a sandbox
//! that adds 20 ms per request finishes within 1.5× the bound set by
//! `max_concurrency` and `requests_per_second`": a full `Runner::run`
//! against the in-process sandbox, at `max_concurrency` 8 and 1 (the naive
//! strategy: one request at a time), printed as a table. A second case
//! (SPEC §12) spreads the 10,000 keys over 5 workspaces and downgrades the
//! over-budget keys to a guardrail before disabling them: 1,000 guardrail
//! changes (in bulk calls of 100) plus 1,000 PATCHes. A third (issue 18)
//! takes the rate ceiling away: 2,000 keys, 200 PATCHes, so that
//! `max_concurrency` alone bounds the run.
//!
//! `cargo bench --bench run -- WORDS` runs only the cases whose name holds
//! one of the words (`cargo bench --bench run -- ceiling`).

mod support;

use chrono::{DateTime, Utc};
use keywarden::config::{Config, ManagementKey};
use keywarden::openrouter::{Client, ClientSettings};
use keywarden::run::{RunRequest, Runner, Trigger};
use keywarden::sandbox::faults::Latency;
use keywarden::sandbox::guardrail::CHEAP_MODELS_ONLY;
use keywarden::sandbox::ids::DEFAULT_WORKSPACE;
use keywarden::sandbox::journal::JournalEntry;
use keywarden::sandbox::workspace::NewWorkspace;
use keywarden::sandbox::{Account, Faults, NewKey, Sandbox, SandboxOptions};
use keywarden::store::Store;
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEYS: usize = 10_000;
const CHANGES: usize = 1_000;
const LATENCY_MS: u64 = 20;
const RATE: u32 = 50;
/// "No rate ceiling": a ceiling no run of the bench comes near (one request
/// a microsecond), so `max_concurrency` alone bounds the run.
const NO_CEILING: u32 = 1_000_000;
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

/// The same keys downgraded to a guardrail at half their budget, then
/// disabled at the whole of it.
const GUARDRAIL_RULES: &str = r#"
[[rule]]
name = "daily-downgrade"
keys = "all"
[rule.when]
budget = { usd = 1.0, window = "daily", at = 0.5 }
[rule.set]
guardrail = "cheap-models-only"

[[rule]]
name = "daily-cap"
keys = "all"
[rule.when]
budget = { usd = 1.0, window = "daily" }
[rule.set]
disabled = true
"#;

/// The workspaces of the guardrail case.
const WORKSPACES: usize = 5;

/// A case of the bench: its rules and how many workspaces hold the keys.
#[derive(Clone, Copy)]
struct Case {
    /// As printed.
    name: &'static str,
    /// The rules file.
    rules: &'static str,
    /// Workspaces the keys are spread over (1: the default one, listed
    /// without `workspace_id`).
    workspaces: usize,
    /// Keys in the account.
    keys: usize,
    /// Keys over budget (every `keys / changes`-th).
    changes: usize,
    /// `requests_per_second`.
    rate: u32,
    /// The most the concurrent run may take, as a multiple of its bound
    /// (SPEC §10: 1.5; issue 18: 1.15 without a rate ceiling).
    target: f64,
}

/// What one run took.
struct Measured {
    concurrency: usize,
    wall: Duration,
    requests: usize,
    patches: usize,
    /// Bulk guardrail calls, and the key hashes they carried.
    guardrail_calls: usize,
    guardrail_keys: usize,
    bound: Duration,
    /// Where the wall time went, read from the sandbox's journal.
    phases: Phases,
}

/// The run's wall time cut where the sandbox's journal (the instant each
/// request arrived, to the millisecond) shows a step ending: each request
/// is answered `LATENCY_MS` after it arrived.
struct Phases {
    /// From the run's start to the first request.
    before: Duration,
    /// From the first request to the answer of the last listing request
    /// (every `GET`).
    listing: Duration,
    /// From there to the first PATCH: planning and recording.
    planning: Duration,
    /// From the first PATCH to the answer of the last.
    patches: Duration,
    /// From there to the run's end: completing and finishing.
    after: Duration,
}

impl Phases {
    /// The phases of a run that started at `started` and took `wall`,
    /// from its `journal`.
    fn of(started: DateTime<Utc>, wall: Duration, journal: &[JournalEntry]) -> Phases {
        let latency = chrono::Duration::milliseconds(LATENCY_MS as i64);
        let at = |r: &JournalEntry| {
            DateTime::parse_from_rfc3339(&r.received_at)
                .expect("an RFC 3339 instant")
                .with_timezone(&Utc)
        };
        let since = |a: DateTime<Utc>, b: DateTime<Utc>| (b - a).to_std().unwrap_or_default();
        let first = journal.iter().map(at).min().unwrap_or(started);
        let listed = journal
            .iter()
            .filter(|r| r.method == "GET")
            .map(at)
            .max()
            .map_or(first, |t| t + latency);
        let patched = journal.iter().filter(|r| r.method == "PATCH").map(at);
        let first_patch = patched.clone().min().unwrap_or(listed);
        let last_answer = patched.max().map_or(listed, |t| t + latency);
        let ended = started + chrono::Duration::from_std(wall).expect("a short run");
        Phases {
            before: since(started, first),
            listing: since(first, listed),
            planning: since(listed, first_patch),
            patches: since(first_patch, last_answer),
            after: since(last_answer, ended),
        }
    }
}

/// The ids of `n` workspaces of `account` (the default one first), made
/// when missing.
fn workspaces(account: &Account, n: usize) -> Vec<String> {
    let mut ids = vec![DEFAULT_WORKSPACE.to_string()];
    for i in 1..n {
        let new: NewWorkspace = serde_json::from_value(
            serde_json::json!({"name": format!("Bench {i}"), "slug": format!("bench-{i}")}),
        )
        .expect("a workspace");
        ids.push(account.create_workspace(new).expect("creates").id);
    }
    ids
}

async fn measure(case: Case, concurrency: usize) -> Measured {
    let sandbox = Sandbox::start(
        "127.0.0.1:0",
        SandboxOptions {
            keys: if case.workspaces == 1 { case.keys } else { 0 },
            start: Some(support::start()),
            ..SandboxOptions::default()
        },
    )
    .await
    .expect("the sandbox starts");
    let account = sandbox.account();
    if case.workspaces > 1 {
        let ids = workspaces(account, case.workspaces);
        for i in 0..case.keys {
            let new = NewKey {
                name: format!("key-{i:05}"),
                workspace_id: Some(ids[i % case.workspaces].clone()),
                ..NewKey::default()
            };
            account.create_key(new).expect("creates a key");
        }
    }
    for key in account.keys().iter().step_by(case.keys / case.changes) {
        account.spend(&key.hash, 2.0, false).expect("spends");
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut config = Config::default();
    config.openrouter.base_url = sandbox.base_url();
    config.openrouter.max_concurrency = concurrency;
    config.openrouter.requests_per_second = case.rate;
    config.database.path = Some(dir.path().join("keywarden.db"));
    config.daemon.max_changes_per_run = case.keys;
    config.daemon.max_disable_fraction = 1.0;
    let store = Store::open(&config.database_path()).await.expect("opens");
    let rules = keywarden::rules::parse_rules("rules.toml", case.rules).expect("parses");
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
    let started_at = Utc::now();
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
    assert_eq!(
        patches, case.changes,
        "every over-budget key is disabled once"
    );
    let guardrail_calls: Vec<_> = journal
        .iter()
        .filter(|r| r.method == "POST" && r.path.contains(CHEAP_MODELS_ONLY))
        .collect();
    let guardrail_keys = guardrail_calls
        .iter()
        .map(|r| r.body["key_hashes"].as_array().map_or(0, Vec::len))
        .sum();
    sandbox.shutdown().await;
    Measured {
        concurrency,
        wall,
        requests: journal.len(),
        patches,
        guardrail_calls: guardrail_calls.len(),
        guardrail_keys,
        bound: bound(journal.len(), concurrency, case.rate),
        phases: Phases::of(started_at, wall, &journal),
    }
}

/// The least time `requests` can take: no faster than the rate allows, and
/// no faster than `concurrency` requests of `LATENCY_MS` each at a time.
fn bound(requests: usize, concurrency: usize, rate: u32) -> Duration {
    let by_rate = requests as f64 / f64::from(rate);
    let by_latency = requests as f64 * LATENCY_MS as f64 / 1e3 / concurrency as f64;
    Duration::from_secs_f64(by_rate.max(by_latency))
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let cases = [
        Case {
            name: "one workspace, PATCHes only",
            rules: RULES,
            workspaces: 1,
            keys: KEYS,
            changes: CHANGES,
            rate: RATE,
            target: 1.5,
        },
        Case {
            name: "5 workspaces, guardrails and PATCHes",
            rules: GUARDRAIL_RULES,
            workspaces: WORKSPACES,
            keys: KEYS,
            changes: CHANGES,
            rate: RATE,
            target: 1.5,
        },
        Case {
            name: "no rate ceiling, 2,000 keys, PATCHes only",
            rules: RULES,
            workspaces: 1,
            keys: 2_000,
            changes: 200,
            rate: NO_CEILING,
            target: 1.15,
        },
    ];
    // `cargo bench` passes `--bench`; other arguments pick cases by name.
    let words: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    println!(
        "\nrun: the sandbox adds {LATENCY_MS} ms to every request; requests_per_second = {RATE} unless said"
    );
    println!(
        "  bound = max(requests / requests_per_second, requests x {LATENCY_MS} ms / max_concurrency)"
    );
    let picked = cases
        .into_iter()
        .filter(|c| words.is_empty() || words.iter().any(|w| c.name.contains(w.as_str())));
    for case in picked {
        let concurrent = runtime.block_on(measure(case, 8));
        let naive = runtime.block_on(measure(case, 1));
        report(case, &concurrent, &naive);
    }
}

/// Prints one case's table.
fn report(case: Case, concurrent: &Measured, naive: &Measured) {
    let (keys, changes) = (case.keys, case.changes);
    let pages = keys / 100 + case.workspaces;
    println!("\n{}: {keys} keys, {changes} need a change", case.name);
    match case.workspaces {
        1 => println!(
            "  expected requests: listing {pages} pages ({} full + 1 empty) + {changes} PATCHes = {}",
            pages - 1,
            pages + changes
        ),
        n => println!(
            "  expected requests: listing {pages} pages of keys ({} full + {n} empty) + {} of guardrails + 1 of assignments + {} bulk guardrail calls + {changes} PATCHes = {}",
            pages - n,
            n + 1,
            changes / 100,
            pages + n + 2 + changes / 100 + changes
        ),
    }
    println!(
        "{:>16} {:>9} {:>9} {:>9} {:>16} {:>9} {:>8}  target",
        "strategy", "wall", "requests", "PATCHes", "guardrail calls", "bound", "ratio"
    );
    for (name, m) in [("concurrency 8", concurrent), ("naive (1)", naive)] {
        let ratio = m.wall.as_secs_f64() / m.bound.as_secs_f64();
        let target = if m.concurrency > 1 {
            format!(
                "<= {}x bound: {}",
                case.target,
                support::verdict(ratio <= case.target)
            )
        } else {
            "baseline".to_string()
        };
        println!(
            "{name:>16} {:>7.2} s {:>9} {:>9} {:>16} {:>7.2} s {:>7.2}x  {target}",
            m.wall.as_secs_f64(),
            m.requests,
            m.patches,
            format!("{} ({} keys)", m.guardrail_calls, m.guardrail_keys),
            m.bound.as_secs_f64(),
            ratio
        );
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let p = &concurrent.phases;
    println!(
        "  concurrency 8, from the journal: {:.0} ms before the first request, {:.0} ms listing, {:.0} ms planning, {:.0} ms of PATCHes ({} rounds of {LATENCY_MS} ms = {} ms), {:.0} ms after",
        ms(p.before),
        ms(p.listing),
        ms(p.planning),
        ms(p.patches),
        changes.div_ceil(8),
        changes.div_ceil(8) as u64 * LATENCY_MS,
        ms(p.after)
    );
    println!(
        "  naive / concurrency 8 = {:.2}x",
        naive.wall.as_secs_f64() / concurrent.wall.as_secs_f64()
    );
}
