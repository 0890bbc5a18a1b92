//! The store's queries of rules, rule state, budget sources, history
//! counts, conflicts, budget readings, usage snapshots and the dashboard,
//! each on both backends (SQLite and PostgreSQL, `on_both_backends!`).
//! Rows the store writes elsewhere (runs, changes, outages) are made here
//! with SQL, so that each test reads only the queries it is about.

use crate::common::RawDatabase;
use crate::common::backends::{Place, fresh_store};
use crate::store::{T0, at, reading, rule};
use chrono::{DateTime, Duration, Utc};
use keywarden::domain::Field;
use keywarden::domain::Key;
use keywarden::domain::timestamp::rfc3339 as timestamp;
use keywarden::engine::plan::Conflict;
use keywarden::engine::{ChangeKind, Outcome};
use keywarden::rules::model::Origin;
use keywarden::store::counts::HistoryCounts;
use keywarden::store::dashboard::OpenOutage;
use std::collections::{BTreeSet, HashSet};

/// A direct connection to `place`'s database, beside its store: to make
/// rows other modules of the store write, and to read what was written.
async fn raw(place: &Place) -> RawDatabase {
    RawDatabase::connect(&place.dir.path().join("kw.db"), place.postgres.as_ref()).await
}

/// Records a finished `schedule` run `id` started at `started_at`.
async fn finished_run(raw: &RawDatabase, id: i64, started_at: &str) {
    raw.execute(&format!(
        "INSERT INTO runs (id, started_at, finished_at, trigger, status)
         VALUES ({id}, '{started_at}', '{started_at}', 'schedule', 'ok')"
    ))
    .await;
}

fn file(path: &str) -> Origin {
    Origin::File(path.into())
}

fn key(hash: &str, usage: f64) -> Key {
    serde_json::from_value(serde_json::json!({
        "hash": hash, "name": hash, "disabled": false, "limit": 10.0, "limit_remaining": 10.0 - usage,
        "usage": usage, "usage_daily": usage, "usage_weekly": usage, "usage_monthly": usage,
    }))
    .unwrap()
}

crate::on_both_backends! {
    async fn sync_adds_updates_leaves_and_prunes_a_files_rules(backend) {
        let (_place, store) = fresh_store(backend).await.unwrap();
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

    async fn one_file_never_touches_another_files_rules(backend) {
        let (_place, store) = fresh_store(backend).await.unwrap();
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

    async fn a_file_takes_over_a_cli_rule_of_the_same_name(backend) {
        let (_place, store) = fresh_store(backend).await.unwrap();
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

    async fn enabling_disabling_and_removing_rules_record_revisions(backend) {
        let (_place, store) = fresh_store(backend).await.unwrap();
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

    async fn rule_state_round_trips_and_is_replaced(backend) {
        let (_place, store) = fresh_store(backend).await.unwrap();
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

    async fn a_source_outage_is_reported_once_and_ends_with_a_good_value(backend) {
        let (_place, store) = fresh_store(backend).await.unwrap();
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

    async fn snapshots_are_throttled_per_interval_and_skipped_when_usage_did_not_move(backend) {
        let (place, store) = fresh_store(backend).await.unwrap();
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
        let rows: Vec<(String, String, Option<f64>, Option<f64>)> = raw(&place)
            .await
            .rows("SELECT key_hash, at, usage, limit_remaining FROM snapshots ORDER BY id", &[])
            .await;
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

    async fn a_rules_readings_are_recorded_when_it_changed_a_key_or_the_interval_passed(backend) {
        let (place, store) = fresh_store(backend).await.unwrap();
        let raw = raw(&place).await;
        let interval = std::time::Duration::from_secs(15 * 60);
        let t = |minutes: i64| at(T0) + Duration::minutes(minutes);
        let each = [
            reading("each", Some("k1"), 6.0),
            reading("each", Some("k2"), 7.0),
        ];
        let mut written = Vec::new();
        for minute in 0..=30 {
            let run = minute + 1;
            finished_run(&raw, run, &timestamp(t(minute))).await;
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
}

crate::on_both_backends! {
    async fn usage_series_and_rewinding_read_the_snapshots_of_their_time(backend) {
        let (_place, store) = fresh_store(backend).await.unwrap();
        let interval = std::time::Duration::from_secs(15 * 60);
        let t = |m: i64| at(T0) + Duration::minutes(m);
        for (minute, keys) in [
            (0, vec![key("a", 1.0), key("b", 2.0)]),
            (20, vec![key("a", 1.5), key("b", 2.0)]),
            (40, vec![key("a", 2.0), key("b", 2.5)]),
        ] {
            store.record_snapshots(t(minute), &keys, interval).await.unwrap();
        }
        let series = store.usage_series(t(0), t(40)).await.unwrap();
        let seen = |hash: &str| -> Vec<(DateTime<Utc>, Option<f64>)> {
            series[hash].iter().map(|r| (r.at, r.usage)).collect()
        };
        assert_eq!(seen("a"), [(t(0), Some(1.0)), (t(20), Some(1.5))]);
        assert_eq!(seen("b"), [(t(0), Some(2.0))], "b did not move at 20");

        let mut keys = [key("a", 9.0), key("b", 9.0), key("c", 9.0)];
        store.rewind_usage(&mut keys, t(30)).await.unwrap();
        let usage: Vec<_> = keys.iter().map(|k| (k.usage, k.usage_monthly)).collect();
        assert_eq!(
            usage,
            [(Some(1.5), Some(1.5)), (Some(2.0), Some(2.0)), (None, None)]
        );

        // A key a forecast needs is recorded even when its usage did not move.
        let still = [key("a", 2.0), key("b", 2.5)];
        let forecast = HashSet::from(["a".to_string()]);
        assert_eq!(
            store
                .record_snapshots_for(t(60), &still, interval, &forecast)
                .await
                .unwrap(),
            1
        );
        assert_eq!(store.usage_series(t(60), t(61)).await.unwrap().len(), 1);
    }

    async fn conflicts_are_recorded_once_when_they_begin_and_forgotten_when_they_end(backend) {
        let (place, store) = fresh_store(backend).await.unwrap();
        let raw = raw(&place).await;
        for id in 1..=4 {
            finished_run(&raw, id, T0).await;
        }
        let conflict = |key: &str, loser: &str| Conflict {
            key_hash: key.into(),
            field: Field::Disabled,
            winner: "r1".into(),
            loser: loser.into(),
        };
        let both = [conflict("k1", "r2"), conflict("k2", "r3")];
        let none = BTreeSet::new();
        let record = async |run: i64, current: &[Conflict], unevaluated| {
            store
                .record_conflicts(run, at(T0), current, unevaluated)
                .await
                .unwrap()
        };
        assert_eq!(record(1, &both, &none).await, 2);
        assert_eq!(record(2, &both, &none).await, 0, "still open: not recorded again");
        // k2 was not evaluated in run 3: its conflict stays open; k1's ended.
        let unevaluated = BTreeSet::from([("k2", Field::Disabled)]);
        assert_eq!(record(3, &[], &unevaluated).await, 0);
        assert_eq!(record(4, &both, &none).await, 1, "k1's began again");

        let events: Vec<(i64, String, String, String)> = raw
            .rows("SELECT run_id, kind, rule, key_hash FROM events ORDER BY id", &[])
            .await;
        let expected = [(1, "k1"), (1, "k2"), (4, "k1")]
            .map(|(run, key)| (run, "conflict".into(), "r1".into(), key.into()));
        assert_eq!(events, expected);
        let open: Vec<(String, String, String, String)> = raw
            .rows("SELECT key_hash, field, winner, loser FROM open_conflicts ORDER BY key_hash", &[])
            .await;
        let expected = [("k1", "r2"), ("k2", "r3")]
            .map(|(key, loser)| (key.into(), "disabled".into(), "r1".into(), loser.into()));
        assert_eq!(open, expected);
    }

    async fn history_counts_count_runs_changes_requests_errors_and_keys(backend) {
        let (place, store) = fresh_store(backend).await.unwrap();
        assert_eq!(store.history_counts().await.unwrap(), HistoryCounts::default());
        let raw = raw(&place).await;
        raw.execute(
            "INSERT INTO runs (id, started_at, finished_at, trigger, status) VALUES
                 (1, '2026-11-27T10:00:00Z', '2026-11-27T10:00:05Z', 'schedule', 'ok'),
                 (2, '2026-11-27T10:05:00Z', '2026-11-27T10:05:05Z', 'schedule', 'ok'),
                 (3, '2026-11-27T10:10:00Z', '2026-11-27T10:10:05Z', 'manual', 'failed'),
                 (4, '2026-11-27T10:15:00Z', NULL, 'schedule', 'running');
             INSERT INTO changes (id, run_id, at, rule, key_hash, key_name, kind, fields, reason,
                                  outcome, http_status, attempts, request_id) VALUES
                 (1, 1, '2026-11-27T10:00:00Z', 'r', 'k1', 'k1', 'assert', '{}', '', 'applied', 200, 1, 'q1'),
                 (2, 1, '2026-11-27T10:00:00Z', 'r', 'k1', 'k1', 'assert', '{}', '', 'applied', 200, 1, 'q1'),
                 (3, 1, '2026-11-27T10:00:00Z', 'r', 'k2', 'k2', 'release', '{}', '', 'failed', 500, 2, NULL),
                 (4, 3, '2026-11-27T10:10:00Z', 'r', 'k3', 'k3', 'assert', '{}', '', 'failed', NULL, 1, NULL),
                 (5, 4, '2026-11-27T10:15:00Z', 'r', 'k4', 'k4', 'assert', '{}', '', 'pending', NULL, 0, NULL),
                 (6, 4, '2026-11-27T10:15:00Z', 'r', 'k5', 'k5', 'assert', '{}', '', 'held', NULL, 0, NULL);
             -- What the store tallies as it records and completes such rows
             -- (the pending row is not tallied until it settles).
             INSERT INTO change_tallies (at, kind, outcome, n) VALUES
                 ('2026-11-27T10:00:00Z', 'assert', 'applied', 2),
                 ('2026-11-27T10:00:00Z', 'release', 'failed', 1),
                 ('2026-11-27T10:10:00Z', 'assert', 'failed', 1),
                 ('2026-11-27T10:15:00Z', 'assert', 'held', 1);
             INSERT INTO events (run_id, at, kind, detail) VALUES
                 (1, '2026-11-27T10:00:00Z', 'source_error', '{}'),
                 (2, '2026-11-27T10:05:00Z', 'source_error', '{}'),
                 (2, '2026-11-27T10:05:00Z', 'conflict', '{}');
             INSERT INTO snapshots (at, key_hash, disabled) VALUES
                 ('2026-11-27T10:00:00Z', 'k1', 0),
                 ('2026-11-27T10:00:00Z', 'k2', 0),
                 ('2026-11-27T10:05:00Z', 'k1', 1);",
        )
        .await;
        let text = |a: &str| a.to_string();
        assert_eq!(
            store.history_counts().await.unwrap(),
            HistoryCounts {
                runs: vec![
                    (text("manual"), text("failed"), 1),
                    (text("schedule"), text("ok"), 2)
                ],
                changes: vec![
                    (text("assert"), text("applied"), 2),
                    (text("assert"), text("failed"), 1),
                    (text("assert"), text("held"), 1),
                    (text("release"), text("failed"), 1),
                ],
                patches: vec![(text("none"), 1), (text("200"), 1), (text("500"), 1)],
                source_errors: 2,
                keys: vec![(text("disabled"), 1), (text("enabled"), 1)],
                last_success: Some(at("2026-11-27T10:05:05Z")),
            }
        );
    }

    async fn the_dashboard_reads_the_latest_run_held_changes_and_open_outages(backend) {
        let (place, store) = fresh_store(backend).await.unwrap();
        assert_eq!(store.latest_run().await.unwrap(), None);
        assert_eq!(store.last_finished_run_id().await.unwrap(), 0);
        assert!(store.newest_held_changes(2).await.unwrap().is_empty());
        assert!(store.open_outages().await.unwrap().is_empty());

        let raw = raw(&place).await;
        let held = r#"{"disabled":{"from":false,"to":true}}"#;
        raw.execute(&format!(
            "INSERT INTO runs (id, started_at, finished_at, trigger, status) VALUES
                 (1, '2026-11-27T10:00:00Z', '2026-11-27T10:00:05Z', 'schedule', 'ok');
             INSERT INTO runs (id, started_at, trigger, status, keys_seen, changes, applied,
                               failed, held) VALUES
                 (2, '2026-11-27T10:05:00Z', 'manual', 'running', 5, 3, 1, 1, 1);
             INSERT INTO changes (id, run_id, at, rule, key_hash, key_name, kind, fields, reason,
                                  outcome, attempts) VALUES
                 (1, 1, '2026-11-27T10:00:00Z', 'r', 'k1', 'one', 'assert', '{held}', 'why', 'held', 0),
                 (2, 2, '2026-11-27T10:05:00Z', 'r', 'k2', 'two', 'assert', '{held}', 'why', 'held', 0),
                 (3, 2, '2026-11-27T10:05:00Z', 'r', 'k3', 'three', 'assert', '{held}', 'why', 'held', 0),
                 (4, 2, '2026-11-27T10:06:00Z', 'r', 'k4', 'four', 'assert', '{held}', 'why', 'applied', 1);
             INSERT INTO outages (kind, subject, since) VALUES
                 ('auth', '', '2026-11-27T10:02:00Z'),
                 ('source', 'env:B', '2026-11-27T10:01:00Z');
             INSERT INTO deliveries (webhook, target, last_outbox_id, failing_since) VALUES
                 ('ops', 'https://hooks.example', 0, '2026-11-27T10:00:00Z'),
                 ('fine', 'https://fine.example', 0, NULL);"
        ))
        .await;

        let run = store.latest_run().await.unwrap().unwrap();
        assert_eq!(
            (run.id, run.trigger.as_str(), run.started_at, run.finished_at),
            (2, "manual", at("2026-11-27T10:05:00Z"), None)
        );
        assert_eq!(
            (run.status.as_str(), run.keys_seen, run.changes, run.applied, run.failed, run.held),
            ("running", 5, 3, 1, 1, 1)
        );
        assert_eq!(store.last_finished_run_id().await.unwrap(), 1);

        let newest = store.newest_held_changes(2).await.unwrap();
        let seen: Vec<_> = newest.iter().map(|c| (c.id, c.key_name.as_str())).collect();
        assert_eq!(seen, [(3, "three"), (2, "two")], "newest first, applied left out");
        let first = &newest[0];
        assert_eq!(
            (first.kind, first.outcome, first.http_status, first.attempts, first.run_id),
            (ChangeKind::Assert, Outcome::Held, None, 0, Some(2))
        );
        assert_eq!(first.fields.keys().collect::<Vec<_>>(), [&Field::Disabled]);

        let outage = |kind, subject: &str, since: &str| OpenOutage {
            kind,
            subject: subject.into(),
            since: at(since),
        };
        assert_eq!(
            store.open_outages().await.unwrap(),
            [
                outage("webhook", "https://hooks.example", "2026-11-27T10:00:00Z"),
                outage("budget_source", "env:B", "2026-11-27T10:01:00Z"),
                outage("credential", "", "2026-11-27T10:02:00Z"),
            ]
        );
    }
}

/// A test database on the cluster, a directory whose `keywarden.toml`
/// names it, and a way to run the binary there with its password in the
/// environment; `None` without a cluster.
struct OnPostgres {
    db: crate::common::backends::TestDatabase,
    dir: tempfile::TempDir,
}

impl OnPostgres {
    fn new() -> Option<OnPostgres> {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let db = runtime.block_on(crate::common::backends::TestDatabase::create())?;
        let dir = tempfile::tempdir().unwrap();
        let config = format!("[database]\nurl = \"{}\"\n", db.url);
        std::fs::write(dir.path().join("keywarden.toml"), config).unwrap();
        Some(OnPostgres { db, dir })
    }

    fn keywarden(&self, args: &[&str]) -> std::process::Output {
        crate::common::keywarden()
            .current_dir(self.dir.path())
            .arg("--config")
            .arg(self.dir.path().join("keywarden.toml"))
            .args(args)
            .env("KEYWARDEN_DATABASE_PASSWORD", &self.db.password)
            .output()
            .unwrap()
    }
}

#[test]
fn the_rules_commands_keep_rules_and_their_revisions_on_postgresql() {
    let Some(pg) = OnPostgres::new() else {
        return;
    };
    std::fs::write(
        pg.dir.path().join("rules.toml"),
        "[[rule]]\nname = \"night\"\nkeys = \"all\"\nset = { disabled = true }\n",
    )
    .unwrap();
    let stdout = |args: &[&str]| crate::common::stdout(&pg.keywarden(args));
    assert_eq!(
        stdout(&["rules", "import", "rules.toml"]),
        "imported rules.toml: 1 added, 0 updated, 0 removed, 0 unchanged\n"
    );
    assert_eq!(
        stdout(&["rules", "disable", "night"]),
        "disabled rule \"night\"\n"
    );
    assert!(stdout(&["rules", "show", "night"]).contains("enabled = false\n"));
    let history = stdout(&["rules", "history", "night"]);
    assert!(
        history.contains("revision 1 created rule \"night\" by file:")
            && history.contains("revision 2 changed rule \"night\" by cli"),
        "{history}"
    );
    assert_eq!(
        stdout(&["rules", "remove", "night"]),
        "removed rule \"night\"\n"
    );
    assert!(!stdout(&["rules", "export"]).contains("night"));
}

#[test]
fn db_backup_of_a_postgresql_database_is_refused_and_points_to_pg_dump() {
    let Some(pg) = OnPostgres::new() else {
        return;
    };
    let target = pg.dir.path().join("copy.db");
    let out = pg.keywarden(&["db", "backup", target.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("pg_dump") && stderr.contains("keywarden db copy --to FILE"),
        "{stderr}"
    );
    assert!(!stderr.contains(&pg.db.password), "{stderr}");
    assert!(out.stdout.is_empty() && !target.exists(), "nothing written");
}
