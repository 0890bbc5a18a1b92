//! The SQLite store: every query, against a fresh database in a temp dir.

use crate::common::{migrated_before, raw};
use chrono::{DateTime, Duration, Utc};
use keywarden::domain::{Key, Settings, Window};
use keywarden::engine::plan::BudgetReading;
use keywarden::rules::model::{Conditions, Origin, Rule, Selector};
use keywarden::store::Store;
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

const T0: &str = "2026-11-27T10:00:00Z";

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("kw.db")).await.unwrap();
    (dir, store)
}

fn rule(name: &str, priority: i64) -> Rule {
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

fn file(path: &str) -> Origin {
    Origin::File(path.into())
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
async fn sync_adds_updates_leaves_and_prunes_a_files_rules() {
    let (_dir, store) = store().await;
    let a = file("/etc/a.toml");
    let s = store
        .sync_rules(&a, &[rule("r2", 0), rule("r1", 0)], false, at(T0))
        .await
        .unwrap();
    assert_eq!(s.added, ["r1", "r2"]);
    assert!(s.updated.is_empty() && s.removed.is_empty() && s.unchanged.is_empty());

    let t1 = at(T0) + Duration::hours(1);
    let s = store
        .sync_rules(
            &a,
            &[rule("r1", 5), rule("r2", 0), rule("r3", 0)],
            false,
            t1,
        )
        .await
        .unwrap();
    assert_eq!(
        (s.added, s.updated, s.unchanged),
        (
            vec!["r3".to_string()],
            vec!["r1".to_string()],
            vec!["r2".to_string()]
        )
    );

    let stored = store.rule("r1").await.unwrap().unwrap();
    assert_eq!(stored.rule.priority, 5);
    assert_eq!(stored.origin, a);
    assert_eq!((stored.created_at, stored.updated_at), (at(T0), t1));

    // Without prune, a rule missing from the file stays; with prune it goes.
    let s = store
        .sync_rules(&a, &[rule("r1", 5)], false, t1)
        .await
        .unwrap();
    assert!(s.removed.is_empty());
    let s = store
        .sync_rules(&a, &[rule("r1", 5)], true, t1)
        .await
        .unwrap();
    assert_eq!(s.removed, ["r2", "r3"]);
    assert_eq!(s.unchanged, ["r1"]);
    let names: Vec<_> = store
        .rules()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.rule.name)
        .collect();
    assert_eq!(names, ["r1"]);

    let revisions = store.revisions(Some("r1")).await.unwrap();
    assert_eq!(revisions.len(), 2);
    assert_eq!(revisions[0].before, None);
    assert_eq!(revisions[0].who, "file:/etc/a.toml");
    assert_eq!(revisions[1].before.as_ref().unwrap().priority, 0);
    assert_eq!(revisions[1].after.as_ref().unwrap().priority, 5);
    let removed = store.revisions(Some("r3")).await.unwrap();
    assert_eq!(removed.last().unwrap().after, None);
    // r1, r2, r3 added; r1 updated; r2, r3 removed.
    assert_eq!(store.revisions(None).await.unwrap().len(), 6);
}

#[tokio::test]
async fn one_file_never_touches_another_files_rules() {
    let (_dir, store) = store().await;
    let (a, b) = (file("/etc/a.toml"), file("/etc/b.toml"));
    store
        .sync_rules(&a, &[rule("from-a", 0)], false, at(T0))
        .await
        .unwrap();
    store
        .sync_rules(&b, &[rule("from-b", 0)], true, at(T0))
        .await
        .unwrap();
    assert!(
        store.rule("from-a").await.unwrap().is_some(),
        "pruning b leaves a's rules"
    );

    let err = store
        .sync_rules(&b, &[rule("new", 0), rule("from-a", 3)], false, at(T0))
        .await
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("/etc/a.toml") && msg.contains("/etc/b.toml") && msg.contains("from-a"),
        "{msg}"
    );
    assert!(
        store.rule("new").await.unwrap().is_none(),
        "a failed sync changes nothing"
    );
    assert_eq!(
        store.rule("from-a").await.unwrap().unwrap().rule.priority,
        0
    );
}

#[tokio::test]
async fn a_file_takes_over_a_cli_rule_of_the_same_name() {
    let (_dir, store) = store().await;
    let a = file("/etc/a.toml");
    store
        .sync_rules(&Origin::Cli, &[rule("shared", 0)], false, at(T0))
        .await
        .unwrap();
    let s = store
        .sync_rules(&a, &[rule("shared", 0)], false, at(T0))
        .await
        .unwrap();
    assert_eq!(s.updated, ["shared"]);
    assert_eq!(store.rule("shared").await.unwrap().unwrap().origin, a);
    let revisions = store.revisions(Some("shared")).await.unwrap();
    assert_eq!(
        revisions.iter().map(|r| r.who.as_str()).collect::<Vec<_>>(),
        ["cli", "file:/etc/a.toml"]
    );
}

#[tokio::test]
async fn enabling_disabling_and_removing_rules_record_revisions() {
    let (_dir, store) = store().await;
    let a = file("/etc/a.toml");
    store
        .sync_rules(&a, &[rule("r", 0)], false, at(T0))
        .await
        .unwrap();
    assert!(
        store
            .set_rule_enabled("r", false, &Origin::Cli, at(T0))
            .await
            .unwrap()
    );
    let stored = store.rule("r").await.unwrap().unwrap();
    assert!(!stored.rule.enabled);
    assert_eq!(stored.origin, a, "the file still owns it");
    assert!(
        !store
            .set_rule_enabled("nope", false, &Origin::Cli, at(T0))
            .await
            .unwrap()
    );
    assert!(store.remove_rule("r", &Origin::Cli, at(T0)).await.unwrap());
    assert!(!store.remove_rule("r", &Origin::Cli, at(T0)).await.unwrap());
    let whos: Vec<_> = store
        .revisions(Some("r"))
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.who, r.after.map(|a| a.enabled)))
        .collect();
    assert_eq!(
        whos,
        [
            ("file:/etc/a.toml".into(), Some(true)),
            ("cli".into(), Some(false)),
            ("cli".into(), None)
        ]
    );
}

#[tokio::test]
async fn rule_state_round_trips_and_is_replaced() {
    let (_dir, store) = store().await;
    let holding: BTreeSet<String> = ["k1".to_string(), "k2".to_string()].into();
    store
        .save_rule_state("r", at(T0), holding.iter().map(String::as_str))
        .await
        .unwrap();
    store.save_rule_state("q", at(T0), []).await.unwrap();
    let later = at(T0) + Duration::minutes(5);
    store.save_rule_state("r", later, ["k3"]).await.unwrap();
    let states = store.rule_states().await.unwrap();
    assert_eq!(states.len(), 2);
    assert_eq!(states["r"], (later, ["k3".to_string()].into()));
    assert_eq!(states["q"], (at(T0), BTreeSet::new()));
}

#[tokio::test]
async fn a_source_outage_is_reported_once_and_ends_with_a_good_value() {
    let (_dir, store) = store().await;
    assert_eq!(store.source_value("env:B").await.unwrap(), None);
    assert!(
        store
            .save_source_error("env:B", "not set", at(T0))
            .await
            .unwrap(),
        "first failure starts an outage"
    );
    assert_eq!(store.source_value("env:B").await.unwrap(), None);
    store
        .save_source_value("env:B", 50.0, at(T0) + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(
        store.source_value("env:B").await.unwrap(),
        Some((50.0, at(T0) + Duration::hours(1)))
    );
    assert!(
        store
            .save_source_error("env:B", "unreachable", at(T0) + Duration::hours(2))
            .await
            .unwrap()
    );
    assert!(
        !store
            .save_source_error("env:B", "still unreachable", at(T0) + Duration::hours(3))
            .await
            .unwrap(),
        "same outage"
    );
    assert_eq!(
        store.source_value("env:B").await.unwrap(),
        Some((50.0, at(T0) + Duration::hours(1))),
        "the last good value survives errors"
    );
    store
        .save_source_value("env:B", 60.0, at(T0) + Duration::hours(4))
        .await
        .unwrap();
    assert!(
        store
            .save_source_error("env:B", "down again", at(T0) + Duration::hours(5))
            .await
            .unwrap(),
        "a new outage"
    );
}

fn key(hash: &str, usage: f64) -> Key {
    serde_json::from_value(serde_json::json!({
        "hash": hash, "name": hash, "disabled": false, "limit": 10.0, "limit_remaining": 10.0 - usage,
        "usage": usage, "usage_daily": usage, "usage_weekly": usage, "usage_monthly": usage,
    }))
    .unwrap()
}

#[tokio::test]
async fn snapshots_are_throttled_per_interval_and_skipped_when_usage_did_not_move() {
    let (dir, store) = store().await;
    let interval = std::time::Duration::from_secs(15 * 60);
    let t = |m: i64| at(T0) + Duration::minutes(m);
    assert_eq!(
        store
            .record_snapshots(t(0), &[key("a", 1.0), key("b", 2.0)], interval)
            .await
            .unwrap(),
        2
    );
    // Within the interval: nothing, even though a's usage moved.
    assert_eq!(
        store
            .record_snapshots(
                t(10),
                &[key("a", 1.5), key("b", 2.0), key("c", 0.0)],
                interval
            )
            .await
            .unwrap(),
        1,
        "only the new key c"
    );
    // After the interval: only keys whose usage moved.
    assert_eq!(
        store
            .record_snapshots(
                t(15),
                &[key("a", 1.5), key("b", 2.0), key("c", 0.0)],
                interval
            )
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .record_snapshots(
                t(31),
                &[key("a", 1.5), key("b", 2.5), key("c", 0.0)],
                interval
            )
            .await
            .unwrap(),
        1
    );
    let pool = raw(&dir.path().join("kw.db")).await;
    let rows: Vec<(String, String, Option<f64>, Option<f64>)> =
        sqlx::query_as("SELECT key_hash, at, usage, limit_remaining FROM snapshots ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        [
            (
                "a".into(),
                "2026-11-27T10:00:00Z".into(),
                Some(1.0),
                Some(9.0)
            ),
            (
                "b".into(),
                "2026-11-27T10:00:00Z".into(),
                Some(2.0),
                Some(8.0)
            ),
            (
                "c".into(),
                "2026-11-27T10:10:00Z".into(),
                Some(0.0),
                Some(10.0)
            ),
            (
                "a".into(),
                "2026-11-27T10:15:00Z".into(),
                Some(1.5),
                Some(8.5)
            ),
            (
                "b".into(),
                "2026-11-27T10:31:00Z".into(),
                Some(2.5),
                Some(7.5)
            ),
        ]
    );
    assert_eq!(store.prune_snapshots(t(15)).await.unwrap(), 3);
    assert_eq!(store.prune_snapshots(t(15)).await.unwrap(), 0);
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

fn reading(rule: &str, key_hash: Option<&str>, spend_usd: f64) -> BudgetReading {
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

#[tokio::test]
async fn a_rules_readings_are_recorded_when_it_changed_a_key_or_the_interval_passed() {
    let (_dir, store) = store().await;
    let interval = std::time::Duration::from_secs(15 * 60);
    let t = |minutes: i64| at(T0) + Duration::minutes(minutes);
    let each = [
        reading("each", Some("k1"), 6.0),
        reading("each", Some("k2"), 7.0),
    ];
    let mut written = Vec::new();
    for minute in 0..=30 {
        let run = store.start_run("schedule", t(minute), false).await.unwrap();
        let changed: BTreeSet<&str> = if minute == 4 {
            BTreeSet::from(["each"])
        } else {
            BTreeSet::new()
        };
        let n = store
            .record_budget_readings(run, t(minute), &each, &changed, interval)
            .await
            .unwrap();
        if n > 0 {
            written.push((minute, n));
        }
    }
    // First, where it changed a key, then every 15 minutes after that; all
    // of the rule's readings each time.
    assert_eq!(written, vec![(0, 2), (4, 2), (19, 2)]);
    let none = store
        .record_budget_readings(1, t(31), &[], &BTreeSet::from(["each"]), interval)
        .await
        .unwrap();
    assert_eq!(none, 0);
}

crate::on_both_backends! {
    async fn a_fresh_database_is_migrated_on_either_backend(backend) {
        let (_place, store) = crate::common::backends::fresh_store(backend).await.unwrap();
        assert!(store.schema_version().await.unwrap() >= 1);
    }
}
