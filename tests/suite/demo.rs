//! `keywarden demo` (SPEC §9), run as a newcomer would: the built binary,
//! no configuration, no credential, an empty working directory.

use crate::common::text;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

/// Runs the binary in `cwd` with an empty environment.
async fn keywarden(cwd: &Path, args: &[&str]) -> Output {
    tokio::process::Command::from(crate::common::keywarden())
        .args(args)
        .current_dir(cwd)
        .output()
        .await
        .unwrap()
}

/// The index of the first line at or after `from` that contains every one of `parts`.
fn line_with(lines: &[&str], from: usize, parts: &[&str]) -> Option<usize> {
    (from..lines.len()).find(|&n| parts.iter().all(|p| lines[n].contains(p)))
}

#[tokio::test]
async fn seed_1_tells_the_same_story_twice_and_writes_the_html_report() {
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let args = ["demo", "--seed", "1"];
    let (first, second) = tokio::join!(keywarden(one.path(), &args), keywarden(two.path(), &args));
    for out in [&first, &second] {
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    let story = text(&first.stdout);
    assert_eq!(
        story,
        text(&second.stdout),
        "the same seed, the same output"
    );

    let lines: Vec<&str> = story.lines().collect();
    let disabled = line_with(&lines, 0, &["disabled  — "]).expect("a key is disabled");
    assert!(
        line_with(&lines, disabled, &["2027-01-01", "enabled  — "]).is_some(),
        "the month rolls over and a key is re-enabled:\n{story}"
    );
    let season = line_with(&lines, 0, &["limit_reset monthly → daily"])
        .expect("a season switches limit_reset to daily");
    assert!(
        line_with(&lines, season, &["limit_reset daily → monthly"]).is_some(),
        "and back after the season:\n{story}"
    );
    // The forecast chapter: a warning days ahead of the crossing, then a
    // forecast rule lowering the limit ahead of it, held by its budget pair
    // until the month rolls over (no flapping).
    let warned = line_with(
        &lines,
        0,
        &["research-01", "warned: budget_forecast", "(in 4d"],
    )
    .unwrap_or_else(|| panic!("research-01 is warned days ahead:\n{story}"));
    let lowered = line_with(
        &lines,
        warned,
        &[
            "research-01",
            "limit none → 30.00",
            "before the window ends",
        ],
    )
    .unwrap_or_else(|| panic!("then its limit is lowered ahead of the crossing:\n{story}"));
    assert!(
        lines[warned] < lines[lowered],
        "the warning comes first, days earlier"
    );
    let released = line_with(&lines, lowered, &["research-01", "limit 30.00 → none"])
        .unwrap_or_else(|| panic!("the limit is given back:\n{story}"));
    assert!(
        lines[released].starts_with("2027-01-01 00:00"),
        "only when the month rolls over:\n{story}"
    );
    for column in ["group", "changes", "keys disabled", "keys re-enabled"] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with('│') && l.contains(column)),
            "the report table has {column}:\n{story}"
        );
    }
    assert!(story.contains("team-a-monthly"), "{story}");

    for dir in [&one, &two] {
        let file = dir.path().join("keywarden-demo-report.html");
        let html = std::fs::read_to_string(&file).expect("the HTML report is written");
        assert!(!html.is_empty());
        assert!(html.contains("<svg"), "the report has charts");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the report is private: {mode:o}");
    }
}

#[tokio::test]
async fn days_and_database_keep_a_short_history_to_explore() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let db = db.to_str().unwrap();
    let out = keywarden(dir.path(), &["--database", db, "demo", "--days", "7"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let story = text(&out.stdout);
    assert!(
        !story.contains("2027-01-01"),
        "seven days from 14 Dec end before the new year:\n{story}"
    );
    assert!(
        story.contains(&format!("--database {db} history")),
        "{story}"
    );

    let out = keywarden(
        dir.path(),
        &["history", "--database", db, "--format", "json"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!rows.is_empty(), "the demo's changes are kept");
    assert!(
        rows.iter()
            .all(|r| r["at"].as_str().unwrap() < "2026-12-21T00:00:00Z"),
        "seven days only"
    );
    assert!(rows.iter().any(|r| r["rule"] == "team-a-monthly"));
}

#[tokio::test]
async fn the_demo_evaluates_every_example_rule_without_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let out = keywarden(dir.path(), &["demo", "--days", "2"]).await;
    let (story, log) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(
        !log.contains("WARN") && !story.contains("WARN"),
        "the demo's own example does not warn:\n{log}{story}"
    );
    assert!(
        story.contains("TEAM_B_BUDGET_USD=150"),
        "the demo says where team-b's budget comes from:\n{story}"
    );
}
