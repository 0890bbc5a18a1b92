//! The SQLite store: every query, against a fresh database in a temp dir.

use crate::common::{migrated_before, raw};
use chrono::{DateTime, Duration, Utc};
use keywarden::domain::event::EventKind;
use keywarden::domain::{Field, FieldValue, Settings, Window};
use keywarden::engine::plan::{BudgetReading, Change, FieldChange};
use keywarden::engine::{ChangeKind, Hold, Outcome};
use keywarden::rules::model::{Conditions, Origin, Rule, Selector};
use keywarden::store::{HistoryFilter, RunSummary, Store};
use std::collections::{BTreeMap, BTreeSet};
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

fn change(
    key: &str,
    rule: &str,
    kind: ChangeKind,
    field: Field,
    from: FieldValue,
    to: FieldValue,
) -> Change {
    Change {
        key_hash: key.into(),
        key_name: format!("name-{key}"),
        rule: rule.into(),
        kind,
        fields: BTreeMap::from([(field, FieldChange { from, to })]),
        reason: format!("{rule} says so"),
        held: None,
    }
}

fn disable(key: &str, rule: &str) -> Change {
    change(
        key,
        rule,
        ChangeKind::Assert,
        Field::Disabled,
        FieldValue::Disabled(false),
        FieldValue::Disabled(true),
    )
}

/// Records `changes` at `at` and completes them all as applied, as a
/// successful run does.
async fn record_applied(store: &Store, at: DateTime<Utc>, changes: &[Change]) {
    let ids = store.record_changes(None, at, changes, None).await.unwrap();
    store
        .complete_changes(&ids, Outcome::Applied, Some(200), 1, None)
        .await
        .unwrap();
}

fn limit(v: Option<f64>) -> FieldValue {
    FieldValue::Limit(v)
}

#[tokio::test]
async fn runs_are_started_and_finished_with_their_counts() {
    let (dir, store) = store().await;
    let run = store.start_run("schedule", at(T0), true).await.unwrap();
    let summary = RunSummary {
        keys_seen: 10,
        rules_evaluated: 2,
        changes: 3,
        applied: 1,
        failed: 1,
        held: 1,
        status: "failed".into(),
        error: Some("one change failed".into()),
        notes: serde_json::json!({"skips": []}),
    };
    store
        .finish_run(run, at(T0) + Duration::seconds(3), &summary)
        .await
        .unwrap();
    let pool = raw(&dir.path().join("kw.db")).await;
    let times: (String, Option<String>, String, bool, String, Option<String>, String) = sqlx::query_as(
        "SELECT started_at, finished_at, trigger, dry_run, status, error, notes FROM runs WHERE id = ?",
    )
    .bind(run)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        times,
        (
            T0.into(),
            Some("2026-11-27T10:00:03Z".into()),
            "schedule".into(),
            true,
            "failed".into(),
            Some("one change failed".into()),
            r#"{"skips":[]}"#.into()
        )
    );
    let counts: (i64, i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT keys_seen, rules_evaluated, changes, applied, failed, held FROM runs WHERE id = ?",
    )
    .bind(run)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(counts, (10, 2, 3, 1, 1, 1));
    assert!(store.finish_run(run + 1, at(T0), &summary).await.is_err());
}

#[tokio::test]
async fn recording_changes_writes_pending_rows_and_their_claims_in_one_go() {
    let (_dir, store) = store().await;
    let run = store.start_run("manual", at(T0), false).await.unwrap();
    let mut held = disable("k3", "r");
    held.held = Some(Hold::Exemption {
        first_held: vec![1],
    });
    let drift = change(
        "k4",
        "r",
        ChangeKind::Drift,
        Field::Disabled,
        FieldValue::Disabled(true),
        FieldValue::Disabled(false),
    );
    let changes = vec![
        disable("k1", "r"),
        change(
            "k1",
            "s",
            ChangeKind::Assert,
            Field::Limit,
            limit(Some(100.0)),
            limit(Some(5.0)),
        ),
        disable("k2", "r"),
        held,
        drift,
    ];
    let ids = store
        .record_changes(Some(run), at(T0), &changes, None)
        .await
        .unwrap();
    assert_eq!(ids.len(), 5);
    let rows: Vec<_> = futures::future::join_all(ids.iter().map(|id| store.change(*id)))
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    assert_eq!(
        rows.iter().map(|r| r.outcome).collect::<Vec<_>>(),
        [
            Outcome::Pending,
            Outcome::Pending,
            Outcome::Pending,
            Outcome::Skipped,
            Outcome::Pending
        ]
    );
    assert!(
        rows.iter()
            .all(|r| r.attempts == 0 && r.run_id == Some(run) && r.at == at(T0))
    );
    assert_eq!(rows[0].request_id, rows[1].request_id, "one PATCH per key");
    assert!(rows[0].request_id.is_some());
    assert_ne!(rows[0].request_id, rows[2].request_id);
    assert_eq!(rows[3].request_id, None, "held rows are not sent");
    assert_eq!(rows[4].request_id, None, "drift sends nothing");
    assert_eq!(
        rows[1].fields[&Field::Limit],
        FieldChange {
            from: limit(Some(100.0)),
            to: limit(Some(5.0))
        }
    );

    let claims = store.claims().await.unwrap();
    let summary: Vec<_> = claims
        .iter()
        .map(|c| {
            (
                c.key_hash.as_str(),
                c.field,
                c.rule.as_str(),
                c.original,
                c.value,
                c.since,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "k1",
                Field::Disabled,
                "r",
                FieldValue::Disabled(false),
                FieldValue::Disabled(true),
                at(T0)
            ),
            (
                "k1",
                Field::Limit,
                "s",
                limit(Some(100.0)),
                limit(Some(5.0)),
                at(T0)
            ),
            (
                "k2",
                Field::Disabled,
                "r",
                FieldValue::Disabled(false),
                FieldValue::Disabled(true),
                at(T0)
            ),
        ]
    );
    let open: Vec<_> = store
        .open_changes()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(open, [ids[0], ids[1], ids[2], ids[4]]);
}

#[tokio::test]
async fn a_dry_run_records_rows_without_claims() {
    let (_dir, store) = store().await;
    let ids = store
        .record_changes(None, at(T0), &[disable("k1", "r")], Some(Outcome::DryRun))
        .await
        .unwrap();
    let row = store.change(ids[0]).await.unwrap().unwrap();
    assert_eq!(
        (row.outcome, row.run_id, row.request_id),
        (Outcome::DryRun, None, None)
    );
    assert!(store.claims().await.unwrap().is_empty());
    assert!(store.open_changes().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_later_claim_keeps_the_first_original() {
    let (_dir, store) = store().await;
    let first = change(
        "k",
        "season",
        ChangeKind::Assert,
        Field::Limit,
        limit(Some(100.0)),
        limit(Some(5.0)),
    );
    record_applied(&store, at(T0), &[first]).await;
    let second = change(
        "k",
        "stricter",
        ChangeKind::Assert,
        Field::Limit,
        limit(Some(5.0)),
        limit(Some(1.0)),
    );
    let later = at(T0) + Duration::hours(1);
    store
        .record_changes(None, later, &[second], None)
        .await
        .unwrap();
    let claim = &store.claims().await.unwrap()[0];
    assert_eq!(
        (
            claim.rule.as_str(),
            claim.original,
            claim.value,
            claim.since
        ),
        ("stricter", limit(Some(100.0)), limit(Some(1.0)), at(T0))
    );
}

#[tokio::test]
async fn completing_changes_sets_outcome_and_a_failure_gives_back_its_claim() {
    let (_dir, store) = store().await;
    // k1: a fresh claim whose PATCH fails → the claim goes (the key never changed).
    // k2: an existing claim (100 → 5) and a stricter assert (5 → 1) that fails →
    //     the claim stays, with keywarden's value the key still has (5).
    record_applied(
        &store,
        at(T0),
        &[change(
            "k2",
            "season",
            ChangeKind::Assert,
            Field::Limit,
            limit(Some(100.0)),
            limit(Some(5.0)),
        )],
    )
    .await;
    let ids = store
        .record_changes(
            None,
            at(T0),
            &[
                disable("k1", "r"),
                change(
                    "k2",
                    "stricter",
                    ChangeKind::Assert,
                    Field::Limit,
                    limit(Some(5.0)),
                    limit(Some(1.0)),
                ),
            ],
            None,
        )
        .await
        .unwrap();
    store
        .complete_changes(&ids, Outcome::Failed, Some(400), 1, Some("limit too low"))
        .await
        .unwrap();
    let row = store.change(ids[0]).await.unwrap().unwrap();
    assert_eq!(
        (
            row.outcome,
            row.http_status,
            row.attempts,
            row.error.as_deref()
        ),
        (Outcome::Failed, Some(400), 1, Some("limit too low"))
    );
    let claims = store.claims().await.unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(
        (
            claims[0].key_hash.as_str(),
            claims[0].original,
            claims[0].value
        ),
        ("k2", limit(Some(100.0)), limit(Some(5.0)))
    );
    assert!(store.open_changes().await.unwrap().is_empty());
    assert!(
        store
            .complete_changes(&[9999], Outcome::Applied, None, 0, None)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn an_unknown_outcome_keeps_the_claim_and_stays_open() {
    let (_dir, store) = store().await;
    let ids = store
        .record_changes(None, at(T0), &[disable("k1", "r")], None)
        .await
        .unwrap();
    store
        .complete_changes(&ids, Outcome::Unknown, None, 6, Some("connection closed"))
        .await
        .unwrap();
    assert_eq!(store.claims().await.unwrap().len(), 1);
    let open = store.open_changes().await.unwrap();
    assert_eq!((open[0].outcome, open[0].attempts), (Outcome::Unknown, 6));
}

#[tokio::test]
async fn applied_release_drift_and_deleted_drop_claims() {
    let (_dir, store) = store().await;
    record_applied(
        &store,
        at(T0),
        &[
            disable("k1", "r"),
            disable("k2", "r"),
            change(
                "k2",
                "s",
                ChangeKind::Assert,
                Field::Limit,
                limit(None),
                limit(Some(5.0)),
            ),
            disable("k3", "r"),
            change(
                "k4",
                "s",
                ChangeKind::Assert,
                Field::Limit,
                limit(None),
                limit(Some(5.0)),
            ),
        ],
    )
    .await;
    let release = change(
        "k1",
        "r",
        ChangeKind::Release,
        Field::Disabled,
        FieldValue::Disabled(true),
        FieldValue::Disabled(false),
    );
    let drift = change(
        "k2",
        "r",
        ChangeKind::Drift,
        Field::Disabled,
        FieldValue::Disabled(true),
        FieldValue::Disabled(false),
    );
    let mut deleted = disable("k3", "r");
    deleted.kind = ChangeKind::Deleted;
    deleted.fields.clear();
    let mut failed_release = change(
        "k4",
        "s",
        ChangeKind::Release,
        Field::Limit,
        limit(Some(5.0)),
        limit(None),
    );
    failed_release.reason = "window rolled over".into();
    let ids = store
        .record_changes(None, at(T0), &[release, drift, deleted], None)
        .await
        .unwrap();
    assert_eq!(
        store.claims().await.unwrap().len(),
        5,
        "nothing dropped before the outcome is known"
    );
    store
        .complete_changes(&ids, Outcome::Applied, Some(200), 1, None)
        .await
        .unwrap();
    let failed = store
        .record_changes(None, at(T0), &[failed_release], None)
        .await
        .unwrap();
    store
        .complete_changes(&failed, Outcome::Failed, Some(500), 6, Some("server error"))
        .await
        .unwrap();
    let left: Vec<_> = store
        .claims()
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.key_hash, c.field))
        .collect();
    assert_eq!(
        left,
        [
            ("k2".to_string(), Field::Limit),
            ("k4".to_string(), Field::Limit)
        ]
    );
    assert_eq!(store.delete_claims_of_key("k2").await.unwrap(), 1);
    assert_eq!(store.claims().await.unwrap().len(), 1);
}

/// A run's worth of changes: two rows (two fields, two rules) for each of
/// `keys` keys, more than one statement's worth of rows.
fn big_run(keys: usize) -> Vec<Change> {
    (0..keys)
        .flat_map(|i| {
            let key = format!("k{i:05}");
            [
                disable(&key, "r"),
                change(
                    &key,
                    "s",
                    ChangeKind::Assert,
                    Field::Limit,
                    limit(None),
                    limit(Some(5.0)),
                ),
            ]
        })
        .collect()
}

#[tokio::test]
async fn a_large_run_is_recorded_and_completed_in_order_with_every_claim() {
    let (_dir, store) = store().await;
    let before = store
        .record_changes(
            None,
            at(T0),
            &[disable("k-old", "r")],
            Some(Outcome::DryRun),
        )
        .await
        .unwrap();
    let changes = big_run(4_000);
    let ids = store
        .record_changes(None, at(T0), &changes, None)
        .await
        .unwrap();
    assert_eq!(ids.len(), 8_000);
    assert!(
        ids.iter()
            .zip(before[0] + 1..)
            .all(|(id, next)| *id == next),
        "ids follow the existing rows, in the order of the changes"
    );
    let rows = store.open_changes().await.unwrap();
    assert_eq!(rows.iter().map(|r| r.id).collect::<Vec<_>>(), ids);
    for (pair, changes) in rows.chunks(2).zip(changes.chunks(2)) {
        assert_eq!(
            (pair[0].key_hash.as_str(), pair[1].key_hash.as_str()),
            (changes[0].key_hash.as_str(), changes[1].key_hash.as_str())
        );
        assert_eq!(pair[0].fields, changes[0].fields);
        assert_eq!(pair[1].rule, "s");
        let shared = format!("req-{}", pair[0].id);
        assert_eq!(pair[0].request_id.as_deref(), Some(shared.as_str()));
        assert_eq!(pair[1].request_id, pair[0].request_id, "one PATCH per key");
    }
    assert_eq!(store.claims().await.unwrap().len(), 8_000);

    store
        .complete_changes(&ids, Outcome::Applied, Some(200), 1, None)
        .await
        .unwrap();
    assert!(store.open_changes().await.unwrap().is_empty());
    let applied = store
        .changes(&HistoryFilter {
            outcome: Some(Outcome::Applied),
            ..HistoryFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(applied.len(), 8_000);
    assert!(
        applied
            .iter()
            .all(|r| (r.http_status, r.attempts) == (Some(200), 1))
    );
    let claims = store.claims().await.unwrap();
    assert_eq!(claims.len(), 8_000);
    assert!(claims.iter().all(|c| c.since == at(T0)));

    let releases: Vec<Change> = changes
        .iter()
        .map(|c| {
            let mut release = c.clone();
            release.kind = ChangeKind::Release;
            release
        })
        .collect();
    record_applied(&store, at(T0), &releases).await;
    assert!(store.claims().await.unwrap().is_empty());
}

#[tokio::test]
async fn one_call_settles_claims_row_by_row_in_order() {
    let (_dir, store) = store().await;
    // Two asserts of one field in one call: the later rule holds the claim,
    // with the first original.
    let ids = store
        .record_changes(
            None,
            at(T0),
            &[
                change(
                    "k",
                    "season",
                    ChangeKind::Assert,
                    Field::Limit,
                    limit(Some(100.0)),
                    limit(Some(5.0)),
                ),
                change(
                    "k",
                    "stricter",
                    ChangeKind::Assert,
                    Field::Limit,
                    limit(Some(5.0)),
                    limit(Some(1.0)),
                ),
            ],
            None,
        )
        .await
        .unwrap();
    let claims = store.claims().await.unwrap();
    assert_eq!(
        (
            claims.len(),
            claims[0].rule.as_str(),
            claims[0].original,
            claims[0].value
        ),
        (1, "stricter", limit(Some(100.0)), limit(Some(1.0)))
    );
    store
        .complete_changes(&ids, Outcome::Applied, Some(200), 1, None)
        .await
        .unwrap();

    // An assert and a release of one field, completed together: whichever
    // comes last in the ids decides.
    let assert = disable("k2", "r");
    let mut release = disable("k2", "r");
    release.kind = ChangeKind::Release;
    for (order, kept) in [([0, 1], false), ([1, 0], true)] {
        let ids = store
            .record_changes(None, at(T0), &[assert.clone(), release.clone()], None)
            .await
            .unwrap();
        store
            .complete_changes(&order.map(|i| ids[i]), Outcome::Applied, Some(200), 1, None)
            .await
            .unwrap();
        let claimed = store
            .claims()
            .await
            .unwrap()
            .iter()
            .any(|c| c.key_hash == "k2");
        assert_eq!(claimed, kept, "completed in the order {order:?}");
    }
}

#[tokio::test]
async fn concurrent_recordings_get_distinct_ids() {
    let (_dir, store) = store().await;
    let (a, b) = (big_run(1_500), big_run(1_500));
    let (ids_a, ids_b) = tokio::join!(
        store.record_changes(None, at(T0), &a, None),
        store.record_changes(None, at(T0), &b, None)
    );
    let (ids_a, ids_b) = (ids_a.unwrap(), ids_b.unwrap());
    let all: BTreeSet<i64> = ids_a.iter().chain(&ids_b).copied().collect();
    assert_eq!(all.len(), 6_000);
    for (id, change) in ids_a.iter().zip(&a).chain(ids_b.iter().zip(&b)) {
        let row = store.change(*id).await.unwrap().unwrap();
        assert_eq!(
            (row.key_hash.as_str(), row.rule.as_str()),
            (change.key_hash.as_str(), change.rule.as_str())
        );
    }
}

#[tokio::test]
async fn history_filters_and_orders_newest_first() {
    let (_dir, store) = store().await;
    let t = |h: i64| at(T0) + Duration::hours(h);
    store
        .record_changes(None, t(0), &[disable("k1", "r")], Some(Outcome::DryRun))
        .await
        .unwrap();
    let ids = store
        .record_changes(None, t(1), &[disable("k2", "r"), disable("k1", "s")], None)
        .await
        .unwrap();
    store
        .complete_changes(&ids[..1], Outcome::Applied, Some(200), 1, None)
        .await
        .unwrap();
    store
        .record_changes(
            None,
            t(2),
            &[change(
                "k1",
                "r",
                ChangeKind::Release,
                Field::Disabled,
                FieldValue::Disabled(true),
                FieldValue::Disabled(false),
            )],
            None,
        )
        .await
        .unwrap();
    let ids_of =
        |rows: Vec<keywarden::store::ChangeRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let all = ids_of(store.changes(&HistoryFilter::default()).await.unwrap());
    assert_eq!(all, [4, 3, 2, 1]);
    let f = |f: HistoryFilter| {
        let store = store.clone();
        async move { ids_of(store.changes(&f).await.unwrap()) }
    };
    assert_eq!(
        f(HistoryFilter {
            since: Some(t(1)),
            ..Default::default()
        })
        .await,
        [4, 3, 2]
    );
    assert_eq!(
        f(HistoryFilter {
            until: Some(t(1)),
            ..Default::default()
        })
        .await,
        [1]
    );
    assert_eq!(
        f(HistoryFilter {
            key_hash: Some("k1".into()),
            ..Default::default()
        })
        .await,
        [4, 3, 1]
    );
    assert_eq!(
        f(HistoryFilter {
            rule: Some("s".into()),
            ..Default::default()
        })
        .await,
        [3]
    );
    assert_eq!(
        f(HistoryFilter {
            kind: Some(ChangeKind::Release),
            ..Default::default()
        })
        .await,
        [4]
    );
    assert_eq!(
        f(HistoryFilter {
            outcome: Some(Outcome::Applied),
            ..Default::default()
        })
        .await,
        [2]
    );
    assert_eq!(
        f(HistoryFilter {
            limit: Some(2),
            ..Default::default()
        })
        .await,
        [4, 3]
    );
    assert_eq!(store.key_hashes_named("name-k1").await.unwrap(), ["k1"]);
    assert!(store.key_hashes_named("nobody").await.unwrap().is_empty());
    assert!(store.key_hash_known("k2").await.unwrap());
    assert!(!store.key_hash_known("k9").await.unwrap());
    assert!(store.change(99).await.unwrap().is_none());
}

#[tokio::test]
async fn events_are_recorded_and_read_by_time_range() {
    let (_dir, store) = store().await;
    let run = store.start_run("startup", at(T0), false).await.unwrap();
    let detail = serde_json::json!({"source": "env:BUDGET", "error": "not set"});
    let id = store
        .record_event(
            Some(run),
            at(T0),
            EventKind::SourceError,
            Some("r"),
            None,
            &detail,
        )
        .await
        .unwrap();
    store
        .record_event(
            None,
            at(T0) + Duration::hours(2),
            EventKind::GuardTripped,
            None,
            Some("k"),
            &serde_json::json!({}),
        )
        .await
        .unwrap();
    let events = store
        .events(at(T0), at(T0) + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(
        (
            e.id,
            e.run_id,
            e.at,
            e.kind.as_str(),
            e.rule.as_deref(),
            e.key_hash.as_deref(),
            &e.detail
        ),
        (
            id,
            Some(run),
            at(T0),
            "source_error",
            Some("r"),
            None,
            &detail
        )
    );
    assert_eq!(
        store
            .events(at(T0), at(T0) + Duration::days(1))
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn exemptions_are_added_listed_marked_once_and_removed() {
    let (_dir, store) = store().await;
    let until = at(T0) + Duration::days(7);
    let id = store
        .add_exemption("k1", Some("r"), until, "demo day", at(T0))
        .await
        .unwrap();
    let all_rules = store
        .add_exemption("k2", None, at(T0) - Duration::days(1), "expired", at(T0))
        .await
        .unwrap();
    let first = at(T0) + Duration::hours(1);
    store.mark_exemption_held(id, first).await.unwrap();
    store
        .mark_exemption_held(id, first + Duration::hours(1))
        .await
        .unwrap();
    let list = store.exemptions().await.unwrap();
    assert_eq!(list.len(), 2, "expired ones are listed too");
    let e = &list[0];
    assert_eq!(
        (
            e.id,
            e.key_hash.as_str(),
            e.rule.as_deref(),
            e.until,
            e.reason.as_str(),
            e.held_at,
            e.created_at
        ),
        (id, "k1", Some("r"), until, "demo day", Some(first), at(T0))
    );
    assert_eq!(list[1].rule, None);
    assert!(store.remove_exemption(all_rules).await.unwrap());
    assert!(!store.remove_exemption(all_rules).await.unwrap());
    assert_eq!(store.exemptions().await.unwrap().len(), 1);
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
