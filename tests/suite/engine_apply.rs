//! Whole runs against the sandbox (SPEC §4): what the sandbox received, what
//! history recorded, and what the keys look like afterwards.

use crate::common;

use chrono::{Duration, TimeZone, Utc};
use common::{Harness, nov, seed};
use keywarden::domain::LimitReset;
use keywarden::engine::{ChangeKind, Outcome};
use keywarden::openrouter::KeyPatch;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

const TEAM_A: &str = r#"
[[rule]]
name = "team-a-monthly"
keys = { names = ["team-a-*"] }
[rule.when]
budget = { usd = 50.0, window = "monthly", scope = "group" }
[rule.set]
disabled = true
"#;

fn team_a_keys() -> Vec<keywarden::sandbox::SeedKey> {
    [
        "team-a-1", "team-a-2", "team-a-3", "team-a-4", "team-b-1", "team-b-2",
    ]
    .into_iter()
    .map(seed)
    .collect()
}

crate::on_both_backends! {
    async fn group_budget_disables_all_its_keys_once_and_gives_them_back_at_the_month(backend) {
        let h = Harness::new_on(backend, nov(10), team_a_keys(), TEAM_A, |_| {}).await;
        // A person disabled team-a-4 before the budget was hit.
        let a4 = h.hash("team-a-4");
        h.sandbox
            .account()
            .patch_key(
                &a4,
                &KeyPatch {
                    disabled: Some(true),
                    ..KeyPatch::default()
                },
            )
            .unwrap();
        h.spend("team-a-1", 20.0);
        h.spend("team-a-2", 20.0);
        h.spend("team-a-3", 11.0);
        h.take_patches();

        let report = h.apply().await;
        assert!(!report.failed(), "{report:?}");
        let patches = h.take_patches();
        assert_eq!(patches.len(), 3, "exactly three PATCHes: {patches:?}");
        for p in &patches {
            assert_eq!(p.body, serde_json::json!({"disabled": true}));
            assert_ne!(p.path, format!("/api/v1/keys/{a4}"));
        }
        let rows = h.history().await;
        assert_eq!(rows.len(), 3);
        for row in &rows {
            assert_eq!(row.kind, ChangeKind::Assert);
            assert_eq!(row.outcome, Outcome::Applied);
            assert_eq!(row.http_status, Some(200));
            assert_eq!(row.attempts, 1);
            assert_eq!(
                row.reason,
                "group monthly spend 51.00 USD >= budget 50.00 USD"
            );
        }
        assert!(h.key("team-a-1").disabled && h.key("team-a-3").disabled);

        let second = h.apply().await;
        assert!(second.rows.is_empty(), "a second apply changes nothing");
        assert!(h.take_patches().is_empty());

        // The month rolls over.
        h.sandbox
            .account()
            .set_now(Utc.with_ymd_and_hms(2026, 12, 1, 0, 5, 0).unwrap());
        let report = h.apply().await;
        let kinds: Vec<(String, ChangeKind, Outcome)> = report
            .rows
            .iter()
            .map(|r| (r.change.key_name.clone(), r.change.kind, r.outcome))
            .collect();
        assert_eq!(
            kinds,
            ["team-a-1", "team-a-2", "team-a-3"]
                .map(|n| (n.to_string(), ChangeKind::Release, Outcome::Applied))
                .to_vec()
        );
        let patches = h.take_patches();
        assert_eq!(patches.len(), 3);
        assert!(
            patches
                .iter()
                .all(|p| p.body == serde_json::json!({"disabled": false}))
        );
        assert!(!h.key("team-a-1").disabled);
        assert!(
            h.key("team-a-4").disabled,
            "a key a person disabled stays disabled"
        );
        assert!(h.store.claims().await.unwrap().is_empty());
    }
}

crate::on_both_backends! {
    async fn a_key_re_enabled_by_a_person_is_reasserted_unless_exempt(backend) {
        let h = Harness::new_on(backend, nov(10), team_a_keys(), TEAM_A, |_| {}).await;
        h.spend("team-a-1", 60.0);
        h.apply().await;
        let a2 = h.hash("team-a-2");
        let enable = KeyPatch {
            disabled: Some(false),
            ..KeyPatch::default()
        };
        h.sandbox.account().patch_key(&a2, &enable).unwrap();
        h.take_patches();

        let report = h.apply().await;
        assert_eq!(report.rows.len(), 1);
        let (change, outcome) = (&report.rows[0].change, &report.rows[0].outcome);
        assert_eq!(
            (change.kind, *outcome),
            (ChangeKind::Reassert, Outcome::Applied)
        );
        assert!(change.reason.contains("changed to false outside keywarden"));
        assert_eq!(h.take_patches().len(), 1);

        // With an exemption the person's choice stands, and it is recorded once.
        h.sandbox.account().patch_key(&a2, &enable).unwrap();
        h.store
            .add_exemption(&a2, None, nov(20), "demo for a customer", h.now())
            .await
            .unwrap();
        h.take_patches();
        let first = h.apply().await;
        let second = h.apply().await;
        assert!(h.take_patches().is_empty());
        assert!(!h.key("team-a-2").disabled);
        let skipped: Vec<_> = first
            .rows
            .iter()
            .filter(|r| r.outcome == Outcome::Skipped)
            .collect();
        assert_eq!(skipped.len(), 1);
        assert!(second.rows.is_empty());
        let history_skipped = h
            .history()
            .await
            .into_iter()
            .filter(|r| r.outcome == Outcome::Skipped)
            .count();
        assert_eq!(history_skipped, 1);
    }
}

const SEASON: &str = r#"
[[rule]]
name = "holiday-daily"
keys = { names = ["support-*"] }
[rule.when]
season = { from = "11-15", to = "01-10" }
[rule.set]
limit_reset = "daily"
limit = 5.0
"#;

fn support_key() -> Vec<keywarden::sandbox::SeedKey> {
    let mut k = seed("support-1");
    k.limit = Some(100.0);
    k.limit_reset = Some(LimitReset::Monthly);
    vec![k, seed("other")]
}

crate::on_both_backends! {
    async fn a_season_sets_daily_limits_and_gives_back_exactly_the_original(backend) {
        let h = Harness::new_on(backend, nov(10), support_key(), SEASON, |_| {}).await;
        // plan --at inside the season shows the change and changes nothing.
        let preview = h
            .runner
            .preview(
                None,
                Some(Utc.with_ymd_and_hms(2026, 12, 24, 12, 0, 0).unwrap()),
            )
            .await
            .unwrap();
        assert_eq!(preview.reconciliation.plan.changes.len(), 1);
        assert!(h.take_patches().is_empty());
        assert!(h.history().await.is_empty());
        assert!(h.apply().await.rows.is_empty(), "not in season yet");

        h.sandbox
            .account()
            .set_now(Utc.with_ymd_and_hms(2026, 11, 15, 0, 1, 0).unwrap());
        h.take_patches();
        h.apply().await;
        let patches = h.take_patches();
        assert_eq!(patches.len(), 1);
        assert_eq!(
            patches[0].body,
            serde_json::json!({"limit": 5.0, "limit_reset": "daily"})
        );
        let k = h.key("support-1");
        assert_eq!(
            (k.limit, k.limit_reset.as_deref()),
            (Some(5.0), Some("daily"))
        );

        h.sandbox
            .account()
            .set_now(Utc.with_ymd_and_hms(2027, 1, 11, 0, 1, 0).unwrap());
        let report = h.apply().await;
        assert_eq!(report.rows.len(), 1);
        assert_eq!(report.rows[0].change.kind, ChangeKind::Release);
        let k = h.key("support-1");
        assert_eq!(
            (k.limit, k.limit_reset.as_deref()),
            (Some(100.0), Some("monthly"))
        );
    }
}

crate::on_both_backends! {
    async fn a_limit_a_person_changed_during_the_season_is_left_as_drift(backend) {
        let h = Harness::new_on(backend,
            Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
            support_key(),
            SEASON,
            |_| {},
        )
        .await;
        h.apply().await;
        let hash = h.hash("support-1");
        h.sandbox
            .account()
            .patch_key(
                &hash,
                &KeyPatch {
                    limit: Some(Some(80.0)),
                    ..KeyPatch::default()
                },
            )
            .unwrap();
        // Out of season: the reset is given back, the person's 80 stays.
        h.sandbox
            .account()
            .set_now(Utc.with_ymd_and_hms(2027, 2, 1, 0, 0, 0).unwrap());
        h.take_patches();
        let report = h.apply().await;
        let mut kinds: Vec<ChangeKind> = report.rows.iter().map(|r| r.change.kind).collect();
        kinds.sort();
        assert_eq!(kinds, vec![ChangeKind::Release, ChangeKind::Drift]);
        let patches = h.take_patches();
        assert_eq!(patches.len(), 1);
        assert_eq!(
            patches[0].body,
            serde_json::json!({"limit_reset": "monthly"})
        );
        let k = h.key("support-1");
        assert_eq!(
            (k.limit, k.limit_reset.as_deref()),
            (Some(80.0), Some("monthly"))
        );
        assert!(h.store.claims().await.unwrap().is_empty());
    }
}

crate::on_both_backends! {
    async fn the_higher_priority_rule_wins_and_a_tie_is_recorded_as_a_conflict(backend) {
        let rules = r#"
    [[rule]]
    name = "b-generous"
    priority = 1
    keys = "all"
    [rule.set]
    limit = 30.0

    [[rule]]
    name = "a-strict"
    priority = 1
    keys = { names = ["k"] }
    [rule.set]
    limit = 10.0

    [[rule]]
    name = "c-top"
    priority = 9
    keys = { names = ["top"] }
    [rule.set]
    limit = 99.0
    "#;
        let h = Harness::new_on(backend, nov(10), vec![seed("k"), seed("top")], rules, |_| {}).await;
        let report = h.apply().await;
        let k = h.key("k");
        assert_eq!(k.limit, Some(10.0), "tie: the name that sorts first wins");
        assert_eq!(h.key("top").limit, Some(99.0), "the higher priority wins");
        assert_eq!(report.plan.conflicts.len(), 1);
        let events = h
            .store
            .events(nov(1), nov(30))
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "conflict")
            .count();
        assert_eq!(events, 1);
    }
}

/// Two rules tie on the limit of `k` (`b-generous` at `PRIORITY`), and an
/// unrelated rule sets another field of `other`.
const TIE: &str = r#"
[[rule]]
name = "a-strict"
priority = 1
keys = { names = ["k"] }
[rule.set]
limit = 10.0

[[rule]]
name = "b-generous"
priority = PRIORITY
keys = "all"
[rule.set]
limit = 30.0

[[rule]]
name = "c-other"
keys = { names = ["other"] }
[rule.set]
limit_reset = "weekly"
"#;

/// The `conflict` events recorded so far, oldest first.
async fn conflict_events(h: &Harness) -> Vec<keywarden::store::EventRow> {
    h.store
        .events(nov(1), Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap())
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "conflict")
        .collect()
}

/// The `notes` of run `run_id`, read from the database as an operator would.
async fn run_notes(h: &Harness, run_id: i64) -> serde_json::Value {
    let raw = h.raw().await;
    let notes: Vec<(String,)> = raw
        .rows("SELECT notes FROM runs WHERE id = $1", &[run_id])
        .await;
    raw.close().await;
    serde_json::from_str(&notes[0].0).unwrap()
}

/// A run of the rule `rule` only (as `apply --rule` or a schedule makes it).
async fn run_only(h: &Harness, rule: &str) -> keywarden::run::RunReport {
    h.runner
        .run(&keywarden::run::RunRequest {
            trigger: keywarden::run::Trigger::Manual,
            due: Some([rule.to_string()].into()),
            dry_run: false,
            force: false,
        })
        .await
        .expect("run completes")
}

crate::on_both_backends! {
    async fn a_conflict_is_recorded_once_when_it_begins_and_again_only_after_it_ended(backend) {
        let h = Harness::new_on(backend,
            nov(10),
            vec![seed("k"), seed("other")],
            &TIE.replace("PRIORITY", "1"),
            |_| {},
        )
        .await;
        let preview = h.runner.preview(None, None).await.unwrap();
        assert_eq!(preview.reconciliation.plan.conflicts.len(), 1);
        assert!(conflict_events(&h).await.is_empty(), "plan records nothing");

        let first = h.apply().await;
        let events = conflict_events(&h).await;
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].run_id, Some(first.run_id));
        assert_eq!(events[0].rule.as_deref(), Some("a-strict"));
        assert_eq!(events[0].key_hash, Some(h.hash("k")));
        assert_eq!(
            events[0].detail,
            serde_json::json!({
                "key_hash": h.hash("k"), "field": "limit", "winner": "a-strict", "loser": "b-generous",
            })
        );

        // While it lasts: neither a full run nor a run of an unrelated rule records it again.
        let second = h.apply().await;
        assert_eq!(second.plan.conflicts.len(), 1);
        assert_eq!(
            run_notes(&h, second.run_id).await["conflicts"],
            1,
            "the run keeps the count"
        );
        run_only(&h, "c-other").await;
        assert_eq!(conflict_events(&h).await.len(), 1);

        // It ends (the rules no longer tie), then begins again: recorded again.
        h.load_rules(&TIE.replace("PRIORITY", "0")).await;
        assert!(h.apply().await.plan.conflicts.is_empty());
        assert_eq!(conflict_events(&h).await.len(), 1);
        h.load_rules(&TIE.replace("PRIORITY", "1")).await;
        let again = h.apply().await;
        let events = conflict_events(&h).await;
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[1].run_id, Some(again.run_id));
        assert_eq!(events[1].detail, events[0].detail);

        // A run of the unrelated rule did not end it: the next full run records nothing.
        run_only(&h, "c-other").await;
        h.apply().await;
        assert_eq!(conflict_events(&h).await.len(), 2);
    }
}

crate::on_both_backends! {
    async fn a_conflict_is_not_ended_by_a_run_that_cannot_evaluate_one_of_its_rules(backend) {
        let served = Arc::new(Mutex::new((200, r#"{"usd": 1}"#.to_string())));
        let url = budget_server(served.clone()).await;
        let rules = format!(
            r#"
    [[rule]]
    name = "a-strict"
    priority = 1
    keys = {{ names = ["k"] }}
    [rule.set]
    limit = 10.0

    [[rule]]
    name = "b-over-budget"
    priority = 1
    keys = {{ names = ["k"] }}
    [rule.when]
    budget = {{ usd = {{ url = "{url}", pointer = "/usd", max_age = "6h" }}, window = "monthly" }}
    [rule.set]
    limit = 30.0
    "#
        );
        let h = Harness::new_on(backend, nov(10), vec![seed("k")], &rules, |_| {}).await;
        h.spend("k", 5.0);
        assert_eq!(h.apply().await.plan.conflicts.len(), 1);
        assert_eq!(conflict_events(&h).await.len(), 1);

        // The budget cannot be read: b-over-budget is not evaluated on k, so
        // nothing is concluded about the conflict…
        *served.lock().unwrap() = (500, "oops".into());
        h.sandbox.account().advance(Duration::hours(7));
        assert!(h.apply().await.plan.conflicts.is_empty());
        // …and when it can be again, the conflict it finds is the one recorded.
        *served.lock().unwrap() = (200, r#"{"usd": 1}"#.into());
        assert_eq!(h.apply().await.plan.conflicts.len(), 1);
        assert_eq!(conflict_events(&h).await.len(), 1);
    }
}

crate::on_both_backends! {
    async fn the_guard_holds_a_run_that_would_disable_too_many_keys_until_forced(backend) {
        let rules = r#"
    [[rule]]
    name = "spenders"
    keys = "all"
    [rule.when]
    budget = { usd = 1.0, window = "daily" }
    [rule.set]
    disabled = true
    "#;
        let keys: Vec<_> = (1..=10).map(|i| seed(&format!("k{i:02}"))).collect();
        let h = Harness::new_on(backend, nov(10), keys, rules, |c| {
            c.daemon.max_disable_fraction = 0.5
        })
        .await;
        for i in 1..=6 {
            h.spend(&format!("k{i:02}"), 2.0);
        }
        h.take_patches();
        let report = h.apply().await;
        assert!(report.guard_tripped && report.failed());
        assert_eq!(report.count(Outcome::Held), 6);
        assert!(h.take_patches().is_empty());
        let forced = h.run(false, true).await;
        assert_eq!(forced.count(Outcome::Applied), 6);
        assert_eq!(h.take_patches().len(), 6);
    }
}

crate::on_both_backends! {
    async fn dry_run_records_dry_run_rows_and_sends_nothing(backend) {
        let h = Harness::new_on(backend, nov(10), team_a_keys(), TEAM_A, |_| {}).await;
        h.spend("team-a-1", 60.0);
        h.take_patches();
        let report = h.run(true, false).await;
        assert_eq!(report.count(Outcome::DryRun), 4);
        assert!(h.take_patches().is_empty());
        assert!(
            h.history()
                .await
                .iter()
                .all(|r| r.outcome == Outcome::DryRun)
        );
        assert!(h.store.claims().await.unwrap().is_empty());
        assert!(!h.key("team-a-1").disabled);
    }
}

/// A budget served over HTTP by a test server whose answer the test controls.
async fn budget_server(state: Arc<Mutex<(u16, String)>>) -> String {
    use axum::{Router, extract::State, http::StatusCode, routing::get};
    let app = Router::new()
        .route(
            "/budgets",
            get(|State(s): State<Arc<Mutex<(u16, String)>>>| async move {
                let (status, body) = s.lock().unwrap().clone();
                (StatusCode::from_u16(status).unwrap(), body)
            }),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/budgets")
}

crate::on_both_backends! {
    async fn an_external_budget_follows_its_source_and_a_failing_source_changes_nothing(backend) {
        let served = Arc::new(Mutex::new((
            200,
            r#"{"teams": {"a": {"usd": 100}}}"#.to_string(),
        )));
        let url = budget_server(served.clone()).await;
        let rules = format!(
            r#"
    [[rule]]
    name = "team-a-external"
    keys = {{ names = ["team-a-*"] }}
    [rule.when]
    budget = {{ usd = {{ url = "{url}", pointer = "/teams/a/usd", max_age = "6h" }}, window = "monthly", scope = "group" }}
    [rule.set]
    disabled = true
    "#
        );
        let h = Harness::new_on(backend, nov(10), team_a_keys(), &rules, |_| {}).await;
        h.spend("team-a-1", 60.0);
        assert!(h.apply().await.rows.is_empty(), "60 < 100");
        served.lock().unwrap().1 = r#"{"teams": {"a": {"usd": 50}}}"#.into();
        assert_eq!(h.apply().await.count(Outcome::Applied), 4, "60 >= 50");

        // The source fails: the stored 50 is used within max_age…
        *served.lock().unwrap() = (500, "oops".into());
        h.sandbox
            .account()
            .patch_key(
                &h.hash("team-a-2"),
                &KeyPatch {
                    disabled: Some(false),
                    ..KeyPatch::default()
                },
            )
            .unwrap();
        let report = h.apply().await;
        assert_eq!(
            report.rows.len(),
            1,
            "still over the stored budget: reasserted"
        );
        // …beyond it the rule is not evaluated, and the failure changes nothing.
        h.sandbox.account().advance(Duration::hours(7));
        h.sandbox
            .account()
            .patch_key(
                &h.hash("team-a-3"),
                &KeyPatch {
                    disabled: Some(false),
                    ..KeyPatch::default()
                },
            )
            .unwrap();
        let report = h.apply().await;
        assert!(report.rows.is_empty(), "{:?}", report.rows);
        assert!(!h.key("team-a-3").disabled);
        assert!(
            report
                .plan
                .skips
                .iter()
                .any(|s| s.reason.contains("unavailable"))
        );
        let source_errors = h
            .store
            .events(nov(1), Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap())
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "source_error")
            .count();
        assert_eq!(source_errors, 1, "recorded once per outage");
    }
}

crate::on_both_backends! {
    async fn a_deleted_key_loses_its_claims(backend) {
        let h = Harness::new_on(backend, nov(10), team_a_keys(), TEAM_A, |_| {}).await;
        h.spend("team-a-1", 60.0);
        h.apply().await;
        let gone = h.hash("team-a-2");
        h.sandbox.account().delete_key(&gone).unwrap();
        let report = h.apply().await;
        let deleted: Vec<_> = report
            .rows
            .iter()
            .filter(|r| r.change.kind == ChangeKind::Deleted)
            .collect();
        assert_eq!(deleted.len(), 1);
        let row = h
            .history()
            .await
            .into_iter()
            .find(|r| r.kind == ChangeKind::Deleted);
        assert_eq!(
            row.map(|r| r.key_name).as_deref(),
            Some("team-a-2"),
            "the vanished key's name, from history"
        );
        assert!(
            h.store
                .claims()
                .await
                .unwrap()
                .iter()
                .all(|c| c.key_hash != gone)
        );
    }
}

crate::on_both_backends! {
    async fn a_refused_credential_stops_the_run_and_is_recorded(backend) {
        let h = Harness::new_on(backend, nov(10), team_a_keys(), TEAM_A, |_| {}).await;
        let config = (*h.config).clone();
        let client =
            keywarden::openrouter::Client::new(common::settings(&config, "sk-or-v1-wrong")).unwrap();
        let runner = keywarden::run::Runner::new(
            h.store.clone(),
            client,
            h.config.clone(),
            Arc::new(h.sandbox.account().clone()),
        );
        let report = runner
            .run(&keywarden::run::RunRequest {
                trigger: keywarden::run::Trigger::Manual,
                due: None,
                dry_run: false,
                force: false,
            })
            .await
            .unwrap();
        assert!(report.failed());
        assert!(report.error.as_deref().unwrap().contains("refused"));
        let auth = h.store.events(nov(1), nov(30)).await.unwrap();
        assert!(auth.iter().any(|e| e.kind == "auth_failed"));
    }
}

const SAMPLED: &str = r#"
[[rule]]
name = "team-a-monthly"
keys = { names = ["team-a-*"] }
[rule.when]
budget = { usd = 50.0, window = "monthly", scope = "group" }
[rule.set]
disabled = true

[[rule]]
name = "ci-each"
keys = { names = ["ci-*"] }
warn_at = [0.5]
[rule.when]
budget = { usd = 10.0, window = "daily", scope = "each" }
[rule.set]
disabled = true
"#;

/// The `budget_readings` rows as (HH:MM, rule, spend), in that order.
async fn budget_readings(h: &Harness) -> Vec<(String, String, f64)> {
    let raw = h.raw().await;
    let rows = raw
        .rows(
            "SELECT substr(at, 12, 5), rule, spend_usd FROM budget_readings
             ORDER BY at, rule, spend_usd",
            &[],
        )
        .await;
    raw.close().await;
    rows
}

fn readings(expected: &[(&str, &str, f64)]) -> Vec<(String, String, f64)> {
    expected
        .iter()
        .map(|&(at, rule, spend)| (at.to_string(), rule.to_string(), spend))
        .collect()
}

/// A budget line as `report --format json` prints it: rule, spend, budget,
/// exceeded_at.
type Line = (String, f64, f64, Option<String>);

crate::on_both_backends! {
    async fn budget_readings_are_sampled_per_rule_and_kept_where_a_budget_is_crossed(backend) {
        let keys = ["team-a-1", "team-a-2", "ci-1", "ci-2"].map(seed).to_vec();
        let h = Harness::new_on(backend, nov(10), keys, SAMPLED, |_| {}).await;
        assert_eq!(h.config.history.snapshot_interval.as_secs(), 15 * 60);
        let account = h.sandbox.account().clone();
        h.spend("ci-1", 6.0);
        h.spend("ci-2", 5.0);
        // The lines every run's readings make, as when every run recorded them:
        // per rule, the highest spend, the budget and the first run at or over it.
        let mut every_run: BTreeMap<String, Line> = BTreeMap::new();
        // One run a minute from 10:00 to 10:20; team-a reaches 50 USD at 10:05.
        for minute in 0..=20 {
            account.set_now(nov(10) + Duration::minutes(minute));
            match minute {
                0 => h.spend("team-a-1", 10.0),
                1..=5 => h.spend("team-a-2", 8.0),
                _ => {}
            }
            if minute == 3 {
                h.spend("ci-1", 1.0);
            }
            let report = h.apply().await;
            assert!(!report.failed(), "{report:?}");
            assert_eq!(report.rows.len(), if minute == 5 { 2 } else { 0 });
            for r in &report.plan.budgets {
                let line = every_run.entry(r.rule.to_string()).or_insert((
                    r.rule.to_string(),
                    f64::MIN,
                    0.0,
                    None,
                ));
                line.1 = line.1.max(r.spend_usd);
                line.2 = r.budget_usd;
                if line.3.is_none() && r.spend_usd + 1e-9 >= r.budget_usd {
                    line.3 = Some(h.now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
                }
            }
            if minute == 9 {
                // Ten runs: each rule's readings once, and team-a's again in the
                // run that crossed its budget and disabled its keys.
                assert_eq!(
                    budget_readings(&h).await,
                    readings(&[
                        ("10:00", "ci-each", 5.0),
                        ("10:00", "ci-each", 6.0),
                        ("10:00", "team-a-monthly", 10.0),
                        ("10:05", "team-a-monthly", 50.0),
                    ])
                );
            }
        }
        // Each rule again 15 minutes after its last readings: ci-each at 10:15,
        // team-a at 10:20 (its clock restarted at the crossing).
        assert_eq!(
            budget_readings(&h).await,
            readings(&[
                ("10:00", "ci-each", 5.0),
                ("10:00", "ci-each", 6.0),
                ("10:00", "team-a-monthly", 10.0),
                ("10:05", "team-a-monthly", 50.0),
                ("10:15", "ci-each", 5.0),
                ("10:15", "ci-each", 7.0),
                ("10:20", "team-a-monthly", 50.0),
            ])
        );

        // The report's budget lines are those of every run's readings.
        let json: serde_json::Value = serde_json::from_str(
            &crate::report_history::keywarden_ok(
                &h,
                &[
                    "report",
                    "--format",
                    "json",
                    "--group-by",
                    "rule",
                    "--since",
                    "2026-11-10",
                    "--until",
                    "2026-11-10",
                ],
            )
            .await,
        )
        .unwrap();
        let lines: BTreeMap<String, Line> = json["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["budgets"].as_array().unwrap())
            .map(|b| {
                let rule = b["rule"].as_str().unwrap().to_string();
                let line = (
                    rule.clone(),
                    b["spend_usd"].as_f64().unwrap(),
                    b["budget_usd"].as_f64().unwrap(),
                    b["exceeded_at"].as_str().map(String::from),
                );
                (rule, line)
            })
            .collect();
        assert_eq!(lines, every_run);
        assert_eq!(
            lines["team-a-monthly"],
            (
                "team-a-monthly".to_string(),
                50.0,
                50.0,
                Some("2026-11-10T10:05:00Z".to_string())
            )
        );
        assert_eq!(lines["ci-each"], ("ci-each".to_string(), 7.0, 10.0, None));
    }
}
