//! `keywarden history`: every format, the filters, key names and the empty
//! message, against a database seeded through the store.

use crate::common;

use chrono::{DateTime, Utc};
use common::{offline as keywarden, stdout};
use keywarden::domain::{Field, FieldValue};
use keywarden::engine::plan::{Change, FieldChange};
use keywarden::engine::{ChangeKind, Outcome};
use keywarden::store::Store;
use serde_json::json;
use std::collections::BTreeMap;

const H1: &str = "f01d52606dc8f0a8303a7b5cc3fa07109c2e346cec7c0a16b40de462992ce943";
const H2: &str = "0e6a7cb1c9d0e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3";
const H3: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn change(
    (hash, name, rule): (&str, &str, &str),
    kind: ChangeKind,
    (field, from, to): (Field, FieldValue, FieldValue),
    reason: &str,
) -> Change {
    Change {
        key_hash: hash.into(),
        key_name: name.into(),
        rule: rule.into(),
        kind,
        fields: BTreeMap::from([(field, FieldChange { from, to })]),
        reason: reason.into(),
        held: None,
    }
}

/// A temp dir with an empty config and a database holding:
/// 1 assert team-a-ci disabled false→true (applied, 200, run 1) at 2025-11-27T10:00:03Z
/// 2 assert support-1 limit 100→5 (failed, 400) at 2025-12-01T00:00:00Z
/// 3 release support-1 limit 5→none (dry_run) at 2025-12-02T00:00:00Z
/// 4 drift dup (H3) disabled true→false (applied) at 2025-12-03T00:00:00Z
async fn seeded() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.toml"), "").unwrap();
    let store = Store::open(&dir.path().join("kw.db")).await.unwrap();
    let run = store
        .start_run("schedule", at("2025-11-27T10:00:00Z"), false)
        .await
        .unwrap();
    let ids = store
        .record_changes(
            Some(run),
            at("2025-11-27T10:00:03Z"),
            &[change(
                (H1, "team-a-ci", "team-a-monthly"),
                ChangeKind::Assert,
                (
                    Field::Disabled,
                    FieldValue::Disabled(false),
                    FieldValue::Disabled(true),
                ),
                "group monthly spend 52.10 USD >= budget 50.00 USD",
            )],
            None,
        )
        .await
        .unwrap();
    store
        .complete_changes(&ids, Outcome::Applied, Some(200), 1, None)
        .await
        .unwrap();
    let ids = store
        .record_changes(
            None,
            at("2025-12-01T00:00:00Z"),
            &[change(
                (H2, "support-1", "holiday"),
                ChangeKind::Assert,
                (
                    Field::Limit,
                    FieldValue::Limit(Some(100.0)),
                    FieldValue::Limit(Some(5.0)),
                ),
                "season 11-15..01-10 | holds",
            )],
            None,
        )
        .await
        .unwrap();
    store
        .complete_changes(
            &ids,
            Outcome::Failed,
            Some(400),
            1,
            Some("limit, must be ≥ usage"),
        )
        .await
        .unwrap();
    store
        .record_changes(
            None,
            at("2025-12-02T00:00:00Z"),
            &[change(
                (H2, "support-1", "holiday"),
                ChangeKind::Release,
                (
                    Field::Limit,
                    FieldValue::Limit(Some(5.0)),
                    FieldValue::Limit(None),
                ),
                "season ended",
            )],
            Some(Outcome::DryRun),
        )
        .await
        .unwrap();
    let ids = store
        .record_changes(
            None,
            at("2025-12-03T00:00:00Z"),
            &[change(
                (H3, "dup", "team-a-monthly"),
                ChangeKind::Drift,
                (
                    Field::Disabled,
                    FieldValue::Disabled(true),
                    FieldValue::Disabled(false),
                ),
                "someone re-enabled it",
            )],
            None,
        )
        .await
        .unwrap();
    store
        .complete_changes(&ids, Outcome::Applied, None, 0, None)
        .await
        .unwrap();
    store.close().await;
    dir
}

fn ids(json: &serde_json::Value) -> Vec<i64> {
    json.as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn json_prints_the_spec_object_newest_first() {
    let dir = seeded().await;
    let json: serde_json::Value = serde_json::from_str(&stdout(&keywarden(
        dir.path(),
        &["history", "--format", "json"],
    )))
    .unwrap();
    assert_eq!(ids(&json), [4, 3, 2, 1]);
    assert_eq!(
        json[3],
        json!({"id": 1, "run_id": 1, "at": "2025-11-27T10:00:03Z",
               "rule": "team-a-monthly", "key_hash": H1, "key_name": "team-a-ci",
               "kind": "assert", "fields": {"disabled": {"from": false, "to": true}},
               "reason": "group monthly spend 52.10 USD >= budget 50.00 USD",
               "outcome": "applied", "error": null, "http_status": 200, "attempts": 1,
               "request_id": "req-1"})
    );
    assert_eq!(
        json[1]["fields"],
        json!({"limit": {"from": 5.0, "to": null}}),
        "no limit is null, as on the wire"
    );
    assert_eq!(json[1]["outcome"], "dry_run");
    assert_eq!(json[2]["error"], "limit, must be ≥ usage");
}

#[tokio::test]
async fn jsonl_prints_one_object_a_line() {
    let dir = seeded().await;
    let text = stdout(&keywarden(dir.path(), &["history", "--format", "jsonl"]));
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines
            .iter()
            .map(|o| o["id"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [4, 3, 2, 1]
    );
    assert_eq!(lines[0]["kind"], "drift");
}

#[tokio::test]
async fn csv_has_a_header_and_reads_back() {
    let dir = seeded().await;
    let text = stdout(&keywarden(dir.path(), &["history", "--format", "csv"]));
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        [
            "id",
            "run_id",
            "at",
            "rule",
            "key_hash",
            "key_name",
            "kind",
            "fields",
            "reason",
            "outcome",
            "error",
            "http_status",
            "attempts",
            "request_id"
        ]
    );
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 4);
    let failed = &records[2];
    assert_eq!(&failed[0], "2");
    assert_eq!(&failed[1], "");
    assert_eq!(&failed[4], H2);
    let fields: serde_json::Value = serde_json::from_str(&failed[7]).unwrap();
    assert_eq!(fields, json!({"limit": {"from": 100.0, "to": 5.0}}));
    assert_eq!(&failed[8], "season 11-15..01-10 | holds");
    assert_eq!(
        (&failed[9], &failed[10], &failed[11], &failed[12]),
        ("failed", "limit, must be ≥ usage", "400", "1")
    );
}

#[tokio::test]
async fn markdown_is_a_pipe_table_with_escaped_cells() {
    let dir = seeded().await;
    let text = stdout(&keywarden(dir.path(), &["history", "--format", "markdown"]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "| id | at | rule | key | kind | fields | outcome | reason |"
    );
    assert_eq!(
        lines[1],
        "| --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    assert_eq!(lines.len(), 6);
    assert_eq!(
        lines[4],
        "| 2 | 2025-12-01T00:00:00Z | holiday | support-1 | assert | limit 100.00→5.00 | failed | season 11-15..01-10 \\| holds |"
    );
    assert_eq!(
        lines[5],
        "| 1 | 2025-11-27T10:00:03Z | team-a-monthly | team-a-ci | assert | disabled false→true | applied | group monthly spend 52.10 USD >= budget 50.00 USD |"
    );
}

#[tokio::test]
async fn table_shows_fields_for_people() {
    let dir = seeded().await;
    let text = stdout(&keywarden(dir.path(), &["history"]));
    for expected in [
        "team-a-ci",
        "disabled false→true",
        "limit 5.00→none",
        "dry_run",
        "someone re-enabled it",
    ] {
        assert!(text.contains(expected), "{expected:?} in\n{text}");
    }
    assert!(
        text.find("someone re-enabled it").unwrap() < text.find("team-a-ci").unwrap(),
        "newest first"
    );
}

#[tokio::test]
async fn filters_narrow_the_rows() {
    let dir = seeded().await;
    let run = |args: &[&str]| {
        let mut all = vec!["history", "--format", "json"];
        all.extend_from_slice(args);
        ids(&serde_json::from_str(&stdout(&keywarden(dir.path(), &all))).unwrap())
    };
    assert_eq!(run(&["--since", "2025-12-01"]), [4, 3, 2]);
    assert_eq!(
        run(&["--until", "2025-12-01"]),
        [2, 1],
        "a bare --until date includes that day"
    );
    assert_eq!(
        run(&[
            "--since",
            "2025-12-01T12:00",
            "--until",
            "2025-12-02T23:59:59Z"
        ]),
        [3]
    );
    assert_eq!(run(&["--rule", "holiday"]), [3, 2]);
    assert_eq!(run(&["--kind", "release"]), [3]);
    assert_eq!(run(&["--outcome", "applied"]), [4, 1]);
    assert_eq!(run(&["--key", H1]), [1]);
    assert_eq!(
        run(&["--key", "support-1"]),
        [3, 2],
        "a unique name resolves to its hash"
    );
    assert_eq!(run(&["--limit", "2"]), [4, 3]);
    assert_eq!(
        run(&["--since", "30d"]),
        Vec::<i64>::new(),
        "a duration counts back from now"
    );
}

#[tokio::test]
async fn an_ambiguous_or_unknown_key_name_is_a_usage_error() {
    let dir = seeded().await;
    let store = Store::open(&dir.path().join("kw.db")).await.unwrap();
    store
        .record_changes(
            None,
            at("2025-12-04T00:00:00Z"),
            &[change(
                (H2, "dup", "holiday"),
                ChangeKind::Assert,
                (
                    Field::Disabled,
                    FieldValue::Disabled(false),
                    FieldValue::Disabled(true),
                ),
                "renamed",
            )],
            Some(Outcome::DryRun),
        )
        .await
        .unwrap();
    store.close().await;
    let out = keywarden(dir.path(), &["history", "--key", "dup"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ambiguous") && err.contains(H2) && err.contains(H3),
        "{err}"
    );
    let out = keywarden(dir.path(), &["history", "--key", "nobody"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no key named `nobody`"));
}

#[tokio::test]
async fn bad_flags_exit_2_naming_the_flag() {
    let dir = seeded().await;
    for (args, flag) in [
        (&["history", "--kind", "boom"][..], "--kind"),
        (&["history", "--outcome", "done"][..], "--outcome"),
        (&["history", "--since", "last week"][..], "--since"),
        (&["history", "--until", "2025-13-01"][..], "--until"),
        (&["history", "--limit", "0"][..], "--limit"),
    ] {
        let out = keywarden(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(flag), "{args:?}: {err}");
        assert!(out.stdout.is_empty());
    }
}

#[tokio::test]
async fn an_empty_result_says_so() {
    let dir = seeded().await;
    let out = stdout(&keywarden(
        dir.path(),
        &["history", "--rule", "nothing-here"],
    ));
    assert_eq!(out, "no changes recorded between the beginning and now\n");
    let out = stdout(&keywarden(
        dir.path(),
        &["history", "--since", "2024-01-01", "--until", "2024-01-31"],
    ));
    assert_eq!(
        out,
        "no changes recorded between 2024-01-01T00:00:00Z and 2024-02-01T00:00:00Z\n"
    );
    let out = stdout(&keywarden(
        dir.path(),
        &["history", "--rule", "nothing-here", "--format", "json"],
    ));
    assert_eq!(out, "[]\n", "programs still get valid JSON");
}
