//! Forecasts (SPEC §11) against the sandbox: its traffic spends as its clock
//! moves, keywarden runs every 15 minutes on the same clock, and a
//! `forecast` rule acts on where spend is heading.

use crate::common::{Harness, seed};
use crate::notify::Receiver;
use chrono::{DateTime, Duration, TimeZone, Utc};
use keywarden::config::{NotifyConfig, NotifyFormat};
use keywarden::domain::event::EventKind;
use keywarden::engine::ChangeKind;
use keywarden::engine::forecast::{Reading, burn_rate};
use keywarden::notify::{Backoff, Notifier, Webhook};
use keywarden::run::RunReport;
use keywarden::sandbox::traffic::{Pattern, TrafficSpec};
use serde_json::json;
use std::sync::Arc;

/// Steady traffic of `usd_per_hour` on the keys named `names` (BYOK usage when `byok`).
fn steady(h: &Harness, names: &[&str], usd_per_hour: f64, byok: bool) {
    h.sandbox
        .account()
        .add_traffic(TrafficSpec {
            names: Some(names.iter().map(|n| n.to_string()).collect()),
            hashes: None,
            usd_per_hour,
            pattern: Pattern::Steady,
            seed: 7,
            byok,
        })
        .unwrap();
}

/// Runs every 15 minutes for `hours`, the sandbox clock moving between runs;
/// the reports, oldest first.
async fn every_quarter_hour(h: &Harness, hours: f64) -> Vec<RunReport> {
    let mut reports = Vec::new();
    for _ in 0..(hours * 4.0).round() as i64 {
        h.sandbox.account().advance(Duration::minutes(15));
        reports.push(h.apply().await);
    }
    reports
}

fn at(y: i32, m: u32, d: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, hour, 0, 0).unwrap()
}

/// The harness on Monday 16 November 2026 at 08:00 with the one key
/// `team-a-01` and `rules`.
async fn team_a_01(rules: &str) -> Harness {
    Harness::new(at(2026, 11, 16, 8), vec![seed("team-a-01")], rules, |_| {}).await
}

const LOWER_LIMIT: &str = r#"
[[rule]]
name = "slow-down"
keys = { names = ["team-a-*"] }
when.forecast = { usd = 50.0, window = "monthly", lookback = "2h", within = "24h" }
set.limit = 45.0
"#;

#[tokio::test]
async fn steady_traffic_lowers_the_limit_before_the_budget_is_reached() {
    let h = team_a_01(LOWER_LIMIT).await;
    steady(&h, &["team-a-01"], 2.0, false);
    let first = h.apply().await;
    assert_eq!(
        first.plan.skips[0].reason,
        "key team-a-01: burn rate unknown: 1 usage readings in the lookback, 3 needed",
        "too little history: not evaluated, and why"
    );
    assert!(first.rows.is_empty());
    every_quarter_hour(&h, 2.0).await;
    let patches = h.take_patches();
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert_eq!(patches[0].body, serde_json::json!({ "limit": 45.0 }));
    let spent = h.key("team-a-01").usage_monthly.unwrap();
    assert!(spent < 10.0, "acted long before the budget: {spent}");
    let rows = h.history().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].kind, ChangeKind::Assert);
    assert!(
        rows[0]
            .reason
            .contains("at 2.00 USD/h over 2h reaches the 50.00 USD budget at 2026-11-17T"),
        "{}",
        rows[0].reason
    );
    assert!(
        rows[0].reason.ends_with("before the window ends"),
        "{}",
        rows[0].reason
    );
}

#[tokio::test]
async fn a_window_rolling_over_inside_the_lookback_keeps_the_rate() {
    let rule = LOWER_LIMIT.replace("usd = 50.0", "usd = 10.0");
    let h = Harness::new(at(2026, 11, 30, 21), vec![seed("team-a-01")], &rule, |_| {}).await;
    steady(&h, &["team-a-01"], 2.0, false);
    // Before midnight the crossing (10 USD at 2 USD/h) falls after the
    // month ends: the rule does not hold.
    every_quarter_hour(&h, 2.75).await;
    assert!(h.take_patches().is_empty());
    // After it, the monthly spend starts again from 0 but the rate, drawn
    // from lifetime usage across the roll-over, is still 2 USD/h.
    every_quarter_hour(&h, 0.5).await;
    let patches = h.take_patches();
    assert_eq!(patches.len(), 1, "{patches:?}");
    let rows = h.history().await;
    assert!(rows[0].at >= at(2026, 12, 1, 0), "{:?}", rows[0].at);
    assert!(
        rows[0].reason.starts_with("key monthly spend 0.")
            && rows[0]
                .reason
                .contains(" at 2.00 USD/h over 2h reaches the 10.00 USD budget"),
        "{}",
        rows[0].reason
    );
}

#[tokio::test]
async fn a_key_disabled_by_keywarden_stops_and_its_rate_goes_to_zero() {
    let rules = r#"
[[rule]]
name = "stop"
keys = { names = ["team-a-*"] }
when.forecast = { usd = 50.0, window = "monthly", lookback = "2h", within = "3d" }
set.disabled = true
"#;
    let h = team_a_01(rules).await;
    steady(&h, &["team-a-01"], 2.0, false);
    every_quarter_hour(&h, 1.25).await;
    assert!(h.key("team-a-01").disabled, "disabled on the forecast");
    assert_eq!(h.history().await.len(), 1);
    // Disabled, it spends nothing: its rate falls and the forecast lets go
    // (a lone forecast rule flaps: the cookbook pairs it with a budget rule).
    every_quarter_hour(&h, 3.0).await;
    let release = h
        .history()
        .await
        .into_iter()
        .rev()
        .find(|r| r.kind == ChangeKind::Release)
        .expect("released once the rate fell");
    assert!(
        release.reason.contains("later than within 3days"),
        "{}",
        release.reason
    );
    // Snapshots went on while usage stood still, so the rate is seen to
    // fall to 0: over the time it was disabled, the readings are flat.
    let disabled_at = h.history().await.last().unwrap().at;
    let stood_still = release.at - disabled_at;
    let series = h
        .store
        .usage_series(disabled_at + Duration::seconds(1), release.at)
        .await
        .unwrap();
    let readings: Vec<Reading> = series[&h.hash("team-a-01")]
        .iter()
        .map(|r| Reading {
            at: r.at,
            usd: r.usage.unwrap(),
        })
        .collect();
    assert!(readings.len() >= 3, "{readings:?}");
    assert_eq!(burn_rate(&readings, release.at, stood_still), Ok(0.0));
}

#[tokio::test]
async fn byok_spend_counts_only_when_the_forecast_includes_it() {
    let rules = r#"
[[rule]]
name = "with-byok"
keys = { names = ["team-a-01"] }
when.forecast = { usd = 50.0, window = "monthly", lookback = "2h", within = "24h", include_byok = true }
set.limit = 45.0

[[rule]]
name = "without-byok"
keys = { names = ["team-b-01"] }
when.forecast = { usd = 50.0, window = "monthly", lookback = "2h", within = "24h" }
set.limit = 45.0
"#;
    let h = Harness::new(
        at(2026, 11, 16, 8),
        vec![seed("team-a-01"), seed("team-b-01")],
        rules,
        |_| {},
    )
    .await;
    steady(&h, &["team-*"], 2.0, true);
    every_quarter_hour(&h, 2.0).await;
    let rows = h.history().await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].key_name, "team-a-01");
    assert!(
        rows[0].reason.contains("at 2.00 USD/h"),
        "{}",
        rows[0].reason
    );
}

/// Runs the binary against the harness's sandbox and database.
async fn binary(h: &Harness, args: &[&str]) -> std::process::Output {
    let db = h.config.database_path();
    let out = tokio::process::Command::from(crate::common::keywarden())
        .arg("--database")
        .arg(&db)
        .args(args)
        .env("KEYWARDEN_BASE_URL", h.sandbox.base_url())
        .env("OPENROUTER_MANAGEMENT_KEY", h.sandbox.management_key())
        .current_dir(h.dir.path())
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        crate::common::text(&out.stderr)
    );
    out
}

const TEAM_A_GROUP: &str = r#"
[[rule]]
name = "team-a-monthly"
keys = { names = ["team-a-*"] }
when.forecast = { usd = 50.0, window = "monthly", scope = "group", lookback = "2h", within = "3d" }
set.limit = 45.0
"#;

#[tokio::test]
async fn forecast_json_has_the_pinned_shape_nulls_and_order_and_changes_nothing() {
    let rules = r#"
[[rule]]
name = "team-b-daily"
keys = { names = ["team-b-*"] }
when.budget = { usd = 5.0, window = "daily" }
set.disabled = true
"#
    .to_string()
        + TEAM_A_GROUP;
    let keys = ["team-a-01", "team-a-02", "team-b-01"].map(seed).to_vec();
    let h = Harness::new(at(2026, 11, 16, 8), keys, &rules, |_| {}).await;
    steady(&h, &["team-a-*"], 1.0, false);
    h.apply().await;
    every_quarter_hour(&h, 2.0).await;
    let far = at(2000, 1, 1, 0);
    let snapshots = |s: keywarden::engine::inputs::Series| s.values().map(Vec::len).sum::<usize>();
    let before = snapshots(
        h.store
            .usage_series(far, h.now() + Duration::days(1))
            .await
            .unwrap(),
    );
    let history = h.history().await.len();

    let out = binary(
        &h,
        &[
            "forecast",
            "--format",
            "json",
            "--at",
            "2026-11-16T10:00:00Z",
        ],
    )
    .await;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "at": "2026-11-16T10:00:00Z",
            "forecasts": [
                {"rule": "team-a-monthly", "scope": "group", "key_hash": null, "key_name": null,
                 "window": "monthly", "window_end": "2026-12-01T00:00:00Z",
                 "budget_usd": 50.0, "at_fraction": 1.0, "spend_usd": 4.0,
                 "rate_usd_per_hour": 2.0, "lookback_hours": 2.0,
                 "projected_usd": 704.0, "crossing_at": "2026-11-17T09:00:00Z",
                 "status": "will_cross"},
                {"rule": "team-b-daily", "scope": "each", "key_hash": h.hash("team-b-01"),
                 "key_name": "team-b-01", "window": "daily", "window_end": "2026-11-17T00:00:00Z",
                 "budget_usd": 5.0, "at_fraction": 1.0, "spend_usd": 0.0,
                 "rate_usd_per_hour": null, "lookback_hours": 6.0,
                 "projected_usd": null, "crossing_at": null, "status": "unknown"},
            ]
        })
    );
    let table = crate::common::text(
        &binary(
            &h,
            &[
                "forecast",
                "--rule",
                "team-a-monthly",
                "--at",
                "2026-11-16T10:00:00Z",
            ],
        )
        .await
        .stdout,
    );
    assert!(
        table.starts_with("forecast at 2026-11-16 10:00 UTC:\n"),
        "{table}"
    );
    assert!(
        table.contains("team-a-monthly") && !table.contains("team-b-daily"),
        "{table}"
    );
    assert!(
        table.contains("2026-11-17T09:00Z") && table.contains("will_cross"),
        "{table}"
    );
    // An hour earlier: only the readings known then.
    let out = binary(
        &h,
        &[
            "forecast",
            "--format",
            "json",
            "--at",
            "2026-11-16T09:00:00Z",
        ],
    )
    .await;
    let earlier: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let group = &earlier["forecasts"][0];
    assert_eq!(
        (
            &group["spend_usd"],
            &group["rate_usd_per_hour"],
            &group["crossing_at"]
        ),
        (
            &serde_json::json!(2.0),
            &serde_json::json!(2.0),
            &serde_json::json!("2026-11-17T09:00:00Z")
        ),
        "{earlier}"
    );
    let after = snapshots(
        h.store
            .usage_series(far, h.now() + Duration::days(1))
            .await
            .unwrap(),
    );
    assert_eq!(
        (after, h.history().await.len()),
        (before, history),
        "changes nothing"
    );
}

/// The two rules of the cookbook's "Lower the limit before the money is gone".
fn cookbook_recipe() -> String {
    let cookbook = include_str!("../../docs/cookbook.md");
    let section = cookbook
        .split("## Lower the limit before the money is gone")
        .nth(1)
        .unwrap();
    section
        .split("```toml\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn the_cookbook_pair_does_not_release_the_limit_when_the_key_goes_quiet() {
    let rules = cookbook_recipe();
    assert!(rules.contains("ci-slow-down-held"), "{rules}");
    let h = Harness::new(at(2026, 11, 16, 0), vec![seed("ci-01")], &rules, |_| {}).await;
    steady(&h, &["ci-01"], 1.0, false);
    h.apply().await;
    // Busy until noon: the forecast asserts the limit, and past 10 USD the
    // budget rule holds it too.
    every_quarter_hour(&h, 12.0).await;
    let key = h.key("ci-01");
    assert_eq!(key.limit, Some(20.0), "{key:?}");
    // A quiet afternoon and night: the rate falls to 0 and the forecast lets
    // go, but the pair keeps the limit.
    h.sandbox.account().stop_traffic();
    every_quarter_hour(&h, 12.0).await;
    let patches = h.take_patches();
    assert_eq!(
        patches.len(),
        1,
        "asserted once, never released: {patches:?}"
    );
    assert!(
        h.history()
            .await
            .iter()
            .all(|r| r.kind != ChangeKind::Release),
        "{:?}",
        h.history().await
    );
    assert_eq!(h.key("ci-01").limit, Some(20.0));
}

const WARNED: &str = r#"
[[rule]]
name = "team-a-weekly"
keys = { names = ["team-a-*"] }
warn_before = ["3d", "12h"]
when.budget = { usd = 50.0, window = "weekly", scope = "group" }
set.disabled = true
"#;

/// The `budget_forecast` events recorded so far: (at, horizon, crossing_at).
async fn forecast_events(h: &Harness) -> Vec<(DateTime<Utc>, String, DateTime<Utc>)> {
    h.store
        .events(at(2000, 1, 1, 0), h.now() + Duration::days(1))
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "budget_forecast")
        .map(|e| {
            assert_eq!(e.rule.as_deref(), Some("team-a-weekly"));
            assert_eq!(e.detail["group"], "team-a-weekly");
            let crossing = e.detail["crossing_at"].as_str().unwrap().parse().unwrap();
            (
                e.at,
                e.detail["horizon"].as_str().unwrap().to_string(),
                crossing,
            )
        })
        .collect()
}

/// Runs every hour for `hours`, the sandbox clock moving between runs.
async fn every_hour(h: &Harness, hours: i64) {
    for _ in 0..hours {
        h.sandbox.account().advance(Duration::hours(1));
        h.apply().await;
    }
}

#[tokio::test]
async fn warn_before_warns_days_ahead_once_per_horizon_and_again_in_a_new_window() {
    // Monday 00:00: two keys spend 0.25 USD/h each, so the group's 50 USD
    // a week is gone on Friday at 04:00 (100 h).
    let monday = at(2026, 11, 16, 0);
    let keys = vec![seed("team-a-01"), seed("team-a-02")];
    let h = Harness::new(monday, keys, WARNED, |_| {}).await;
    steady(&h, &["team-a-*"], 0.25, false);
    h.apply().await;
    every_hour(&h, 27).await;
    assert!(
        forecast_events(&h).await.is_empty(),
        "4 days ahead: too early"
    );
    every_hour(&h, 1).await;
    let crossing = monday + Duration::hours(100);
    let three_days = forecast_events(&h).await;
    assert_eq!(
        three_days,
        vec![(monday + Duration::hours(28), "3days".into(), crossing)],
        "the 3d warning comes as the crossing comes within 3 days"
    );
    let event = h
        .store
        .events(monday, h.now() + Duration::hours(1))
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.kind == "budget_forecast")
        .unwrap();
    assert_eq!(event.key_hash, None, "a group's warning names no key");
    assert_eq!(event.detail["window"], "weekly");
    assert_eq!(event.detail["budget_usd"], 50.0);
    assert_eq!(event.detail["spend_usd"], 14.0);
    assert_eq!(event.detail["rate_usd_per_hour"], 0.5);
    assert_eq!(event.detail["projected_usd"], 84.0);
    // Later runs of the same window record nothing new…
    h.apply().await;
    every_hour(&h, 59).await;
    assert_eq!(forecast_events(&h).await, three_days);
    // …until the crossing comes within 12 hours.
    every_hour(&h, 1).await;
    let both = forecast_events(&h).await;
    assert_eq!(both.len(), 2, "{both:?}");
    assert_eq!(
        both[1],
        (monday + Duration::hours(88), "12h".into(), crossing)
    );
    // The budget is reached on Friday and the keys are disabled; nothing
    // is warned of twice.
    every_hour(&h, 12).await;
    assert!(h.key("team-a-01").disabled);
    assert_eq!(forecast_events(&h).await.len(), 2);
    assert!(
        h.history()
            .await
            .iter()
            .all(|r| r.kind == ChangeKind::Assert)
    );
    // A new week: the keys are given back, spend again, and are warned of again.
    every_hour(&h, 68 + 28).await;
    let next_monday = monday + Duration::days(7);
    assert!(!h.key("team-a-01").disabled);
    let all = forecast_events(&h).await;
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(all[2].1, "3days");
    assert!(
        all[2].0 > next_monday && all[2].2 - all[2].0 <= Duration::days(3),
        "{all:?}"
    );
}

#[tokio::test]
async fn a_budget_forecast_reaches_both_webhook_formats_with_who_how_much_how_fast_and_when() {
    let monday = at(2026, 11, 16, 0);
    let rules = WARNED.replace("scope = \"group\"", "scope = \"each\"");
    let h = Harness::new(monday, vec![seed("team-a-01")], &rules, |_| {}).await;
    steady(&h, &["team-a-01"], 0.5, false);
    h.apply().await;
    every_hour(&h, 27).await;
    let (json, slack) = (Receiver::default(), Receiver::default());
    let hook = |url: String, format| NotifyConfig {
        url,
        format,
        events: vec![EventKind::BudgetForecast],
        enabled: true,
    };
    let webhooks = Webhook::from_config(&[
        hook(json.start().await, NotifyFormat::Json),
        hook(slack.start().await, NotifyFormat::Slack),
    ]);
    let clock = Arc::new(h.sandbox.account().clone());
    let notifier = Notifier::new(h.store.clone(), webhooks, Backoff::default(), clock).unwrap();
    notifier.register().await.unwrap();
    // The webhooks are registered before the event is enqueued, as the
    // service's are.
    every_hour(&h, 1).await;
    assert_eq!(
        keywarden::notify::enqueue(&h.store, h.now()).await.unwrap(),
        1
    );
    assert_eq!(notifier.deliver_due().await.unwrap(), None);
    let body = json.received.lock().unwrap().clone();
    assert_eq!(body.len(), 1, "{body:?}");
    let b = &body[0];
    assert_eq!(b["event"], "budget_forecast");
    assert_eq!(b["at"], "2026-11-17T04:00:00Z");
    assert_eq!(
        (&b["rule"], &b["key_hash"], &b["key_name"]),
        (
            &json!("team-a-weekly"),
            &json!(h.hash("team-a-01")),
            &json!("team-a-01")
        )
    );
    let d = &b["detail"];
    assert_eq!(
        (
            &d["window"],
            &d["budget_usd"],
            &d["spend_usd"],
            &d["rate_usd_per_hour"]
        ),
        (&json!("weekly"), &json!(50.0), &json!(14.0), &json!(0.5))
    );
    assert_eq!(
        (&d["crossing_at"], &d["projected_usd"], &d["horizon"]),
        (
            &json!("2026-11-20T04:00:00Z"),
            &json!(84.0),
            &json!("3days")
        )
    );
    let text = slack.received.lock().unwrap()[0]["text"].clone();
    assert_eq!(
        text,
        "keywarden: budget_forecast · key team-a-01 · rule team-a-weekly: key weekly spend \
         14.00 of 50.00 USD at 0.50 USD/h reaches the budget at 2026-11-20T04:00Z (in 3d); \
         84.00 USD projected by the window's end (warn_before 3d)"
    );
}

/// `team-a-01` and `team-a-02` under [`TEAM_A_GROUP`], each spending
/// 1 USD/h, after two hours of runs every 15 minutes.
async fn team_a_spending_two_hours() -> Harness {
    let keys = ["team-a-01", "team-a-02"].map(seed).to_vec();
    let h = Harness::new(at(2026, 11, 16, 8), keys, TEAM_A_GROUP, |_| {}).await;
    steady(&h, &["team-a-*"], 1.0, false);
    h.apply().await;
    every_quarter_hour(&h, 2.0).await;
    h
}

#[tokio::test]
async fn forecast_at_a_later_instant_projects_forward_from_the_latest_readings() {
    let h = team_a_spending_two_hours().await;
    let ahead = |hours: i64| {
        h.runner
            .outlook(None, Some(h.now() + Duration::hours(hours)))
    };
    // Ten hours on, in the same month: 4 USD now plus 2 USD/h for 10 h, and
    // the same crossing as seen now.
    let row = ahead(10).await.unwrap().forecasts.remove(0);
    assert_eq!(row.spend_usd, Some(24.0));
    assert_eq!(row.rate_usd_per_hour, Some(2.0));
    assert_eq!(row.crossing_at, Some(at(2026, 11, 17, 9)));
    assert_eq!(row.projected_usd, Some(704.0));
    // On 1 December at 06:00 the month has rolled over: spend started again
    // from 0 at midnight, and December's crossing is 19 h later.
    let outlook = ahead(14 * 24 + 20).await.unwrap();
    assert_eq!(outlook.at, at(2026, 12, 1, 6));
    let row = &outlook.forecasts[0];
    assert_eq!(row.spend_usd, Some(12.0));
    assert_eq!(row.window_end, Some(at(2027, 1, 1, 0)));
    assert_eq!(row.crossing_at, Some(at(2026, 12, 2, 1)));
}

#[tokio::test]
async fn after_a_day_without_snapshots_the_rate_is_unknown_until_enough_readings() {
    let h = team_a_01(LOWER_LIMIT).await;
    steady(&h, &["team-a-01"], 1.0, false);
    h.apply().await;
    every_quarter_hour(&h, 1.0).await;
    assert!(h.apply().await.plan.skips.is_empty(), "the rate is known");
    // The service is down for a day: no snapshots.
    h.sandbox.account().advance(Duration::days(1));
    let back = h.apply().await;
    assert_eq!(
        back.plan.skips[0].reason,
        "key team-a-01: burn rate unknown: 1 usage readings in the lookback, 3 needed",
        "not zero: unknown, and why"
    );
    assert!(back.rows.is_empty(), "nothing changes on an unknown rate");
    // An hour of runs later the readings cover half the lookback again.
    let reports = every_quarter_hour(&h, 1.0).await;
    assert!(reports.last().unwrap().plan.skips.is_empty());
}

#[tokio::test]
async fn a_failing_budget_source_leaves_the_forecast_unevaluated_with_the_reason() {
    let rules = LOWER_LIMIT.replace(
        "usd = 50.0",
        "usd = { env = \"KEYWARDEN_TEST_UNSET_FORECAST_BUDGET\" }",
    );
    let h = team_a_01(&rules).await;
    steady(&h, &["team-a-01"], 2.0, false);
    h.apply().await;
    let reports = every_quarter_hour(&h, 2.0).await;
    let last = reports.last().unwrap();
    assert_eq!(
        last.plan.skips[0].reason,
        "budget source env:KEYWARDEN_TEST_UNSET_FORECAST_BUDGET unavailable"
    );
    assert!(
        h.take_patches().is_empty(),
        "a failing source changes nothing"
    );
}

#[tokio::test]
async fn a_group_rate_is_drawn_from_the_keys_present_now_new_or_deleted() {
    let h = team_a_spending_two_hours().await;
    // team-a-02 is deleted, and team-a-03 created, inside the lookback.
    let account = h.sandbox.account();
    account.delete_key(&h.hash("team-a-02")).unwrap();
    account
        .create_key(keywarden::sandbox::NewKey {
            name: "team-a-03".into(),
            ..Default::default()
        })
        .unwrap();
    steady(&h, &["team-a-03"], 3.0, false);
    let reports = every_quarter_hour(&h, 0.75).await;
    let row = h
        .runner
        .outlook(None, None)
        .await
        .unwrap()
        .forecasts
        .remove(0);
    assert_eq!(
        row.rate_usd_per_hour,
        Some(1.0 + 4.0),
        "team-a-01 at 1 USD/h and the new team-a-03 at 4 (both streams select it), not the deleted key"
    );
    assert!(
        reports.last().unwrap().plan.skips.is_empty(),
        "a key younger than the lookback counts with the readings of its life"
    );
}

#[tokio::test]
async fn a_disabling_forecast_paired_with_a_budget_rule_does_not_flap_as_the_group_stops() {
    // The group heads over 20 USD within 3 days and is disabled; disabled,
    // it spends nothing, its rate falls to 0 and the forecast lets go — but
    // the budget rule, holding from 1 USD on, keeps the keys disabled until
    // the month rolls over.
    let rules = r#"
[[rule]]
name = "team-a-stop"
keys = { names = ["team-a-*"] }
when.forecast = { usd = 20.0, window = "monthly", scope = "group", lookback = "2h", within = "3d" }
set.disabled = true

[[rule]]
name = "team-a-stop-held"
keys = { names = ["team-a-*"] }
when.budget = { usd = 20.0, window = "monthly", scope = "group", at = 0.05 }
set.disabled = true
"#;
    let keys = ["team-a-01", "team-a-02"].map(seed).to_vec();
    let h = Harness::new(at(2026, 11, 30, 16), keys, rules, |_| {}).await;
    steady(&h, &["team-a-*"], 1.0, false);
    h.apply().await;
    every_quarter_hour(&h, 7.5).await;
    assert!(h.key("team-a-01").disabled && h.key("team-a-02").disabled);
    let outlook = h.runner.outlook(None, None).await.unwrap();
    let forecast = outlook
        .forecasts
        .iter()
        .find(|f| f.rule == "team-a-stop")
        .unwrap();
    assert_eq!(
        forecast.rate_usd_per_hour,
        Some(0.0),
        "the group's rate fell to 0"
    );
    assert_eq!(forecast.crossing_at, None, "the forecast no longer holds");
    let patches = h.take_patches();
    assert_eq!(
        patches.len(),
        2,
        "each key disabled once, none released: {patches:?}"
    );
    // 1 December: the month rolls over and the keys are given back.
    every_quarter_hour(&h, 0.75).await;
    assert!(!h.key("team-a-01").disabled);
    let releases = h
        .history()
        .await
        .into_iter()
        .filter(|r| r.kind == ChangeKind::Release);
    assert!(releases.clone().all(|r| r.at >= at(2026, 12, 1, 0)));
    assert_eq!(releases.count(), 2);
}
