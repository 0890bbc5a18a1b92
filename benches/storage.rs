//! SPEC §10 storage figures: recording the history of a 10,000-change run
//! (`record_changes` in one transaction, then `complete_changes`; target
//! < 200 ms), and `report::build` over 1,000,000 change rows and 5,000,000
//! snapshots (target < 1 s). The big database is generated in SQL once and
//! kept in `target/bench-fixtures/`.

mod support;

use chrono::{DateTime, Duration as Days, TimeZone, Utc};
use keywarden::domain::{Field, FieldValue};
use keywarden::engine::plan::FieldChange;
use keywarden::engine::{Change, ChangeKind, Outcome};
use keywarden::report::GroupBy;
use keywarden::store::Store;
use sqlx::{ConnectOptions as _, Connection as _};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const RUN_CHANGES: usize = 10_000;
const CHANGE_ROWS: i64 = 1_000_000;
const SNAPSHOT_ROWS: i64 = 5_000_000;
const FIXTURE_KEYS: i64 = 2_000;
/// Changes a fixture run records; runs are 5 minutes apart.
const CHANGES_PER_RUN: i64 = 10;
const RUN_EVERY_SECS: i64 = 300;

/// The fixture's first run.
fn fixture_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
}

/// The history of one run that disables `RUN_CHANGES` keys.
fn run_changes() -> Vec<Change> {
    (0..RUN_CHANGES)
        .map(|i| Change {
            key_hash: format!("{i:064x}"),
            key_name: format!("team-a-{i:05}"),
            rule: format!("rule-{:02}", i % 20),
            kind: ChangeKind::Assert,
            fields: BTreeMap::from([(
                Field::Disabled,
                FieldChange {
                    from: FieldValue::Disabled(false),
                    to: FieldValue::Disabled(true),
                },
            )]),
            reason: "daily spend 2.00 USD reached the budget of 1.00 USD".into(),
            held: None,
        })
        .collect()
}

/// Times recording one run's history into a fresh database.
async fn record_run() -> (Duration, Duration) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open(&dir.path().join("keywarden.db"))
        .await
        .expect("opens");
    let changes = run_changes();
    let now = support::start();
    let run = store.start_run("manual", now, false).await.expect("a run");
    let started = Instant::now();
    let ids = store
        .record_changes(Some(run), now, &changes, None)
        .await
        .expect("records");
    let recorded = started.elapsed();
    store
        .complete_changes(&ids, Outcome::Applied, Some(200), 1, None)
        .await
        .expect("completes");
    let total = started.elapsed();
    store.close().await;
    (recorded, total)
}

/// SQL that fills a fresh database with the report fixture: runs every five
/// minutes with two budget readings each (a group's and a key's), ten
/// changes a run over 2,000 keys (disable / re-enable / limit / release
/// cycles, one in fifty failed), and 5,000,000 snapshots.
fn fixture_sql() -> String {
    let start = fixture_start().timestamp();
    let runs = CHANGE_ROWS / CHANGES_PER_RUN;
    format!(
        "
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {runs} - 1)
INSERT INTO runs (id, started_at, finished_at, trigger, keys_seen, rules_evaluated, changes,
                  applied, status, notes)
SELECT i + 1,
       strftime('%Y-%m-%dT%H:%M:%SZ', {start} + i * {RUN_EVERY_SECS}, 'unixepoch'),
       strftime('%Y-%m-%dT%H:%M:%SZ', {start} + i * {RUN_EVERY_SECS} + 2, 'unixepoch'),
       'schedule', {FIXTURE_KEYS}, 20, {CHANGES_PER_RUN}, {CHANGES_PER_RUN}, 'ok',
       json_object('skips', json_array(), 'conflicts', json_array(), 'resolved', json_array())
FROM n;

INSERT INTO budget_readings (run_id, at, rule, key_hash, window, spend_usd, budget_usd)
SELECT id, started_at, 'rule-' || printf('%02d', (id - 1) % 20), NULL, 'monthly',
       ((id - 1) % 8640) * 0.01, 50.0
FROM runs;
INSERT INTO budget_readings (run_id, at, rule, key_hash, window, spend_usd, budget_usd)
SELECT id, started_at, 'rule-' || printf('%02d', id % 20), printf('%064x', (id - 1) % {FIXTURE_KEYS}),
       'daily', ((id - 1) % 288) * 0.01, 2.0
FROM runs;

WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {CHANGE_ROWS} - 1)
INSERT INTO changes (run_id, at, rule, key_hash, key_name, kind, fields, reason, outcome,
                     http_status, attempts, request_id)
SELECT i / {CHANGES_PER_RUN} + 1,
       strftime('%Y-%m-%dT%H:%M:%SZ', {start} + (i / {CHANGES_PER_RUN}) * {RUN_EVERY_SECS}, 'unixepoch'),
       'rule-' || printf('%02d', (i % {FIXTURE_KEYS}) % 20),
       printf('%064x', i % {FIXTURE_KEYS}),
       'key-' || printf('%04d', i % {FIXTURE_KEYS}),
       CASE (i / {FIXTURE_KEYS}) % 4 WHEN 0 THEN 'assert' WHEN 1 THEN 'release'
                                     WHEN 2 THEN 'assert' ELSE 'release' END,
       CASE (i / {FIXTURE_KEYS}) % 4
         WHEN 0 THEN '{{\"disabled\":{{\"from\":false,\"to\":true}}}}'
         WHEN 1 THEN '{{\"disabled\":{{\"from\":true,\"to\":false}}}}'
         WHEN 2 THEN '{{\"limit\":{{\"from\":10.0,\"to\":5.0}}}}'
         ELSE '{{\"limit\":{{\"from\":5.0,\"to\":10.0}}}}' END,
       'budget reached',
       CASE WHEN i % 50 = 49 THEN 'failed' ELSE 'applied' END,
       CASE WHEN i % 50 = 49 THEN 503 ELSE 200 END,
       1,
       'req-' || i
FROM n;

WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {SNAPSHOT_ROWS} - 1)
INSERT INTO snapshots (at, key_hash, disabled, limit_usd, limit_remaining, usage, usage_daily,
                       usage_weekly, usage_monthly, byok_usage, byok_usage_daily,
                       byok_usage_weekly, byok_usage_monthly)
SELECT strftime('%Y-%m-%dT%H:%M:%SZ',
                {start} + (i / {FIXTURE_KEYS}) * ({runs} * {RUN_EVERY_SECS} / ({SNAPSHOT_ROWS} / {FIXTURE_KEYS})),
                'unixepoch'),
       printf('%064x', i % {FIXTURE_KEYS}), i % 7 = 0, 10.0, 5.0, i * 0.001, (i % 97) * 0.01,
       (i % 101) * 0.1, (i % 103) * 0.3, 0.0, 0.0, 0.0, 0.0
FROM n;
"
    )
}

/// The fixture database, generated once (about a minute) and then reused.
async fn fixture() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-fixtures");
    let path = dir.join(format!(
        "report-v2-{CHANGE_ROWS}-changes-{SNAPSHOT_ROWS}-snapshots.db"
    ));
    if path.exists() {
        return path;
    }
    std::fs::create_dir_all(&dir).expect("creates target/bench-fixtures");
    let partial = dir.join("report-fixture.partial.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", partial.display()));
    }
    let started = Instant::now();
    // The schema comes from the migrations; the rows from one script.
    Store::open(&partial).await.expect("opens").close().await;
    let mut db = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&partial)
        .connect()
        .await
        .expect("connects");
    sqlx::raw_sql(&format!("BEGIN;\n{}\nCOMMIT;", fixture_sql()))
        .execute(&mut db)
        .await
        .expect("generates the fixture");
    db.close().await.expect("closes");
    std::fs::rename(&partial, &path).expect("keeps the fixture");
    println!(
        "storage: generated {} in {:.1} s",
        path.display(),
        started.elapsed().as_secs_f64()
    );
    path
}

/// Times `report::build` for `[since, until)` by `group_by` (best of three).
async fn time_report(
    store: &Store,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    group_by: GroupBy,
) -> (Duration, i64) {
    let mut best = Duration::MAX;
    let mut changes = 0;
    for _ in 0..3 {
        let started = Instant::now();
        let report = keywarden::report::build(store, since, until, group_by)
            .await
            .expect("the report builds");
        best = best.min(started.elapsed());
        changes = report.totals.changes;
    }
    (best, changes)
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let (recorded, total) = record_run().await;
        let path = fixture().await;
        let store = Store::open(&path).await.expect("opens the fixture");
        let end = fixture_start() + Days::seconds(CHANGE_ROWS / CHANGES_PER_RUN * RUN_EVERY_SECS);
        let month = time_report(&store, end - Days::days(30), end, GroupBy::Rule).await;
        let year = time_report(&store, fixture_start(), end, GroupBy::Month).await;
        let by_key = time_report(&store, end - Days::days(30), end, GroupBy::Key).await;
        store.close().await;

        let target = |t: Duration, limit: Duration| {
            format!(
                "< {} ms: {}",
                limit.as_millis(),
                support::verdict(t < limit)
            )
        };
        let ms = |t: Duration| t.as_secs_f64() * 1e3;
        let run_target = Duration::from_millis(200);
        let report_target = Duration::from_secs(1);
        println!("\nstorage");
        println!("{:<62} {:>10}  target", "figure", "time");
        println!(
            "{:<62} {:>7.1} ms  (part of the next)",
            format!("record_changes: {RUN_CHANGES} rows, one transaction"),
            ms(recorded)
        );
        println!(
            "{:<62} {:>7.1} ms  {}",
            format!("record_changes + complete_changes of {RUN_CHANGES} rows"),
            ms(total),
            target(total, run_target)
        );
        for (what, (t, n)) in [
            ("report, last 30 days by rule", month),
            ("report, whole year by month", year),
            ("report, last 30 days by key", by_key),
        ] {
            println!(
                "{:<62} {:>7.1} ms  {}",
                format!("{what} ({n} changes of {CHANGE_ROWS}; {SNAPSHOT_ROWS} snapshots)"),
                ms(t),
                target(t, report_target)
            );
        }
    });
}
