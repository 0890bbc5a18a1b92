//! The store's runs, changes, events, claims and exemptions, on both
//! backends (SQLite and PostgreSQL), against a fresh database each.

use crate::common::RawDatabase;
use crate::common::backends::{Place, fresh_store};
use chrono::{DateTime, Duration, Utc};
use keywarden::domain::event::EventKind;
use keywarden::domain::{Field, FieldValue};
use keywarden::engine::plan::{Change, FieldChange};
use keywarden::engine::{ChangeKind, Claim, Hold, Outcome};
use keywarden::store::{HistoryFilter, RunSummary, Store};
use std::collections::{BTreeMap, BTreeSet};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

const T0: &str = "2026-11-27T10:00:00Z";

/// A run's row as stored.
#[derive(Debug, PartialEq, sqlx::FromRow)]
struct RunRow {
    started_at: String,
    finished_at: Option<String>,
    trigger: String,
    dry_run: i64,
    status: String,
    error: Option<String>,
    notes: String,
    keys_seen: i64,
    rules_evaluated: i64,
    changes: i64,
    applied: i64,
    failed: i64,
    held: i64,
}

/// The row of `run`, read past the store's API.
async fn run_row(place: &Place, run: i64) -> RunRow {
    let raw = RawDatabase::connect(&place.dir.path().join("kw.db"), place.postgres.as_ref()).await;
    let mut rows = raw
        .rows(
            "SELECT started_at, finished_at, trigger, dry_run, status, error, notes,
                 keys_seen, rules_evaluated, changes, applied, failed, held FROM runs WHERE id = $1",
            &[run],
        )
        .await;
    raw.close().await;
    rows.pop().expect("the run's row")
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

crate::on_both_backends! {
    async fn runs_are_started_and_finished_with_their_counts(backend) {
        let (place, store) = fresh_store(backend).await.unwrap();
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
        assert_eq!(
            run_row(&place, run).await,
            RunRow {
                started_at: T0.into(),
                finished_at: Some("2026-11-27T10:00:03Z".into()),
                trigger: "schedule".into(),
                dry_run: 1,
                status: "failed".into(),
                error: Some("one change failed".into()),
                notes: r#"{"skips":[]}"#.into(),
                keys_seen: 10,
                rules_evaluated: 2,
                changes: 3,
                applied: 1,
                failed: 1,
                held: 1,
            }
        );
        assert!(store.finish_run(run + 1, at(T0), &summary).await.is_err());
    }

    async fn recording_changes_writes_pending_rows_and_their_claims_in_one_go(backend) {
        let (_place, store) = fresh_store(backend).await.unwrap();
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

    async fn a_dry_run_records_rows_without_claims(backend) {
        let (_place, store) = fresh_store(backend).await.unwrap();
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

    async fn a_later_claim_keeps_the_first_original(backend) {
        let (_place, store) = fresh_store(backend).await.unwrap();
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

    async fn an_applied_row_takes_back_a_claim_a_later_row_took(backend) {
        let (_place, store) = fresh_store(backend).await.unwrap();
        let season = change(
            "k",
            "season",
            ChangeKind::Assert,
            Field::Limit,
            limit(Some(100.0)),
            limit(Some(5.0)),
        );
        let stricter = change(
            "k",
            "stricter",
            ChangeKind::Assert,
            Field::Limit,
            limit(Some(100.0)),
            limit(Some(1.0)),
        );
        let first = store
            .record_changes(None, at(T0), &[season], None)
            .await
            .unwrap();
        let later = at(T0) + Duration::hours(1);
        let second = store
            .record_changes(None, later, &[stricter], None)
            .await
            .unwrap();
        let claim = |claims: Vec<Claim>| {
            let claim = &claims[0];
            (
                claims.len(),
                claim.rule.clone(),
                claim.original,
                claim.value,
                claim.since,
            )
        };
        for (ids, rule, value) in [
            (&first, "season", limit(Some(5.0))),
            (&second, "stricter", limit(Some(1.0))),
        ] {
            store
                .complete_changes(ids, Outcome::Applied, Some(200), 1, None)
                .await
                .unwrap();
            assert_eq!(
                claim(store.claims().await.unwrap()),
                (1, rule.to_string(), limit(Some(100.0)), value, at(T0)),
                "the last applied row holds the claim, with the first original"
            );
        }
        // A settled row is never completed again: a late `failed` for it
        // is refused and gives back nothing.
        let again = store
            .complete_changes(&second, Outcome::Failed, Some(500), 1, None)
            .await
            .unwrap_err();
        assert_eq!(
            again.to_string(),
            format!("no open change {} to complete", second[0])
        );
        assert_eq!(
            claim(store.claims().await.unwrap()),
            (1, "stricter".into(), limit(Some(100.0)), limit(Some(1.0)), at(T0))
        );
        assert_eq!(
            store.change(second[0]).await.unwrap().unwrap().outcome,
            Outcome::Applied
        );
    }

    async fn completing_changes_sets_outcome_and_a_failure_gives_back_its_claim(backend) {
        let (_place, store) = fresh_store(backend).await.unwrap();
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

    async fn an_unknown_outcome_keeps_the_claim_and_stays_open(backend) {
        let (_place, store) = fresh_store(backend).await.unwrap();
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

    async fn applied_release_drift_and_deleted_drop_claims(backend) {
        let (_place, store) = fresh_store(backend).await.unwrap();
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

    async fn a_large_run_is_recorded_and_completed_in_order_with_every_claim(backend) {
        let (_place, store) = fresh_store(backend).await.unwrap();
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

    async fn one_call_settles_claims_row_by_row_in_order(backend) {
        let (_place, store) = fresh_store(backend).await.unwrap();
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

    async fn concurrent_recordings_get_distinct_ids(backend) {
        let (_place, store) = fresh_store(backend).await.unwrap();
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

    async fn history_filters_and_orders_newest_first(backend) {
        let (_place, store) = fresh_store(backend).await.unwrap();
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

    async fn events_are_recorded_and_read_by_time_range(backend) {
        let (_place, store) = fresh_store(backend).await.unwrap();
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

    async fn exemptions_are_added_listed_marked_once_and_removed(backend) {
        let (_place, store) = fresh_store(backend).await.unwrap();
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
}

crate::on_both_backends! {
    async fn the_outbox_moves_its_cursor_past_final_rows_and_events_and_webhooks_follow_it(backend) {
        use keywarden::store::outbox::{Attempt, BudgetWarning, ItemOrigin, Outage};
        let (_place, store) = fresh_store(backend).await.unwrap();
        let run = store.start_run("manual", at(T0), false).await.unwrap();
        let ids = store
            .record_changes(Some(run), at(T0), &[disable("k1", "r"), disable("k2", "r")], None)
            .await
            .unwrap();
        store
            .complete_changes(&ids[..1], Outcome::Applied, Some(200), 1, None)
            .await
            .unwrap();
        let warning = BudgetWarning {
            rule: "r",
            key_hash: Some("k1"),
            window: "monthly",
            window_start: at("2026-11-01T00:00:00Z"),
            fraction: 0.8,
            spend_usd: 41.0,
            budget_usd: 50.0,
        };
        assert!(store.record_budget_warning(Some(run), at(T0), &warning).await.unwrap());
        assert!(
            !store.record_budget_warning(Some(run), at(T0), &warning).await.unwrap(),
            "once per fraction per window"
        );

        // The first batch: the applied row (the pending one stops the
        // cursor) and the warning; an auth outage opens once.
        let mut batch = store.outbox_batch().await.unwrap();
        let changes = batch.final_changes().await.unwrap();
        assert_eq!(changes.iter().map(|c| c.id).collect::<Vec<_>>(), ids[..1]);
        let events = batch.new_events().await.unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, EventKind::BudgetWarning);
        assert_eq!(events[0].detail["fraction"], 0.8);
        assert!(batch.open_outage(&Outage::Auth, at(T0), Some(run)).await.unwrap());
        assert!(!batch.open_outage(&Outage::Auth, at(T0), Some(run)).await.unwrap());
        assert_eq!(batch.close_ended_outages().await.unwrap(), vec![], "no later run yet");
        batch
            .enqueue(EventKind::KeyDisabled, at(T0), &serde_json::json!({"n": 1}), ItemOrigin::Change(ids[0]))
            .await
            .unwrap();
        batch.commit().await.unwrap();

        let before = store.register_webhook("ops", "https://ops.example").await.unwrap();
        assert_eq!(before.last_outbox_id, 1, "a new webhook starts after the items already there");
        let fresh = store.register_webhook("late", "https://late.example").await.unwrap();
        assert_eq!(fresh.last_outbox_id, 1);

        // The second batch: the now-completed row, a recovery once a later
        // run listed keys.
        store
            .complete_changes(&ids[1..], Outcome::Failed, Some(500), 3, Some("boom"))
            .await
            .unwrap();
        let later = store.start_run("manual", at(T0) + Duration::minutes(1), false).await.unwrap();
        store
            .finish_run(later, at(T0) + Duration::minutes(1), &RunSummary {
                status: "ok".into(),
                notes: serde_json::json!({}),
                ..RunSummary::default()
            })
            .await
            .unwrap();
        let mut batch = store.outbox_batch().await.unwrap();
        let changes = batch.final_changes().await.unwrap();
        assert_eq!(changes.iter().map(|c| (c.id, c.outcome)).collect::<Vec<_>>(), [(ids[1], Outcome::Failed)]);
        assert_eq!(changes[0].http_status, Some(500));
        assert_eq!(batch.new_events().await.unwrap(), vec![]);
        assert_eq!(batch.close_ended_outages().await.unwrap(), vec![Outage::Auth]);
        let recovered = batch
            .record_event(at(T0) + Duration::minutes(1), EventKind::AuthRecovered, &serde_json::json!({}))
            .await
            .unwrap();
        batch
            .enqueue(EventKind::AuthRecovered, at(T0) + Duration::minutes(1), &serde_json::json!({"n": 2}), ItemOrigin::Event(recovered))
            .await
            .unwrap();
        batch.commit().await.unwrap();
        let mut batch = store.outbox_batch().await.unwrap();
        assert_eq!(batch.final_changes().await.unwrap(), vec![], "the cursor moved past both rows");
        assert_eq!(batch.new_events().await.unwrap(), vec![], "and past the recovery");
        drop(batch);

        let items = store.outbox_after(0, 10).await.unwrap();
        assert_eq!(
            items.iter().map(|i| (i.id, i.event, i.payload["n"].as_i64())).collect::<Vec<_>>(),
            [(1, EventKind::KeyDisabled, Some(1)), (2, EventKind::AuthRecovered, Some(2))]
        );
        assert_eq!(store.outbox_after(1, 10).await.unwrap().len(), 1);

        // Deliveries: a failure schedules a retry, a success moves on; a
        // skipped item moves a webhook without an attempt.
        let retry_at = at(T0) + Duration::minutes(5);
        store
            .record_attempt("ops", 2, at(T0), Some(503), Some("unavailable"), &Attempt::Failed { retry_at })
            .await
            .unwrap();
        let state = store.delivery_state("ops").await.unwrap();
        assert_eq!(
            (state.last_outbox_id, state.attempts, state.failing_since, state.next_attempt_at),
            (1, 1, Some(at(T0)), Some(retry_at))
        );
        store
            .record_attempt("ops", 2, retry_at, Some(200), None, &Attempt::Delivered)
            .await
            .unwrap();
        let state = store.delivery_state("ops").await.unwrap();
        assert_eq!((state.last_outbox_id, state.attempts, state.failing_since), (2, 0, None));
        store.skip_delivery("late", 2).await.unwrap();
        store.skip_delivery("late", 1).await.unwrap();
        assert_eq!(store.delivery_state("late").await.unwrap().last_outbox_id, 2, "never backwards");
        let attempts = store.delivery_attempts().await.unwrap();
        assert_eq!(
            attempts.iter().map(|a| (a.status.as_str(), a.http_status)).collect::<Vec<_>>(),
            [("failed", Some(503)), ("delivered", Some(200))]
        );
    }
}
