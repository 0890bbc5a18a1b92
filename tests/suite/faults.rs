//! Injected faults (SPEC §4.5, §10 "Reliable"): 5xx, 429 with `Retry-After`,
//! latency and dropped connections on every request to the sandbox, while
//! two rules change 80 of 200 keys and then let them go. Every key converges
//! within five runs, the sandbox's journal and the history agree one to one,
//! a change whose answer was lost ends `unknown`, is resolved by the next run
//! and keeps its claim, and `apply` exits 1 while something failed, 0 once
//! converged.

use crate::common;

use chrono::{TimeZone, Utc};
use common::{Harness, nov};
use keywarden::domain::{Field, FieldValue, LimitReset};
use keywarden::engine::{ChangeKind, Outcome};
use keywarden::run::{Resolved, RunReport};
use keywarden::sandbox::faults::{Faults, Latency, OneOrMany};
use keywarden::sandbox::{JournalEntry, SeedKey};
use keywarden::store::{ChangeRow, HistoryFilter};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Two rules over the `grp-*` keys, both holding while a key's monthly spend
/// is at least 1 USD: each key's two fields travel in one PATCH.
const RULES: &str = r#"
[[rule]]
name = "over-budget"
keys = { names = ["grp-*"] }
[rule.when]
budget = { usd = 1.0, window = "monthly" }
[rule.set]
disabled = true

[[rule]]
name = "slow-down"
keys = { names = ["grp-*"] }
[rule.when]
budget = { usd = 1.0, window = "monthly" }
[rule.set]
limit_reset = "daily"
"#;

const KEYS: usize = 200;
const CHANGED: usize = 80;
/// "Within a few runs" (SPEC §10).
const MAX_RUNS: usize = 5;

/// 80 `grp-*` keys that spent 2 USD this month (weekly reset), 120 others.
fn keys() -> Vec<SeedKey> {
    (0..KEYS)
        .map(|n| {
            if n < CHANGED {
                SeedKey {
                    name: format!("grp-{n:03}"),
                    limit_reset: Some(LimitReset::Weekly),
                    usage_monthly: 2.0,
                    ..SeedKey::default()
                }
            } else {
                SeedKey {
                    name: format!("other-{n:03}"),
                    ..SeedKey::default()
                }
            }
        })
        .collect()
}

/// 20% of requests 500/502/503, 10% 429 (the sandbox picks the status from
/// the list, so 5xx are twice as likely as 429), `Retry-After: 1`, 0–200 ms
/// of latency, and 10% of PATCHes applied and then left unanswered.
fn faults() -> Faults {
    let mut statuses = [500, 502, 503].repeat(2);
    statuses.extend([429; 3]);
    Faults {
        error_rate: Some(0.3),
        status: Some(OneOrMany::Many(statuses)),
        latency_ms: Some(Latency::Range([0, 200])),
        retry_after: Some(1),
        drop_rate: Some(0.1),
        ..Faults::default()
    }
}

/// The state the rules want for key `n` while they hold (`true`) or after
/// they let go (`false`).
fn wanted(holding: bool, n: usize) -> (bool, Option<&'static str>) {
    match (holding, n < CHANGED) {
        (true, true) => (true, Some("daily")),
        (_, true) => (false, Some("weekly")),
        (_, false) => (false, None),
    }
}

fn converged(h: &Harness, holding: bool) -> bool {
    (0..KEYS).all(|n| {
        let name = if n < CHANGED {
            format!("grp-{n:03}")
        } else {
            format!("other-{n:03}")
        };
        let key = h.key(&name);
        (key.disabled, key.limit_reset.as_deref()) == wanted(holding, n)
    })
}

/// The rows of run `run_id`.
async fn rows_of(h: &Harness, run_id: i64) -> Vec<ChangeRow> {
    let rows = h.history().await;
    rows.into_iter()
        .filter(|r| r.run_id == Some(run_id))
        .collect()
}

/// Whether the history shows run `run_id` failing somewhere.
async fn history_shows_failure(h: &Harness, run_id: i64) -> bool {
    rows_of(h, run_id)
        .await
        .iter()
        .any(|r| matches!(r.outcome, Outcome::Failed | Outcome::Unknown))
}

/// One in-process run; `failed()` must agree with what the history shows.
async fn apply(h: &Harness) -> RunReport {
    let report = h.apply().await;
    let failed_rows = history_shows_failure(h, report.run_id).await;
    assert_eq!(
        report.failed(),
        report.error.is_some() || failed_rows,
        "failed() disagrees with the history of run {}: {report:?}",
        report.run_id
    );
    report
}

/// The exit code, output and run id of `keywarden apply` (the binary).
struct BinaryRun {
    code: i32,
    stdout: String,
    stderr: String,
    /// The `run N:` it printed; none when the run could not start.
    run_id: Option<i64>,
}

/// Runs the binary `apply` against the harness's sandbox and database,
/// with `max_retries` retries (default backoff).
async fn apply_binary(h: &Harness, max_retries: u32) -> BinaryRun {
    let config = h.dir.path().join("keywarden.toml");
    std::fs::write(
        &config,
        format!(
            "[openrouter]\nmax_retries = {max_retries}\nmax_concurrency = 8\nrequests_per_second = 1000\n\n\
             [daemon]\nmax_disable_fraction = 1.0\nmax_changes_per_run = 1000\n"
        ),
    )
    .unwrap();
    let out = tokio::process::Command::from(common::keywarden())
        .arg("--config")
        .arg(&config)
        .arg("--database")
        .arg(h.config.database_path())
        .arg("apply")
        .env("KEYWARDEN_BASE_URL", h.sandbox.base_url())
        .env("OPENROUTER_MANAGEMENT_KEY", h.sandbox.management_key())
        .output()
        .await
        .unwrap();
    let stdout = common::text(&out.stdout);
    let stderr = common::text(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let run_id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("run ")?.split(':').next()?.parse().ok());
    BinaryRun {
        code: out.status.code().expect("exited, not killed"),
        stdout,
        stderr,
        run_id,
    }
}

/// Runs until every key is as the rules want (at most [`MAX_RUNS`], the
/// first of them `first`), then until a run finds nothing to do, which
/// must not count as failed. Returns the rows the runs resolved.
async fn converge(h: &Harness, holding: bool, first: Option<BinaryRun>) -> Vec<Resolved> {
    let mut runs = 0;
    let mut resolved = Vec::new();
    if let Some(run) = first {
        assert_eq!(
            run.code, 1,
            "faults make the first run fail:\n{}{}",
            run.stdout, run.stderr
        );
        let failed_rows = match run.run_id {
            Some(id) => history_shows_failure(h, id).await,
            None => false,
        };
        assert!(
            run.stderr.contains("error:") || failed_rows,
            "exit 1 without a failure:\n{}{}",
            run.stdout,
            run.stderr
        );
        runs += 1;
    }
    while !converged(h, holding) {
        assert!(
            runs < MAX_RUNS,
            "not converged after {MAX_RUNS} runs under faults"
        );
        resolved.extend(apply(h).await.resolved);
        runs += 1;
    }
    // Converged; a run that lists the keys now finds nothing to do (a few
    // tries, as listing itself meets the faults).
    for _ in 0..3 {
        let report = apply(h).await;
        resolved.extend(report.resolved.iter().copied());
        if report.error.is_none() {
            assert!(report.rows.is_empty(), "converged, yet {report:?}");
            assert!(!report.failed(), "{report:?}");
            return resolved;
        }
    }
    panic!("three runs in a row could not list the keys");
}

fn key_of(entry: &JournalEntry) -> &str {
    entry
        .path
        .strip_prefix("/api/v1/keys/")
        .expect("PATCH /api/v1/keys/{hash}")
}

/// The journal and the history agree one to one, key by key: every PATCH
/// the sandbox applied is one request (`request_id`) whose rows are
/// `applied` and carry exactly its body, and the rows' `attempts` count
/// every PATCH the sandbox received.
fn assert_journal_matches_history(journal: &[JournalEntry], rows: &[ChangeRow]) {
    let mut requests: BTreeMap<&str, Vec<&ChangeRow>> = BTreeMap::new();
    for row in rows {
        if let Some(id) = &row.request_id {
            requests.entry(id).or_default().push(row);
        }
    }
    #[derive(Default)]
    struct PerKey {
        applied_bodies: Vec<String>,
        attempts: u32,
    }
    let mut history: BTreeMap<&str, PerKey> = BTreeMap::new();
    for (id, rows) in &requests {
        let first = rows[0];
        for row in rows {
            assert_eq!(
                (row.key_hash.as_str(), row.outcome, row.attempts),
                (first.key_hash.as_str(), first.outcome, first.attempts),
                "the rows of {id} disagree"
            );
        }
        let entry = history.entry(&first.key_hash).or_default();
        entry.attempts += first.attempts;
        if first.outcome == Outcome::Applied {
            let body: serde_json::Map<String, serde_json::Value> = rows
                .iter()
                .flat_map(|r| &r.fields)
                .map(|(f, c)| (f.as_str().to_string(), c.to.to_json()))
                .collect();
            entry
                .applied_bodies
                .push(serde_json::Value::Object(body).to_string());
        }
        assert_ne!(first.outcome, Outcome::Pending, "{id} still pending");
        assert_ne!(first.outcome, Outcome::Unknown, "{id} left unresolved");
    }
    let mut sandbox: BTreeMap<&str, PerKey> = BTreeMap::new();
    for entry in journal {
        let per_key = sandbox.entry(key_of(entry)).or_default();
        per_key.attempts += 1;
        if entry.applied {
            per_key.applied_bodies.push(entry.body.to_string());
        }
    }
    let keys: BTreeSet<&str> = history.keys().chain(sandbox.keys()).copied().collect();
    assert_eq!(keys.len(), CHANGED, "only the grp-* keys were PATCHed");
    for key in keys {
        let (mut h, mut s) = (
            history.remove(key).unwrap_or_default(),
            sandbox.remove(key).unwrap_or_default(),
        );
        h.applied_bodies.sort();
        s.applied_bodies.sort();
        assert_eq!(
            s.applied_bodies, h.applied_bodies,
            "key {key}: PATCHes the sandbox applied vs applied requests in history"
        );
        assert_eq!(
            s.attempts, h.attempts,
            "key {key}: PATCHes received vs attempts recorded"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_faults_every_key_converges_and_history_matches_the_journal_one_to_one() {
    let mut h = Harness::new(nov(10), keys(), RULES, |c| {
        c.openrouter.max_retries = 3;
        c.openrouter.max_concurrency = 8;
        c.daemon.max_changes_per_run = 1000;
    })
    .await;
    h.runner.client = h
        .runner
        .client
        .clone()
        .with_min_backoff(Duration::from_millis(10));
    h.sandbox.account().set_faults(faults()).unwrap();
    h.sandbox.account().clear_requests();

    // The rules hold: the first run is the binary's, with one retry.
    let first = apply_binary(&h, 1).await;
    let resolved = converge(&h, true, Some(first)).await;

    // Changes whose answer was lost ended `unknown` and were resolved to
    // `applied` by a later run; they kept their claims.
    let mut dropped: BTreeSet<String> = BTreeSet::new();
    for Resolved { id, outcome } in &resolved {
        let row = h.store.change(*id).await.unwrap().unwrap();
        assert_eq!(*outcome, Outcome::Applied, "{row:?}");
        assert_eq!(row.outcome, Outcome::Applied, "{row:?}");
        dropped.insert(row.key_hash);
    }
    assert!(
        !dropped.is_empty(),
        "10% of PATCHes dropped, yet no unknown change was resolved"
    );
    let claims = h.store.claims().await.unwrap();
    for hash in &dropped {
        let fields: BTreeMap<Field, FieldValue> = claims
            .iter()
            .filter(|c| &c.key_hash == hash)
            .map(|c| (c.field, c.value))
            .collect();
        assert_eq!(
            fields,
            BTreeMap::from([
                (Field::Disabled, FieldValue::Disabled(true)),
                (
                    Field::LimitReset,
                    FieldValue::LimitReset(Some(LimitReset::Daily))
                ),
            ]),
            "the claims of {hash}, whose answer was dropped"
        );
    }

    // The month rolls over: the rules let go and every key is given back,
    // the ones whose answer was dropped included.
    let journal_before = h.sandbox.account().requests().len();
    h.sandbox
        .account()
        .set_now(Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap());
    converge(&h, false, None).await;
    let releases: Vec<JournalEntry> = h.sandbox.account().requests()[journal_before..]
        .iter()
        .filter(|e| e.method == "PATCH" && e.applied)
        .cloned()
        .collect();
    for hash in &dropped {
        let release: Vec<&JournalEntry> = releases.iter().filter(|e| key_of(e) == hash).collect();
        assert_eq!(release.len(), 1, "one release PATCH for {hash}");
        assert_eq!(
            release[0].body,
            serde_json::json!({"disabled": false, "limit_reset": "weekly"})
        );
    }
    assert!(h.store.claims().await.unwrap().is_empty());
    let rows = h.store.changes(&HistoryFilter::default()).await.unwrap();
    let released: BTreeSet<&str> = rows
        .iter()
        .filter(|r| r.kind == ChangeKind::Release && r.outcome == Outcome::Applied)
        .map(|r| r.key_hash.as_str())
        .collect();
    assert_eq!(released.len(), CHANGED);

    // Converged, still under faults: the binary exits 0 (with retries
    // enough to ride them out).
    let last = apply_binary(&h, 8).await;
    assert_eq!(last.code, 0, "{}{}", last.stdout, last.stderr);
    assert!(last.stdout.contains("no changes"), "{}", last.stdout);

    let journal: Vec<JournalEntry> = h
        .sandbox
        .account()
        .requests()
        .into_iter()
        .filter(|e| e.method == "PATCH")
        .collect();
    let rows = h.store.changes(&HistoryFilter::default()).await.unwrap();
    assert_journal_matches_history(&journal, &rows);
}
