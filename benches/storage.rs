//! SPEC §10 storage figures: recording the history of a 10,000-change run
//! (`record_changes` in one transaction, then `complete_changes`; target
//! < 200 ms), and `report::build` over 1,000,000 change rows and 5,000,000
//! snapshots (target < 1 s). The big database is generated in SQL once and
//! kept in `target/bench-fixtures/`.

mod support;

use support::history::{
    CHANGE_ROWS, CHANGES_PER_RUN, RUN_EVERY_SECS, SNAPSHOT_ROWS, fixture, fixture_start,
};

use chrono::{DateTime, Duration as Days, Utc};
use keywarden::domain::{Field, FieldValue};
use keywarden::engine::plan::FieldChange;
use keywarden::engine::{Change, ChangeKind, Outcome};
use keywarden::report::GroupBy;
use keywarden::store::Store;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const RUN_CHANGES: usize = 10_000;

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
