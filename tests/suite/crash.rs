//! Crash consistency (SPEC §4.5, §10 "Reliable"): `keywarden apply` (the
//! service's runner, in its own process) is killed with SIGKILL at
//! pseudo-random points of a run of 500 changes against a sandbox that takes
//! 100 ms a request; after each restart the run completes, no history row
//! is lost, none stays `pending`, no key is PATCHed twice for one change and
//! the claims match the keys. `rules import` and `db backup` killed midway
//! leave a database that passes `PRAGMA integrity_check`, and a backup that
//! is either absent or complete.

use chrono::Utc;
use keywarden::domain::{Field, FieldValue};
use keywarden::rules::model::Origin;
use keywarden::sandbox::faults::{Faults, Latency};
use keywarden::sandbox::{Sandbox, SandboxOptions, SeedKey};
use keywarden::store::{HistoryFilter, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::Connection as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// Keys the rule changes, and keys it leaves alone.
const CHANGED: usize = 500;
const OTHERS: usize = 20;
/// SIGKILLs of a run.
const KILLS: usize = 10;

/// A test's directory, config and database.
struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    database: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("keywarden.toml");
        std::fs::write(
            &config,
            "[openrouter]\nmax_concurrency = 16\nrequests_per_second = 1000\nmax_retries = 2\n\n\
             [daemon]\nmax_disable_fraction = 1.0\nmax_changes_per_run = 1000\n",
        )
        .unwrap();
        let database = dir.path().join("keywarden.db");
        Setup {
            dir,
            config,
            database,
        }
    }

    /// `keywarden --config … --database DB ARGS`, against `sandbox` if given,
    /// its output discarded.
    fn command(&self, database: &Path, sandbox: Option<&Sandbox>, args: &[&str]) -> Command {
        let mut cmd = Command::from(crate::common::keywarden());
        cmd.arg("--config")
            .arg(&self.config)
            .arg("--database")
            .arg(database)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(sandbox) = sandbox {
            cmd.env("KEYWARDEN_BASE_URL", sandbox.base_url())
                .env("OPENROUTER_MANAGEMENT_KEY", sandbox.management_key());
        }
        cmd
    }
}

/// Runs `cmd` to its end; panics unless it exits 0.
async fn complete(mut cmd: Command) {
    let out = cmd.output().await.unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits `delay` (or for the child's own end), then SIGKILLs it. Returns
/// whether it was killed (rather than already done).
async fn kill_after(child: &mut Child, delay: Duration) -> bool {
    tokio::select! {
        _ = child.wait() => false,
        _ = tokio::time::sleep(delay) => {
            child.start_kill().unwrap();
            child.wait().await.unwrap();
            true
        }
    }
}

/// The same delays on every run of the suite.
fn delays(seed: u64, n: usize, within: Duration) -> Vec<Duration> {
    let mut rng = StdRng::seed_from_u64(seed);
    let ms = within.as_millis() as u64;
    (0..n)
        .map(|_| Duration::from_millis(rng.gen_range(ms / 50..ms)))
        .collect()
}

/// `PRAGMA integrity_check` of the database at `path`, opened as the next
/// keywarden would (recovering its WAL).
async fn integrity(path: &Path) -> String {
    let mut conn = SqliteConnection::connect_with(
        &SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(false),
    )
    .await
    .unwrap();
    let verdict: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    verdict
}

/// `SELECT COUNT(*) FROM table` in the database at `path`.
async fn count(path: &Path, table: &str) -> i64 {
    let mut conn = SqliteConnection::connect_with(
        &SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(false),
    )
    .await
    .unwrap();
    let n = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    n
}

fn freeze_rule(enabled: bool) -> String {
    format!(
        r#"[[rule]]
name = "freeze"
enabled = {enabled}
keys = {{ names = ["crash-*"] }}
[rule.set]
disabled = true
"#
    )
}

async fn change_ids(store: &Store) -> BTreeSet<i64> {
    store
        .changes(&HistoryFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_killed_at_random_points_loses_nothing_and_doubles_nothing() {
    let seed_keys = (0..CHANGED)
        .map(|n| format!("crash-{n:03}"))
        .chain((0..OTHERS).map(|n| format!("other-{n:02}")))
        .map(|name| SeedKey {
            name,
            ..SeedKey::default()
        })
        .collect();
    let sandbox = Sandbox::start(
        "127.0.0.1:0",
        SandboxOptions {
            seed_keys,
            ..SandboxOptions::default()
        },
    )
    .await
    .unwrap();
    let account = sandbox.account().clone();
    account
        .set_faults(Faults {
            latency_ms: Some(Latency::Fixed(100)),
            ..Faults::default()
        })
        .unwrap();
    let setup = Setup::new();
    let store = Store::open(&setup.database).await.unwrap();
    let origin = Origin::File("rules.toml".into());

    // 500 PATCHes of 100 ms, 16 at a time: a run takes at least 3.3 s
    // (with the listing), so every kill lands inside one.
    for (i, delay) in delays(0x6b77, KILLS, Duration::from_millis(3000))
        .into_iter()
        .enumerate()
    {
        // The rule holds on even rounds (500 asserts) and is disabled on
        // odd ones (500 releases).
        let holding = i % 2 == 0;
        let rules = keywarden::rules::parse_rules("rules.toml", &freeze_rule(holding)).unwrap();
        store
            .sync_rules(&origin, &rules.rules, true, Utc::now())
            .await
            .unwrap();

        let mut child = setup
            .command(&setup.database, Some(&sandbox), &["apply"])
            .spawn()
            .unwrap();
        let mut seen = BTreeSet::new();
        let killed = tokio::select! {
            _ = child.wait() => false,
            _ = tokio::time::sleep(delay) => {
                seen = change_ids(&store).await;
                child.start_kill().unwrap();
                child.wait().await.unwrap();
                true
            }
        };
        assert!(killed, "round {i}: the run ended before {delay:?}");

        // The restarted run completes.
        complete(setup.command(&setup.database, Some(&sandbox), &["apply"])).await;

        let after = change_ids(&store).await;
        assert!(
            seen.is_subset(&after),
            "round {i}: rows lost: {:?}",
            seen.difference(&after).collect::<Vec<_>>()
        );
        assert_eq!(
            store.open_changes().await.unwrap(),
            vec![],
            "round {i}: rows left pending or unknown"
        );
        for key in account.keys() {
            let wanted = holding && key.name.starts_with("crash-");
            assert_eq!(key.disabled, wanted, "round {i}: {}", key.name);
        }
        let claims = store.claims().await.unwrap();
        assert_eq!(claims.len(), if holding { CHANGED } else { 0 }, "round {i}");
        for claim in &claims {
            let key = account.key(&claim.key_hash).unwrap();
            assert_eq!(claim.field, Field::Disabled);
            assert_eq!(
                key.get(claim.field),
                claim.value,
                "round {i}: claim on {}",
                key.name
            );
            assert_eq!(claim.original, FieldValue::Disabled(false));
        }
    }

    // One applied PATCH per applied request, alternating between disabling
    // and enabling: no key was PATCHed twice for one change.
    let mut applied_requests: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for row in store.changes(&HistoryFilter::default()).await.unwrap() {
        if row.outcome == keywarden::engine::Outcome::Applied {
            applied_requests
                .entry(row.key_hash)
                .or_default()
                .insert(row.request_id.expect("an applied change has a request"));
        }
    }
    let mut bodies: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for entry in account.requests() {
        if entry.method == "PATCH" && entry.applied {
            let hash = entry.path.rsplit('/').next().unwrap().to_string();
            bodies.entry(hash).or_default().push(entry.body);
        }
    }
    assert_eq!(bodies.len(), CHANGED);
    for (hash, bodies) in &bodies {
        assert_eq!(bodies.len(), KILLS, "{hash}: {bodies:?}");
        assert_eq!(applied_requests[hash].len(), KILLS, "{hash}");
        for (n, body) in bodies.iter().enumerate() {
            assert_eq!(*body, serde_json::json!({"disabled": n % 2 == 0}), "{hash}");
        }
    }
}

/// `rules import` of 2,000 rules, killed at pseudo-random points: the
/// database passes its integrity check and holds all of the rules or none.
/// (Distinct priorities keep the pairwise conflict check, quadratic and
/// slow in a debug build, out of the way of the database work.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_rules_import_leaves_the_database_consistent_and_all_or_nothing() {
    const RULES: usize = 2000;
    let setup = Setup::new();
    let file = setup.dir.path().join("many-rules.toml");
    let text: String = (0..RULES)
        .map(|n| {
            format!(
                "[[rule]]\nname = \"rule-{n:04}\"\npriority = {n}\nkeys = {{ names = [\"team-{n}-*\"] }}\n\
                 [rule.when]\nbudget = {{ usd = {n}.5, window = \"monthly\" }}\n\
                 [rule.set]\ndisabled = true\n\n"
            )
        })
        .collect();
    std::fs::write(&file, text).unwrap();
    let import = |db: &Path| {
        setup.command(
            db,
            None,
            &["rules", "import", file.to_str().unwrap(), "--prune"],
        )
    };

    // How long a whole import takes here.
    let whole = setup.dir.path().join("whole.db");
    complete(setup.command(&whole, None, &["db", "migrate"])).await;
    let started = Instant::now();
    complete(import(&whole)).await;
    let took = started.elapsed();
    assert_eq!(count(&whole, "rules").await, RULES as i64);

    for (i, delay) in delays(0x1309, 4, took).into_iter().enumerate() {
        let db = setup.dir.path().join(format!("import-{i}.db"));
        complete(setup.command(&db, None, &["db", "migrate"])).await;
        let mut child = import(&db).spawn().unwrap();
        kill_after(&mut child, delay).await;
        assert_eq!(integrity(&db).await, "ok", "killed after {delay:?}");
        let rules = count(&db, "rules").await;
        assert!(
            rules == 0 || rules == RULES as i64,
            "killed after {delay:?}: {rules} rules"
        );
        assert_eq!(count(&db, "rule_revisions").await, rules);
        // Importing again completes.
        complete(import(&db)).await;
        assert_eq!(count(&db, "rules").await, RULES as i64);
        assert_eq!(integrity(&db).await, "ok");
    }
}

/// `db backup` of a large history, killed at pseudo-random points: the
/// database passes its integrity check and the backup is either absent or a
/// complete database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_backup_leaves_no_partial_copy() {
    const ROWS: i64 = 50_000;
    let setup = Setup::new();
    let store = Store::open(&setup.database).await.unwrap();
    store.close().await;
    {
        let mut conn =
            SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(&setup.database))
                .await
                .unwrap();
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
             INSERT INTO changes (at, rule, key_hash, key_name, kind, fields, reason, outcome,
                                  http_status, attempts, request_id)
             SELECT '2026-11-' || printf('%02d', 1 + i % 28) || 'T10:00:00Z', 'rule-' || (i % 50),
                    printf('%064x', i % 5000), 'key-' || (i % 5000), 'assert',
                    '{\"disabled\":{\"from\":false,\"to\":true}}',
                    'monthly spend 12.00 USD >= budget 10.00 USD', 'applied', 200, 1, 'req-' || i
             FROM n",
        )
        .bind(ROWS)
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
    }
    let backup = |target: &Path| {
        setup.command(
            &setup.database,
            None,
            &["db", "backup", target.to_str().unwrap()],
        )
    };

    let whole = setup.dir.path().join("whole-backup.db");
    let started = Instant::now();
    complete(backup(&whole)).await;
    let took = started.elapsed();
    assert_eq!(integrity(&whole).await, "ok");
    assert_eq!(count(&whole, "changes").await, ROWS);

    for (i, delay) in delays(0xb4c, 5, took).into_iter().enumerate() {
        let target = setup.dir.path().join(format!("backup-{i}.db"));
        let mut child = backup(&target).spawn().unwrap();
        let killed = kill_after(&mut child, delay).await;
        assert_eq!(
            integrity(&setup.database).await,
            "ok",
            "killed after {delay:?}"
        );
        if target.exists() {
            assert_eq!(integrity(&target).await, "ok", "killed after {delay:?}");
            assert_eq!(count(&target, "changes").await, ROWS);
        } else {
            assert!(killed, "the backup ended without writing {target:?}");
        }
    }
    assert_eq!(count(&setup.database, "changes").await, ROWS);
}
