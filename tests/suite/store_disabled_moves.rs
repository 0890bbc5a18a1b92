//! The disabled moves of `changes` (migration 0007): marked when a change's
//! outcome becomes `applied`, backfilled for the rows of older databases,
//! and the report's held-disabled hours and key counts read from them.

use crate::common::{migrated_before, raw};
use chrono::{DateTime, Utc};
use keywarden::domain::{Field, FieldValue};
use keywarden::engine::plan::{Change, FieldChange};
use keywarden::engine::{ChangeKind, Outcome};
use keywarden::report::GroupBy;
use keywarden::report::{self, Report};
use keywarden::store::Store;
use std::collections::BTreeMap;
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
