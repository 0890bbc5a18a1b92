//! The SQLite store: every query, against a fresh database in a temp dir.

use crate::common::{migrated_before, raw};
use chrono::{DateTime, Utc};
use keywarden::domain::{Settings, Window};
use keywarden::engine::plan::BudgetReading;
use keywarden::rules::model::{Conditions, Origin, Rule, Selector};
use keywarden::store::Store;
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

pub(crate) fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

pub(crate) const T0: &str = "2026-11-27T10:00:00Z";

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("kw.db")).await.unwrap();
    (dir, store)
}

pub(crate) fn rule(name: &str, priority: i64) -> Rule {
    Rule {
        name: name.into(),
        description: None,
        enabled: true,
        priority,
        keys: Selector::All,
        schedule: None,
        timezone: None,
        when: Conditions::default(),
        set: Settings {
            disabled: Some(true),
            ..Settings::default()
        },
        warn_at: vec![],
        warn_before_secs: vec![],
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn database_and_its_wal_files_are_private() {
    let (dir, store) = store().await;
    store.start_run("manual", at(T0), false).await.unwrap();
    let db = dir.path().join("kw.db");
    assert_eq!(mode(&db), 0o600);
    for extra in ["kw.db-wal", "kw.db-shm"] {
        let p = dir.path().join(extra);
        assert!(p.exists(), "{extra} exists after a write");
        assert_eq!(mode(&p), 0o600, "{extra}");
    }
    assert!(store.schema_version().await.unwrap() >= 1);
}

#[tokio::test]
async fn backup_is_a_private_consistent_copy_and_never_overwrites() {
    let (dir, store) = store().await;
    store
        .sync_rules(&Origin::Cli, &[rule("a", 0)], false, at(T0))
        .await
        .unwrap();
    let target = dir.path().join("copy.db");
    store.backup_to(&target).await.unwrap();
    assert_eq!(mode(&target), 0o600);
    let copy = Store::open(&target).await.unwrap();
    assert_eq!(copy.rules().await.unwrap()[0].rule.name, "a");
    let err = store.backup_to(&target).await.unwrap_err();
    assert!(format!("{err:#}").contains("already exists"), "{err:#}");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".keywarden-backup"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn migration_4_moves_budget_readings_out_of_run_notes_into_their_table() {
    // A database at migration 3, with a run whose notes hold two readings.
    let dir = tempfile::tempdir().unwrap();
    let (path, pool) = migrated_before(dir.path(), 4).await;
    let notes = serde_json::json!({
        "skips": [],
        "budgets": [
            {"rule": "team", "key_hash": null, "window": "monthly", "spend_usd": 55.0, "budget_usd": 50.0},
            {"rule": "each", "key_hash": "k1", "window": "daily", "spend_usd": 1.5, "budget_usd": 2.0},
        ],
    });
    sqlx::query(
        "INSERT INTO runs (id, started_at, trigger, status, notes)
         VALUES (1, '2026-11-27T10:00:00Z', 'schedule', 'ok', ?)",
    )
    .bind(notes.to_string())
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let store = Store::open(&path).await.unwrap();
    assert!(store.schema_version().await.unwrap() >= 4);
    let points = store
        .report_budget_points(
            at("2026-11-27T00:00:00Z"),
            at("2026-11-28T00:00:00Z"),
            keywarden::store::report::Bucket::Rule,
        )
        .await
        .unwrap();
    let seen: Vec<(&str, &str, f64, f64)> = points
        .iter()
        .map(|p| {
            (
                p.rule.as_str(),
                p.window.as_str(),
                p.spend_usd,
                p.budget_usd,
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![("each", "daily", 1.5, 2.0), ("team", "monthly", 55.0, 50.0)]
    );
    assert_eq!(points[0].at, at("2026-11-27T10:00:00Z"));
    let pool = raw(&path).await;
    let (key, notes): (Option<String>, String) = sqlx::query_as(
        "SELECT (SELECT key_hash FROM budget_readings WHERE rule = 'each'), notes FROM runs",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(key.as_deref(), Some("k1"));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&notes).unwrap(),
        serde_json::json!({"skips": []}),
        "the readings are kept once, in their table"
    );
}

pub(crate) fn reading(rule: &str, key_hash: Option<&str>, spend_usd: f64) -> BudgetReading {
    BudgetReading {
        rule: rule.into(),
        key_hash: key_hash.map(Into::into),
        window: Window::Daily,
        spend_usd,
        budget_usd: 10.0,
    }
}

#[tokio::test]
async fn migration_6_remembers_when_each_rules_readings_were_last_recorded() {
    // A database at migration 5 with readings of two rules.
    let dir = tempfile::tempdir().unwrap();
    let (path, pool) = migrated_before(dir.path(), 6).await;
    for (run, started) in [(1, "2026-11-27T09:00:00Z"), (2, "2026-11-27T09:50:00Z")] {
        sqlx::query(
            "INSERT INTO runs (id, started_at, trigger, status) VALUES (?, ?, 'schedule', 'ok')",
        )
        .bind(run)
        .bind(started)
        .execute(&pool)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO budget_readings (run_id, at, rule, key_hash, window, spend_usd, budget_usd)
         VALUES (1, '2026-11-27T09:00:00Z', 'old', NULL, 'daily', 1.0, 10.0),
                (1, '2026-11-27T09:00:00Z', 'recent', 'k1', 'daily', 1.0, 10.0),
                (2, '2026-11-27T09:50:00Z', 'recent', 'k1', 'daily', 2.0, 10.0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let store = Store::open(&path).await.unwrap();
    let run = store.start_run("schedule", at(T0), false).await.unwrap();
    let written = store
        .record_budget_readings(
            run,
            at(T0),
            &[
                reading("old", None, 3.0),
                reading("recent", Some("k1"), 3.0),
            ],
            &BTreeSet::new(),
            std::time::Duration::from_secs(15 * 60),
        )
        .await
        .unwrap();
    assert_eq!(written, 1, "only the rule last recorded an hour ago");
    let pool = raw(&path).await;
    let marks: Vec<(String, String)> =
        sqlx::query_as("SELECT rule, at FROM budget_reading_marks ORDER BY rule")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        marks,
        [("old", T0), ("recent", "2026-11-27T09:50:00Z")]
            .map(|(r, a)| (r.to_string(), a.to_string()))
            .to_vec()
    );
}

crate::on_both_backends! {
    async fn a_fresh_database_is_migrated_on_either_backend(backend) {
        let (_place, store) = crate::common::backends::fresh_store(backend).await.unwrap();
        assert!(store.schema_version().await.unwrap() >= 1);
    }
}
