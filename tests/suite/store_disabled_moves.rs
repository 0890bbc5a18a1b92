//! The disabled moves of `changes` (migration 0007): marked when a change's
//! outcome becomes `applied`, backfilled for the rows of older databases,
//! and the report's held-disabled hours and key counts read from them.

use crate::common::backends::{Backend, Place, fresh_store};
use crate::common::{RawDatabase, migrated_before, raw};
use chrono::{DateTime, Utc};
use keywarden::domain::event::EventKind;
use keywarden::domain::{Field, FieldValue};
use keywarden::engine::plan::{Change, FieldChange};
use keywarden::engine::{ChangeKind, Outcome};
use keywarden::report::GroupBy;
use keywarden::report::{self, Report};
use keywarden::store::Store;
use keywarden::store::report::Bucket;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn disabled(key: &str, rule: &str, kind: ChangeKind, from: bool, to: bool) -> Change {
    Change {
        key_hash: key.into(),
        key_name: format!("name-{key}"),
        rule: rule.into(),
        kind,
        fields: BTreeMap::from([(
            Field::Disabled,
            FieldChange {
                from: FieldValue::Disabled(from),
                to: FieldValue::Disabled(to),
            },
        )]),
        reason: format!("{rule} says so"),
        held: None,
    }
}

fn deleted(key: &str) -> Change {
    Change {
        fields: BTreeMap::new(),
        kind: ChangeKind::Deleted,
        ..disabled(key, "r1", ChangeKind::Deleted, false, false)
    }
}

/// The history every test records: one row per `(time, change, outcome)`;
/// a `failed` or `unknown` row completed `applied` later is listed again.
fn history() -> Vec<(&'static str, Change, Outcome)> {
    use ChangeKind::*;
    vec![
        // k1: disabled before the reports' `since`, still held at `until`.
        (
            "2026-10-30T12:00:00Z",
            disabled("k1", "r1", Assert, false, true),
            Outcome::Applied,
        ),
        // k2: disabled, reasserted (same period), released across months.
        (
            "2026-10-31T20:00:00Z",
            disabled("k2", "r1", Assert, false, true),
            Outcome::Applied,
        ),
        (
            "2026-11-01T02:00:00Z",
            disabled("k2", "r2", Reassert, false, true),
            Outcome::Applied,
        ),
        (
            "2026-11-03T06:30:00Z",
            disabled("k2", "r1", Release, true, false),
            Outcome::Applied,
        ),
        // k3: a failed disable opens nothing; a later one does, closed by deletion.
        (
            "2026-11-02T00:00:00Z",
            disabled("k3", "r2", Assert, false, true),
            Outcome::Failed,
        ),
        (
            "2026-11-05T00:00:00Z",
            disabled("k3", "r2", Assert, false, true),
            Outcome::Applied,
        ),
        ("2026-11-06T12:00:00Z", deleted("k3"), Outcome::Applied),
        // k4: a drift closes; a revert puts it back (a disable, no held period).
        (
            "2026-11-07T00:00:00Z",
            disabled("k4", "r1", Assert, false, true),
            Outcome::Applied,
        ),
        (
            "2026-11-08T00:00:00Z",
            disabled("k4", "r1", Drift, true, false),
            Outcome::Applied,
        ),
        (
            "2026-11-09T00:00:00Z",
            disabled("k4", "r1", Revert, false, true),
            Outcome::Applied,
        ),
        // k5: a disable left unknown, completed applied by a later run.
        (
            "2026-11-10T00:00:00Z",
            disabled("k5", "r2", Assert, false, true),
            Outcome::Unknown,
        ),
        // k6: a dry run holds nothing.
        (
            "2026-11-11T00:00:00Z",
            disabled("k6", "r1", Assert, false, true),
            Outcome::DryRun,
        ),
    ]
}

/// Records [`history`] through the store, as runs do (k5's unknown row
/// completed as applied afterwards).
async fn record(store: &Store) {
    let mut unknown = Vec::new();
    for (when, change, outcome) in history() {
        let initial = (outcome == Outcome::DryRun).then_some(Outcome::DryRun);
        let ids = store
            .record_changes(None, at(when), std::slice::from_ref(&change), initial)
            .await
            .unwrap();
        if initial.is_none() {
            store
                .complete_changes(&ids, outcome, Some(200), 1, None)
                .await
                .unwrap();
        }
        if outcome == Outcome::Unknown {
            unknown.extend(ids);
        }
    }
    store
        .complete_changes(&unknown, Outcome::Applied, Some(200), 2, None)
        .await
        .unwrap();
}

async fn reports(store: &Store) -> Vec<Report> {
    let mut out = Vec::new();
    for group_by in [
        GroupBy::Key,
        GroupBy::Rule,
        GroupBy::Day,
        GroupBy::Week,
        GroupBy::Month,
    ] {
        out.push(
            report::build(
                store,
                at("2026-11-01T00:00:00Z"),
                at("2026-11-12T00:00:00Z"),
                group_by,
            )
            .await
            .unwrap(),
        );
    }
    out
}

async fn moves(path: &Path) -> Vec<(String, String, Option<i64>)> {
    let pool = raw(path).await;
    let rows = sqlx::query_as("SELECT key_hash, kind, disabled_move FROM changes ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows
}

#[tokio::test]
async fn applied_changes_are_marked_and_the_report_reads_the_marks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kw.db");
    let store = Store::open(&path).await.unwrap();
    record(&store).await;
    let by_month = &reports(&store).await[4];
    store.close().await;

    let marks: Vec<Option<i64>> = moves(&path).await.into_iter().map(|m| m.2).collect();
    assert_eq!(
        marks,
        [
            Some(1),
            Some(1),
            Some(1),
            Some(0),
            None, // failed
            Some(1),
            Some(0), // deleted
            Some(1),
            Some(0), // drift
            Some(2), // revert to disabled
            Some(1), // unknown, then applied
            None,    // dry run
        ]
    );
    // Held in [11-01, 11-12): k1 all 264 h; k2 54.5 h; k3 36 h; k4 24 h; k5 48 h.
    assert_eq!(
        by_month.totals.disabled_hours,
        264.0 + 54.5 + 36.0 + 24.0 + 48.0
    );
    assert_eq!(by_month.totals.keys_disabled, 4); // k2 (its reassert), k3, k4, k5
    assert_eq!(by_month.totals.keys_reenabled, 1); // k2's release; not the drift
}

#[tokio::test]
async fn migration_7_marks_the_rows_of_an_older_database_and_the_report_is_unchanged() {
    // The same history recorded by today's store, and written row by row
    // into a database at the migration before 0007.
    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = Store::open(&fresh_dir.path().join("kw.db")).await.unwrap();
    record(&fresh).await;
    let expected = reports(&fresh).await;
    fresh.close().await;

    let dir = tempfile::tempdir().unwrap();
    let (path, pool) = migrated_before(dir.path(), 7).await;
    for (when, change, outcome) in history() {
        let outcome = match outcome {
            Outcome::Unknown => Outcome::Applied,
            other => other,
        };
        sqlx::query(
            "INSERT INTO changes (at, rule, key_hash, key_name, kind, fields, reason, outcome)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(when)
        .bind(&change.rule)
        .bind(&change.key_hash)
        .bind(&change.key_name)
        .bind(change.kind.as_str())
        .bind(serde_json::to_string(&change.fields).unwrap())
        .bind(&change.reason)
        .bind(outcome.as_str())
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;

    let store = Store::open(&path).await.unwrap();
    assert_eq!(reports(&store).await, expected);
    store.close().await;
    assert_eq!(
        moves(&path).await,
        moves(&fresh_dir.path().join("kw.db")).await
    );
}

/// What the report's queries read from `store` over [11-01, 11-12) under
/// `bucket`, as text to compare.
async fn report_queries(store: &Store, bucket: Bucket) -> String {
    let (since, until) = (at("2026-11-01T00:00:00Z"), at("2026-11-12T00:00:00Z"));
    format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
        store
            .report_change_counts(since, until, bucket)
            .await
            .unwrap(),
        store.report_key_names(since, until).await.unwrap(),
        store
            .report_event_counts(since, until, bucket)
            .await
            .unwrap(),
        store.report_held_runs(since, until, bucket).await.unwrap(),
        store.report_disabled_moves(since, until).await.unwrap(),
        store
            .report_budget_points(since, until, bucket)
            .await
            .unwrap(),
        store
            .report_budget_lines(since, until, bucket)
            .await
            .unwrap(),
    )
}

/// [`history`], a held change, two events and budget readings (written
/// past the store, whose readings are another test's business).
async fn record_more(place: &Place, store: &Store) {
    record(store).await;
    let run = store
        .start_run("manual", at("2026-11-04T09:00:00Z"), false)
        .await
        .unwrap();
    store
        .record_changes(
            Some(run),
            at("2026-11-04T09:00:00Z"),
            &[disabled("k6", "r2", ChangeKind::Assert, false, true)],
            Some(Outcome::Held),
        )
        .await
        .unwrap();
    for (kind, rule) in [
        (EventKind::SourceError, "r1"),
        (EventKind::GuardTripped, "r2"),
    ] {
        store
            .record_event(
                Some(run),
                at("2026-11-04T09:00:00Z"),
                kind,
                Some(rule),
                Some("k6"),
                &serde_json::json!({}),
            )
            .await
            .unwrap();
    }
    let raw = RawDatabase::connect(&place.dir.path().join("kw.db"), place.postgres.as_ref()).await;
    raw.execute(&format!(
        "INSERT INTO budget_readings (run_id, at, rule, key_hash, \"window\", spend_usd, budget_usd) VALUES
         ({run}, '2026-11-04T09:00:00Z', 'r1', 'k1', 'monthly', 20.5, 50.0),
         ({run}, '2026-11-04T09:00:00Z', 'r1', 'k2', 'monthly', 30.0, 50.0),
         ({run}, '2026-11-09T09:00:00Z', 'r1', 'k1', 'monthly', 50.0, 50.0),
         ({run}, '2026-11-10T09:00:00Z', 'r2', NULL, 'daily', 3.0, 40.0)"
    ))
    .await;
    raw.close().await;
}

/// The report's queries read the same from PostgreSQL as from SQLite under
/// every grouping, and its week starts on Monday (needs the test cluster).
#[tokio::test]
async fn the_report_queries_read_the_same_on_postgresql_as_on_sqlite() {
    let Some((pg_place, postgres)) = fresh_store(Backend::Postgres).await else {
        return;
    };
    let (sqlite_place, sqlite) = fresh_store(Backend::Sqlite).await.unwrap();
    record_more(&pg_place, &postgres).await;
    record_more(&sqlite_place, &sqlite).await;
    for bucket in [
        Bucket::Key,
        Bucket::Rule,
        Bucket::Day,
        Bucket::Week,
        Bucket::Month,
        Bucket::All,
    ] {
        assert_eq!(
            report_queries(&postgres, bucket).await,
            report_queries(&sqlite, bucket).await,
            "{bucket:?}"
        );
    }
    // What was compared is there.
    let (since, until) = (at("2026-11-01T00:00:00Z"), at("2026-11-12T00:00:00Z"));
    let rule = Bucket::Rule;
    assert_eq!(
        postgres.report_held_runs(since, until, rule).await.unwrap(),
        [("r2".to_string(), 1)]
    );
    assert_eq!(
        postgres
            .report_event_counts(since, until, rule)
            .await
            .unwrap()
            .len(),
        2
    );
    let lines = postgres
        .report_budget_lines(since, until, rule)
        .await
        .unwrap();
    assert_eq!(
        lines
            .iter()
            .map(|l| (l.rule.as_str(), l.spend_usd, l.reached_at))
            .collect::<Vec<_>>(),
        [
            ("r1", 50.0, Some(at("2026-11-09T09:00:00Z"))),
            ("r2", 3.0, None)
        ]
    );
    // Nine that open or close a period, and the revert that disabled k5.
    let moves = postgres.report_disabled_moves(since, until).await.unwrap();
    assert_eq!(moves.keys.iter().map(|k| k.moves.len()).sum::<usize>(), 10);
    let weeks: BTreeSet<String> = postgres
        .report_change_counts(
            at("2026-11-01T00:00:00Z"),
            at("2026-11-12T00:00:00Z"),
            Bucket::Week,
        )
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.group)
        .collect();
    assert_eq!(
        weeks,
        ["2026-10-26", "2026-11-02", "2026-11-09"]
            .map(String::from)
            .into()
    );
    assert_eq!(marks(&pg_place).await, marks(&sqlite_place).await);
}

/// Each change's key, kind and disabled move, read past the store.
async fn marks(place: &Place) -> Vec<(String, String, Option<i64>)> {
    let raw = RawDatabase::connect(&place.dir.path().join("kw.db"), place.postgres.as_ref()).await;
    let marks = raw
        .rows(
            "SELECT key_hash, kind, disabled_move FROM changes ORDER BY id",
            &[],
        )
        .await;
    raw.close().await;
    marks
}
