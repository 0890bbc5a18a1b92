//! The tallies of settled changes (migration 0010) that the report's
//! counts over time read, on both backends: kept as rows are recorded and
//! completed, they count what the rows themselves say, open rows included.

use crate::common::backends::fresh_store;
use crate::common::disable_change;
use chrono::{DateTime, Duration, Utc};
use keywarden::engine::plan::Change;
use keywarden::engine::{ChangeKind, Hold, Outcome};
use keywarden::store::report::Bucket;
use keywarden::store::{HistoryFilter, Store};
use std::collections::BTreeMap;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn disable(key: &str, kind: ChangeKind) -> Change {
    disable_change(key, &format!("name-{key}"), "r", kind)
}

/// Runs across two months: rows settled as they are recorded (dry run,
/// held), completed applied or failed, left pending, left unknown, and
/// unknown ones completed later.
async fn record(store: &Store) {
    let start = at("2026-10-30T22:00:00Z");
    let mut unknown = Vec::new();
    for run in 0..6 {
        let when = start + Duration::hours(12 * run);
        let changes: Vec<Change> = (0..5)
            .map(|k| {
                let kind = [ChangeKind::Assert, ChangeKind::Reassert][k % 2];
                disable(&format!("k{run}-{k}"), kind)
            })
            .collect();
        let dry = store
            .record_changes(None, when, &changes[..1], Some(Outcome::DryRun))
            .await
            .unwrap();
        assert_eq!(dry.len(), 1);
        let held = Change {
            held: Some(Hold::Guard),
            ..changes[1].clone()
        };
        let ids = store
            .record_changes(
                None,
                when,
                &[
                    held,
                    changes[2].clone(),
                    changes[3].clone(),
                    changes[4].clone(),
                ],
                None,
            )
            .await
            .unwrap();
        store
            .complete_changes(&ids[1..2], Outcome::Applied, Some(200), 1, None)
            .await
            .unwrap();
        store
            .complete_changes(&ids[2..3], Outcome::Failed, Some(500), 3, Some("boom"))
            .await
            .unwrap();
        // The last row of odd runs stays pending; of even runs goes unknown.
        if run % 2 == 0 {
            store
                .complete_changes(&ids[3..], Outcome::Unknown, None, 6, Some("timeout"))
                .await
                .unwrap();
            unknown.push(ids[3]);
        }
    }
    // The first two unknown rows settle in a later run; the third stays open.
    store
        .complete_changes(&unknown[..2], Outcome::Applied, Some(200), 1, None)
        .await
        .unwrap();
}

/// The counts of `[since, until)` under `bucket`, as the report reads them.
async fn counted(
    store: &Store,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    bucket: Bucket,
) -> BTreeMap<(String, String, String), i64> {
    store
        .report_change_counts(since, until, bucket)
        .await
        .unwrap()
        .into_iter()
        .map(|c| {
            let key = (c.group, c.kind.as_str().into(), c.outcome.as_str().into());
            (key, c.count)
        })
        .collect()
}

/// The same counts from the rows themselves, one by one.
async fn expected(
    store: &Store,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    group: impl Fn(&str) -> String,
) -> BTreeMap<(String, String, String), i64> {
    let filter = HistoryFilter {
        since: Some(since),
        until: Some(until),
        ..HistoryFilter::default()
    };
    let mut counts = BTreeMap::new();
    for row in store.changes(&filter).await.unwrap() {
        let stamp = row.at.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let key = (
            group(&stamp),
            row.kind.as_str().into(),
            row.outcome.as_str().into(),
        );
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

crate::on_both_backends! {
    async fn the_counts_over_time_are_the_rows_counted_one_by_one_open_rows_included(backend) {
        let (_place, store) = fresh_store(backend).await.unwrap();
        record(&store).await;
        for (since, until) in [
            (at("2026-10-01T00:00:00Z"), at("2026-12-01T00:00:00Z")),
            // Part of the runs: the first and the last two left out.
            (at("2026-10-31T00:00:00Z"), at("2026-11-01T10:00:00Z")),
        ] {
            let by_day = expected(&store, since, until, |s| s[..10].to_string()).await;
            assert_eq!(counted(&store, since, until, Bucket::Day).await, by_day);
            let by_month = expected(&store, since, until, |s| s[..7].to_string()).await;
            assert_eq!(counted(&store, since, until, Bucket::Month).await, by_month);
            let all = expected(&store, since, until, |_| String::new()).await;
            assert_eq!(counted(&store, since, until, Bucket::All).await, all);
        }
        // What was compared is there: every outcome, open ones included.
        let all = counted(
            &store,
            at("2026-10-01T00:00:00Z"),
            at("2026-12-01T00:00:00Z"),
            Bucket::All,
        )
        .await;
        let outcomes: BTreeMap<&str, i64> = all.iter().fold(BTreeMap::new(), |mut m, (k, n)| {
            *m.entry(k.2.as_str()).or_insert(0) += n;
            m
        });
        assert_eq!(
            outcomes,
            BTreeMap::from([
                ("applied", 8),
                ("dry_run", 6),
                ("failed", 6),
                ("held", 6),
                ("pending", 3),
                ("unknown", 1),
            ])
        );
    }
}
