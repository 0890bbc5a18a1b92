//! `keywarden report` over two simulated months driven through the real
//! engine against the sandbox: the figures in every format, the disabled
//! hours to the minute, and totals equal to `history` for the same period.

use crate::report_history;

use report_history::{SINCE, UNTIL, at, disabled_minutes, keywarden, keywarden_ok, two_months};
use serde_json::Value;
use std::collections::HashMap;

fn minutes(hours: &Value) -> i64 {
    (hours.as_f64().unwrap() * 60.0).round() as i64
}

fn group<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == name)
        .unwrap_or_else(|| panic!("no group {name} in {report:#}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn report_figures_agree_in_every_format_and_with_history() {
    let h = two_months().await;
    let (first, open, total) = disabled_minutes();
    let period = ["--since", SINCE, "--until", UNTIL];

    // JSON, by month.
    let json: Value = serde_json::from_str(
        &keywarden_ok(
            &h,
            &[
                &["report", "--format", "json", "--group-by", "month"],
                &period[..],
            ]
            .concat(),
        )
        .await,
    )
    .unwrap();
    assert_eq!(json["since"], "2026-11-01T00:00:00Z");
    assert_eq!(json["until"], "2027-01-01T00:00:00Z");
    assert_eq!(json["group_by"], "month");
    let t = &json["totals"];
    assert_eq!(t["changes"], 9, "{t:#}");
    assert_eq!(t["by_kind"]["assert"], 6);
    assert_eq!(t["by_kind"]["release"], 2);
    assert_eq!(t["by_kind"]["drift"], 1);
    assert_eq!(t["by_kind"]["reassert"], 0);
    assert_eq!(t["by_outcome"]["applied"], 8);
    assert_eq!(t["by_outcome"]["failed"], 1);
    assert_eq!(t["keys_disabled"], 2);
    assert_eq!(t["keys_reenabled"], 1, "the drift re-enabled nothing");
    assert_eq!(t["failures"], 1);
    assert_eq!(t["source_errors"], 0);
    assert_eq!(t["guard_trips"], 0);
    assert_eq!(minutes(&t["disabled_hours"]), total);

    let nov = group(&json, "2026-11");
    assert_eq!(nov["changes"], 5);
    assert_eq!(nov["keys_disabled"], 2);
    assert_eq!(nov["keys_reenabled"], 0);
    // Both keys from Nov 10 10:00 to the end of November.
    let nov_minutes = 2 * (at(12, 1, 0, 0) - at(11, 10, 10, 0)).num_minutes();
    assert_eq!(minutes(&nov["disabled_hours"]), nov_minutes);
    let budget = &nov["budgets"][0];
    assert_eq!(budget["rule"], "team-a-monthly");
    assert_eq!(budget["window"], "monthly");
    assert_eq!(budget["budget_usd"], 50.0);
    assert_eq!(budget["spend_usd"], 55.0);
    assert_eq!(budget["exceeded_at"], "2026-11-10T10:00:00Z");
    let dec = group(&json, "2026-12");
    assert_eq!(dec["changes"], 4);
    assert_eq!(dec["keys_reenabled"], 1);
    assert_eq!(minutes(&dec["disabled_hours"]), total - nov_minutes);
    assert_eq!(dec["budgets"][0]["spend_usd"], 60.0);
    assert_eq!(dec["budgets"][0]["exceeded_at"], "2026-12-20T10:00:00Z");

    // Totals equal `history` for the same period, row for row.
    let history: Value = serde_json::from_str(
        &keywarden_ok(
            &h,
            &[&["history", "--format", "json"], &period[..]].concat(),
        )
        .await,
    )
    .unwrap();
    let rows = history.as_array().unwrap();
    assert_eq!(rows.len() as i64, t["changes"].as_i64().unwrap());
    for kind in [
        "assert", "reassert", "release", "drift", "revert", "deleted",
    ] {
        let n = rows.iter().filter(|r| r["kind"] == kind).count() as i64;
        assert_eq!(t["by_kind"][kind].as_i64().unwrap(), n, "{kind}");
    }

    // CSV by rule, parsed back.
    let csv_text = keywarden_ok(
        &h,
        &[
            &["report", "--format", "csv", "--group-by", "rule"],
            &period[..],
        ]
        .concat(),
    )
    .await;
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let header = reader.headers().unwrap().clone();
    let records: Vec<HashMap<String, String>> = reader
        .records()
        .map(|r| {
            header
                .iter()
                .map(String::from)
                .zip(r.unwrap().iter().map(String::from))
                .collect()
        })
        .collect();
    let row = |name: &str| {
        records
            .iter()
            .find(|r| r["group"] == name)
            .unwrap_or_else(|| panic!("no row {name}"))
    };
    let team = row("team-a-monthly");
    assert_eq!(team["changes"], "6");
    assert_eq!(team["kind_assert"], "4");
    assert_eq!(team["kind_release"], "1");
    assert_eq!(team["kind_drift"], "1");
    assert_eq!(team["keys_disabled"], "2");
    assert_eq!(team["keys_reenabled"], "1");
    assert_eq!(
        (team["disabled_hours"].parse::<f64>().unwrap() * 60.0).round() as i64,
        total
    );
    assert_eq!(
        team["budgets"],
        "team-a-monthly monthly 60.00 50.00 2026-11-10T10:00:00Z"
    );
    let season = row("holiday-support");
    assert_eq!(season["changes"], "3");
    assert_eq!(season["outcome_failed"], "1");
    assert_eq!(season["failures"], "1");
    assert_eq!(season["disabled_hours"], "0");
    let totals = row("(total)");
    assert_eq!(totals["changes"], "9");
    assert_eq!(totals["outcome_applied"], "8");

    // Markdown by key: one row per key, the disabled time to the minute.
    let md = keywarden_ok(
        &h,
        &[
            &["report", "--format", "markdown", "--group-by", "key"],
            &period[..],
        ]
        .concat(),
    )
    .await;
    let hm = |m: i64| format!("{}h {:02}m", m / 60, m % 60);
    let md_row = |name: &str| -> Vec<String> {
        let line = md
            .lines()
            .find(|l| l.starts_with(&format!("| {name} |")))
            .unwrap_or_else(|| panic!("no row {name} in\n{md}"));
        line.trim_matches('|')
            .split(" | ")
            .map(|c| c.trim().to_string())
            .collect()
    };
    let ci = md_row("team-a-ci");
    assert_eq!(ci[1], "3"); // assert, release, assert
    assert_eq!(ci[6], hm(first + open));
    let web = md_row("team-a-web");
    assert_eq!(web[2], "assert 2, drift 1");
    assert_eq!(web[6], hm(first + open));
    let support = md_row("support-1");
    assert_eq!(support[3], "applied 2, failed 1");
    assert_eq!(support[6], "0h 00m");
    assert_eq!(md_row("(total)")[6], hm(total));

    // The table for people says the same.
    let table = keywarden_ok(&h, &[&["report"], &period[..]].concat()).await;
    assert!(table.contains("team-a-monthly"), "{table}");
    assert!(table.contains(&hm(total)), "{table}");
}

#[tokio::test(flavor = "multi_thread")]
async fn report_on_a_period_without_changes_says_so_and_exits_0() {
    let h = two_months().await;
    let out = keywarden(
        &h,
        &["report", "--since", "2025-01-01", "--until", "2025-01-31"],
    )
    .await;
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "no changes recorded between 2025-01-01T00:00:00Z and 2025-02-01T00:00:00Z\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn report_output_file_is_created_private() {
    use std::os::unix::fs::PermissionsExt;
    let h = two_months().await;
    let file = h.dir.path().join("report.html");
    let path = file.display().to_string();
    keywarden_ok(
        &h,
        &[
            "report", "--since", SINCE, "--until", UNTIL, "--format", "html", "--output", &path,
        ],
    )
    .await;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let html = std::fs::read_to_string(&file).unwrap();
    for banned in ["url(", "src=", "<script", "<link", "@import"] {
        assert!(!html.contains(banned), "the HTML report holds {banned:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_period_is_a_usage_error() {
    let h = two_months().await;
    let out = keywarden(
        &h,
        &["report", "--since", "2026-12-01", "--until", "2026-11-01"],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not before --until"));
}

/// Records one applied change of `key` by `rule` at `when` (its own run).
async fn applied(
    store: &keywarden::store::Store,
    when: &str,
    key: &str,
    rule: &str,
    kind: keywarden::engine::ChangeKind,
    to_disabled: bool,
) {
    use keywarden::domain::{Field, FieldValue};
    use keywarden::engine::plan::{Change, FieldChange};
    let when = chrono::DateTime::parse_from_rfc3339(when).unwrap().to_utc();
    let change = Change {
        key_hash: key.into(),
        key_name: format!("{key}-name"),
        rule: rule.into(),
        kind,
        fields: std::collections::BTreeMap::from([(
            Field::Disabled,
            FieldChange {
                from: FieldValue::Disabled(!to_disabled),
                to: FieldValue::Disabled(to_disabled),
            },
        )]),
        reason: "test".into(),
        held: None,
    };
    let run = store.start_run("manual", when, false).await.unwrap();
    let ids = store
        .record_changes(Some(run), when, &[change], None)
        .await
        .unwrap();
    store
        .complete_changes(
            &ids,
            keywarden::engine::Outcome::Applied,
            Some(200),
            1,
            None,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn periods_open_at_since_count_from_since_under_the_rule_that_opened_them() {
    use keywarden::engine::ChangeKind::{Assert, Reassert, Release};
    use keywarden::report::GroupBy;
    let dir = tempfile::tempdir().unwrap();
    let store = keywarden::store::Store::open(&dir.path().join("kw.db"))
        .await
        .unwrap();
    // a: disabled by rule-a before the period, reasserted by rule-b (still
    // the same period), released inside it.
    applied(&store, "2026-10-01T00:00:00Z", "a", "rule-a", Assert, true).await;
    applied(
        &store,
        "2026-10-20T00:00:00Z",
        "a",
        "rule-b",
        Reassert,
        true,
    )
    .await;
    applied(
        &store,
        "2026-11-01T06:00:00Z",
        "a",
        "rule-b",
        Release,
        false,
    )
    .await;
    // b: disabled before the period and never released; no change inside it.
    applied(
        &store,
        "2026-09-15T00:00:00Z",
        "b",
        "rule-b",
        Release,
        false,
    )
    .await;
    applied(&store, "2026-10-10T12:00:00Z", "b", "rule-b", Assert, true).await;
    // c: disabled and released before the period: nothing.
    applied(&store, "2026-10-02T00:00:00Z", "c", "rule-c", Assert, true).await;
    applied(
        &store,
        "2026-10-03T00:00:00Z",
        "c",
        "rule-c",
        Release,
        false,
    )
    .await;

    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
    let (since, until) = (at("2026-11-01T00:00:00Z"), at("2026-11-02T00:00:00Z"));
    let hours = |g: &keywarden::report::Group| (g.counters.disabled_hours * 60.0).round() as i64;

    let by_rule = keywarden::report::build(&store, since, until, GroupBy::Rule)
        .await
        .unwrap();
    assert_eq!(
        (by_rule.totals.disabled_hours * 60.0).round() as i64,
        6 * 60 + 24 * 60
    );
    let rule = |name: &str| by_rule.groups.iter().find(|g| g.group == name);
    assert_eq!(
        hours(rule("rule-a").unwrap()),
        6 * 60,
        "a's period is rule-a's"
    );
    assert_eq!(hours(rule("rule-b").unwrap()), 24 * 60);
    assert!(rule("rule-c").is_none());

    let by_key = keywarden::report::build(&store, since, until, GroupBy::Key)
        .await
        .unwrap();
    let key = |name: &str| by_key.groups.iter().find(|g| g.group == name).unwrap();
    assert_eq!(hours(key("a-name")), 6 * 60);
    assert_eq!(
        hours(key("b-name")),
        24 * 60,
        "named though unchanged in the period"
    );

    let by_day = keywarden::report::build(&store, at("2026-10-31T12:00:00Z"), until, GroupBy::Day)
        .await
        .unwrap();
    let day = |name: &str| by_day.groups.iter().find(|g| g.group == name).unwrap();
    assert_eq!(hours(day("2026-10-31")), 2 * 12 * 60);
    assert_eq!(hours(day("2026-11-01")), 6 * 60 + 24 * 60);
}

/// A group budget of 100 USD a month over two keys that each spend 2 USD/h,
/// run every 15 minutes from 10 November 10:00 for 8 hours.
async fn eight_hours_of_traffic() -> crate::common::Harness {
    let rules = r#"
[[rule]]
name = "team-a-monthly"
keys = { names = ["team-a-*"] }
when.budget = { usd = 100.0, window = "monthly", scope = "group" }
set.disabled = true
"#;
    let keys = ["team-a-1", "team-a-2"].map(crate::common::seed).to_vec();
    let h = crate::common::Harness::new(crate::common::nov(10), keys, rules, |_| {}).await;
    crate::common::steady_traffic(&h.sandbox, "team-a-*", 2.0);
    h.apply().await;
    for _ in 0..32 {
        h.sandbox.account().advance(chrono::Duration::minutes(15));
        h.apply().await;
    }
    h
}

/// The report of `[since, until)` by rule at the harness's now, and its HTML.
async fn report_at_now(
    h: &crate::common::Harness,
    since: chrono::DateTime<chrono::Utc>,
    until: chrono::DateTime<chrono::Utc>,
) -> (keywarden::report::Report, String) {
    use keywarden::report::{self, GroupBy};
    let mut built = report::build(&h.store, since, until, GroupBy::Rule)
        .await
        .unwrap();
    report::add_projections(&h.store, &mut built, h.now())
        .await
        .unwrap();
    let html = report::html::render(&h.store, &built).await.unwrap();
    (built, html)
}

#[tokio::test]
async fn a_report_of_the_current_month_projects_the_budget_dashed_to_the_month_end() {
    let h = eight_hours_of_traffic().await;
    let now = h.now();
    assert_eq!(now, at(11, 10, 18, 0));
    let (report, html) = report_at_now(&h, at(11, 1, 0, 0), now).await;

    // 32 USD spent at 4 USD/h: 100 USD 17 hours later, 1976 USD by the
    // month's end (486 hours away).
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["projections"],
        serde_json::json!([{
            "rule": "team-a-monthly", "window": "monthly", "at": "2026-11-10T18:00:00Z",
            "spend_usd": 32.0, "threshold_usd": 100.0, "rate_usd_per_hour": 4.0,
            "window_end": "2026-12-01T00:00:00Z", "projected_usd": 1976.0,
            "crossing_at": "2026-11-11T11:00:00Z"
        }])
    );
    let table = keywarden::report::text::table(&report);
    let heading = table
        .split("Where budgets are heading\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{table}"));
    for cell in [
        "32.00",
        "4.00",
        "1976.00",
        "2026-12-01T00:00:00Z",
        "2026-11-11T11:00:00Z",
    ] {
        assert!(heading.contains(cell), "{cell} in {heading}");
    }
    assert!(html.contains("<table class=\"projections\">"), "{html}");

    // The chart reaches the month's end and the spend goes on dashed from
    // its last reading.
    let chart = html
        .split("<figure class=\"budget-chart\"")
        .nth(1)
        .unwrap()
        .split("</figure>")
        .next()
        .unwrap();
    let dashed: Vec<&str> = chart
        .lines()
        .filter(|l| l.contains("stroke-dasharray"))
        .collect();
    assert_eq!(dashed.len(), 2, "the projection and its legend: {dashed:?}");
    assert!(dashed.iter().all(|l| l.contains("class=\"projection\"")));
    assert!(chart.contains("\nprojection\n</text>"), "{chart}");
    // The dashed line rises from left to right (SVG y grows downwards).
    let points: Vec<(i32, i32)> = dashed[1]
        .split("points=\"")
        .nth(1)
        .unwrap()
        .trim_end_matches("\"/>")
        .split(' ')
        .map(|p| {
            let (x, y) = p.split_once(',').unwrap();
            (x.parse().unwrap(), y.parse().unwrap())
        })
        .collect();
    assert!(
        points[1].0 > points[0].0 && points[1].1 < points[0].1,
        "{points:?}"
    );
}

#[tokio::test]
async fn a_report_of_a_past_month_has_no_projection() {
    let h = eight_hours_of_traffic().await;
    h.sandbox.account().set_now(at(12, 3, 9, 0));
    let (report, html) = report_at_now(&h, at(11, 1, 0, 0), at(12, 1, 0, 0)).await;
    assert!(report.projections.is_empty(), "{:?}", report.projections);
    let json = serde_json::to_value(&report).unwrap();
    assert!(json.get("projections").is_none(), "{json}");
    assert!(
        html.contains("<figure class=\"budget-chart\""),
        "the spend is still charted"
    );
    assert!(!html.contains("stroke-dasharray"), "no projection drawn");
    assert!(!keywarden::report::text::table(&report).contains("Where budgets are heading"));
}
