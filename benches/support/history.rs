//! The history fixture the storage and dashboard benchmarks share: a
//! database of 1,000,000 change rows, their runs and budget readings, and
//! 5,000,000 snapshots, generated in SQL once and kept in
//! `target/bench-fixtures/`.

use chrono::{DateTime, TimeZone, Utc};
use keywarden::store::Store;
use sqlx::{ConnectOptions as _, Connection as _};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Change rows in the fixture.
pub const CHANGE_ROWS: i64 = 1_000_000;
/// Snapshot rows in the fixture.
pub const SNAPSHOT_ROWS: i64 = 5_000_000;
/// Keys the fixture's history is about.
pub const FIXTURE_KEYS: i64 = 2_000;
/// Changes a fixture run records.
pub const CHANGES_PER_RUN: i64 = 10;
/// Runs are 5 minutes apart.
pub const RUN_EVERY_SECS: i64 = 300;

/// The fixture's first run.
pub fn fixture_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
}

/// SQL that fills a fresh database with the report fixture: runs every five
/// minutes with two budget readings each (a group's and a key's), ten
/// changes a run over 2,000 keys (disable / re-enable / limit / release
/// cycles, one in fifty failed), and 5,000,000 snapshots. Each applied
/// change that moves `disabled` carries its `disabled_move` as
/// `record_changes`/`complete_changes` set it (1 opens, 0 closes a period),
/// and the changes are tallied as they would tally them (all are settled).
pub fn fixture_sql() -> String {
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
                     http_status, attempts, request_id, disabled_move)
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
       'req-' || i,
       CASE WHEN i % 50 = 49 THEN NULL
            WHEN (i / {FIXTURE_KEYS}) % 4 = 0 THEN 1
            WHEN (i / {FIXTURE_KEYS}) % 4 = 1 THEN 0 END
FROM n;

INSERT INTO change_tallies (at, kind, outcome, n)
SELECT at, kind, outcome, COUNT(*) FROM changes GROUP BY at, kind, outcome;

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
pub async fn fixture() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-fixtures");
    let path = dir.join(format!(
        "report-v4-{CHANGE_ROWS}-changes-{SNAPSHOT_ROWS}-snapshots.db"
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
