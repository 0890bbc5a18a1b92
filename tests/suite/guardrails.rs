//! `set.guardrail` end to end against the sandbox (SPEC §12): the bulk
//! calls the sandbox received, the history rows, the claims, what a key may
//! spend on afterwards, and the bad inputs (a name resolving to none or
//! several, a truncated assignment listing, a guardrail deleted between runs).

use crate::common;

use chrono::{TimeZone, Utc};
use common::{Harness, nov, seed};
use keywarden::domain::Field;
use keywarden::engine::{ChangeKind, Outcome};
use keywarden::rules::model::Origin;
use keywarden::sandbox::guardrail::{
    CHEAP_MODELS, CHEAP_MODELS_ONLY, GuardrailFields, KeyHashes, NO_TRAINING,
};
use keywarden::sandbox::paging::PageRequest;
use keywarden::sandbox::{AccountError, Faults, JournalEntry, Spend};
use serde_json::json;
use std::collections::BTreeMap;

/// Downgrade team a at 80 % of its monthly budget, disable it at 100 %.
const DOWNGRADE: &str = r#"
[[rule]]
name = "team-a-downgrade"
keys = { names = ["team-a-*"] }
[rule.when]
budget = { usd = 50.0, window = "monthly", scope = "group", at = 0.8 }
[rule.set]
guardrail = "cheap-models-only"

[[rule]]
name = "team-a-cutoff"
keys = { names = ["team-a-*"] }
[rule.when]
budget = { usd = 50.0, window = "monthly", scope = "group" }
[rule.set]
disabled = true
"#;

/// Every key on `guardrail` (by name or id).
fn on(guardrail: &str) -> String {
    format!("[[rule]]\nname = \"all\"\nkeys = \"all\"\n[rule.set]\nguardrail = \"{guardrail}\"\n")
}

fn keys(names: &[&str]) -> Vec<keywarden::sandbox::SeedKey> {
    names.iter().map(|n| seed(n)).collect()
}

/// A harness whose keys `names` a rule puts on `cheap-models-only`.
async fn all_on_cheap(names: &[&str]) -> Harness {
    Harness::new(nov(10), keys(names), &on("cheap-models-only"), |_| {}).await
}

/// Every key's guardrail in the sandbox, by key hash.
fn assignments(h: &Harness) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut offset = 0;
    loop {
        let page = h
            .sandbox
            .account()
            .assignments(
                None,
                PageRequest {
                    offset: Some(offset),
                    limit: Some(100),
                },
            )
            .unwrap();
        let got = page.data.len();
        offset += got;
        out.extend(page.data.into_iter().map(|a| (a.key_hash, a.guardrail_id)));
        if got == 0 || offset >= page.total_count {
            return out;
        }
    }
}

/// Assigns `guardrail` to the keys `names` by hand.
fn assign_by_hand(h: &Harness, guardrail: &str, names: &[&str]) {
    let key_hashes = names.iter().map(|n| h.hash(n)).collect();
    h.sandbox
        .account()
        .assign_keys(guardrail, &KeyHashes { key_hashes })
        .unwrap();
}

/// The requests the sandbox received that change something, and forgets
/// every request.
fn take_changes(h: &Harness) -> Vec<JournalEntry> {
    let requests = h
        .sandbox
        .account()
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .collect();
    h.sandbox.account().clear_requests();
    requests
}

/// The hashes a bulk call carried, sorted.
fn hashes_of(entry: &JournalEntry) -> Vec<String> {
    let mut hashes: Vec<String> = entry.body["key_hashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap().to_string())
        .collect();
    hashes.sort();
    hashes
}

fn sorted_hashes(h: &Harness, names: &[&str]) -> Vec<String> {
    let mut hashes: Vec<String> = names.iter().map(|n| h.hash(n)).collect();
    hashes.sort();
    hashes
}

fn spend_on(h: &Harness, name: &str, model: &str) -> Result<(), AccountError> {
    let spend = Spend {
        usd: 0.01,
        byok: false,
        model: Some(model.into()),
    };
    h.sandbox
        .account()
        .spend_on(&h.hash(name), &spend)
        .map(|_| ())
}

#[tokio::test]
async fn a_team_is_downgraded_at_80_percent_disabled_at_100_and_given_its_guardrails_back() {
    let h = Harness::new(
        nov(10),
        keys(&["team-a-1", "team-a-2", "team-a-3", "team-b-1"]),
        DOWNGRADE,
        |_| {},
    )
    .await;
    // A person had put team-a-3 on no-training.
    assign_by_hand(&h, NO_TRAINING, &["team-a-3"]);
    h.spend("team-a-1", 41.0);
    take_changes(&h);

    let report = h.apply().await;
    assert!(!report.failed(), "{report:?}");
    let sent = take_changes(&h);
    assert_eq!(sent.len(), 1, "one bulk call, no PATCH: {sent:?}");
    assert_eq!(
        (sent[0].method.as_str(), sent[0].path.clone()),
        (
            "POST",
            format!("/api/v1/guardrails/{CHEAP_MODELS_ONLY}/assignments/keys")
        )
    );
    assert_eq!(
        hashes_of(&sent[0]),
        sorted_hashes(&h, &["team-a-1", "team-a-2", "team-a-3"])
    );
    let rows = h.history().await;
    assert_eq!(rows.len(), 3);
    for row in &rows {
        assert_eq!(
            (row.kind, row.outcome),
            (ChangeKind::Assert, Outcome::Applied)
        );
        assert_eq!(row.rule, "team-a-downgrade");
        let from = if row.key_name == "team-a-3" {
            json!(NO_TRAINING)
        } else {
            json!(null)
        };
        assert_eq!(
            serde_json::to_value(&row.fields).unwrap(),
            json!({"guardrail": {"from": from, "to": CHEAP_MODELS_ONLY}})
        );
        assert!(
            row.reason.ends_with(&format!(
                "guardrail {} -> \"cheap-models-only\" ({CHEAP_MODELS_ONLY})",
                if row.key_name == "team-a-3" {
                    format!("\"no-training\" ({NO_TRAINING})")
                } else {
                    "none".into()
                }
            )),
            "{}",
            row.reason
        );
    }
    // The downgrade holds: an expensive model is refused, a cheap one is not.
    let refused = spend_on(&h, "team-a-2", "openai/gpt-4o").unwrap_err();
    assert_eq!(refused.status(), 403);
    assert!(
        refused.to_string().contains("cheap-models-only"),
        "{refused}"
    );
    spend_on(&h, "team-a-2", CHEAP_MODELS[0]).unwrap();
    spend_on(&h, "team-b-1", "openai/gpt-4o").unwrap();
    assert!(
        h.apply().await.rows.is_empty(),
        "a second run changes nothing"
    );
    assert!(take_changes(&h).is_empty());

    // 100 %: disabled, the guardrail stays.
    h.spend("team-a-2", 10.0);
    let report = h.apply().await;
    assert!(!report.failed(), "{report:?}");
    let sent = take_changes(&h);
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert!(
        sent.iter()
            .all(|r| r.method == "PATCH" && r.body == json!({"disabled": true}))
    );

    // The month rolls over: enabled again, and each key given back the
    // guardrail it had before.
    h.sandbox
        .account()
        .set_now(Utc.with_ymd_and_hms(2026, 12, 1, 0, 5, 0).unwrap());
    let report = h.apply().await;
    assert!(!report.failed(), "{report:?}");
    assert!(
        report
            .rows
            .iter()
            .all(|r| r.change.kind == ChangeKind::Release)
    );
    let sent = take_changes(&h);
    let calls: Vec<(String, String, Vec<String>)> = sent
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| (r.method.clone(), r.path.clone(), hashes_of(r)))
        .collect();
    let mut expected = vec![
        (
            "POST".to_string(),
            format!("/api/v1/guardrails/{NO_TRAINING}/assignments/keys"),
            sorted_hashes(&h, &["team-a-3"]),
        ),
        (
            "POST".to_string(),
            format!("/api/v1/guardrails/{CHEAP_MODELS_ONLY}/assignments/keys/remove"),
            sorted_hashes(&h, &["team-a-1", "team-a-2"]),
        ),
    ];
    let mut calls = calls;
    calls.sort();
    expected.sort();
    assert_eq!(calls, expected);
    assert_eq!(sent.iter().filter(|r| r.method == "PATCH").count(), 3);
    assert_eq!(
        assignments(&h),
        BTreeMap::from([(h.hash("team-a-3"), NO_TRAINING.to_string())])
    );
    assert!(!h.key("team-a-1").disabled);
    assert!(h.store.claims().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_guardrail_reassigned_by_hand_is_asserted_again_and_one_dropped_for_none_is_drift() {
    let h = all_on_cheap(&["k-1", "k-2"]).await;
    h.apply().await;
    // A person moves k-1 to no-training: reasserted next run.
    assign_by_hand(&h, NO_TRAINING, &["k-1"]);
    let report = h.apply().await;
    let kinds: Vec<(String, ChangeKind)> = report
        .rows
        .iter()
        .map(|r| (r.change.key_name.clone(), r.change.kind))
        .collect();
    assert_eq!(kinds, [("k-1".to_string(), ChangeKind::Reassert)]);
    assert_eq!(assignments(&h)[&h.hash("k-1")], CHEAP_MODELS_ONLY);
    // The rule goes; meanwhile a person moved k-2 to no-training: left alone.
    assign_by_hand(&h, NO_TRAINING, &["k-2"]);
    h.load_rules("[[rule]]\nname = \"other\"\nkeys = { names = [\"nobody\"] }\n[rule.set]\ndisabled = true\n")
        .await;
    take_changes(&h);
    let report = h.apply().await;
    let kinds: BTreeMap<String, ChangeKind> = report
        .rows
        .iter()
        .map(|r| (r.change.key_name.clone(), r.change.kind))
        .collect();
    assert_eq!(
        kinds,
        BTreeMap::from([
            ("k-1".to_string(), ChangeKind::Release),
            ("k-2".to_string(), ChangeKind::Drift)
        ])
    );
    assert_eq!(
        assignments(&h),
        BTreeMap::from([(h.hash("k-2"), NO_TRAINING.to_string())])
    );
    assert!(h.store.claims().await.unwrap().is_empty());
}

#[tokio::test]
async fn bulk_calls_carry_at_most_100_hashes_and_the_guard_counts_guardrail_changes() {
    let names: Vec<String> = (0..250).map(|i| format!("k-{i:03}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let h = Harness::new(nov(10), keys(&names), &on(CHEAP_MODELS_ONLY), |c| {
        c.daemon.max_changes_per_run = 200;
    })
    .await;
    take_changes(&h);
    let report = h.apply().await;
    assert!(report.guard_tripped, "250 guardrail changes > 200");
    assert_eq!(report.count(Outcome::Held), 250);
    assert!(take_changes(&h).is_empty(), "nothing sent");

    let report = h.run(false, true).await;
    assert!(!report.failed(), "{report:?}");
    let sent = take_changes(&h);
    let mut sizes: Vec<usize> = sent.iter().map(|r| hashes_of(r).len()).collect();
    sizes.sort();
    assert_eq!(sizes, [50, 100, 100]);
    assert!(
        sent.iter()
            .all(|r| r.path == format!("/api/v1/guardrails/{CHEAP_MODELS_ONLY}/assignments/keys"))
    );
    let mut all: Vec<String> = sent.iter().flat_map(hashes_of).collect();
    all.sort();
    assert_eq!(all, sorted_hashes(&h, &names));
    assert_eq!(assignments(&h).len(), 250);
}

#[tokio::test]
async fn a_dry_run_records_guardrail_changes_and_sends_nothing() {
    let h = all_on_cheap(&["k-1"]).await;
    take_changes(&h);
    let report = h.run(true, false).await;
    assert_eq!(report.count(Outcome::DryRun), 1);
    assert!(take_changes(&h).is_empty());
    assert!(assignments(&h).is_empty());
}

#[tokio::test]
async fn a_bulk_call_cut_off_leaves_its_rows_unknown_until_the_next_run_reads_the_assignments() {
    let h = all_on_cheap(&["k-1", "k-2"]).await;
    h.sandbox
        .account()
        .set_faults(Faults {
            drop_rate: Some(1.0),
            ..Faults::default()
        })
        .unwrap();
    let report = h.apply().await;
    assert_eq!(report.count(Outcome::Unknown), 2, "{report:?}");
    h.sandbox.account().set_faults(Faults::default()).unwrap();
    take_changes(&h);
    let report = h.apply().await;
    assert_eq!(report.resolved.len(), 2);
    assert!(
        report
            .resolved
            .iter()
            .all(|r| r.outcome == Outcome::Applied)
    );
    assert!(
        report.rows.is_empty(),
        "applied by the cut-off call: nothing re-sent"
    );
    assert!(take_changes(&h).is_empty());
    assert_eq!(h.store.claims().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_name_matching_no_guardrail_or_several_is_recorded_and_the_rule_not_evaluated() {
    let rules = format!(
        "{}\n[[rule]]\nname = \"twins\"\nkeys = {{ names = [\"k-2\"] }}\n[rule.set]\nguardrail = \"twin\"\n\n[[rule]]\nname = \"off\"\nkeys = {{ names = [\"k-3\"] }}\n[rule.set]\ndisabled = true\n",
        on("no-such-guardrail").replace("keys = \"all\"", "keys = { names = [\"k-1\"] }")
    );
    let h = Harness::new(nov(10), keys(&["k-1", "k-2", "k-3"]), &rules, |_| {}).await;
    for _ in 0..2 {
        let twin: GuardrailFields = serde_json::from_value(json!({"name": "twin"})).unwrap();
        h.sandbox.account().create_guardrail(twin).unwrap();
    }
    take_changes(&h);
    let report = h.apply().await;
    let changed: Vec<&str> = report
        .rows
        .iter()
        .map(|r| r.change.key_name.as_str())
        .collect();
    assert_eq!(changed, ["k-3"], "the run goes on for the other rule");
    let sent = take_changes(&h);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, "PATCH");
    let skips: BTreeMap<&str, &str> = report
        .plan
        .skips
        .iter()
        .map(|s| (s.rule.as_str(), s.reason.as_str()))
        .collect();
    assert!(
        skips["all"]
            .starts_with("set.guardrail: no guardrail has the id or name \"no-such-guardrail\""),
        "{skips:?}"
    );
    assert!(
        skips["twins"].starts_with("set.guardrail: 2 guardrails are named \"twin\""),
        "{skips:?}"
    );
}

#[tokio::test]
async fn a_truncated_assignment_listing_is_an_error_never_no_guardrail() {
    let h = all_on_cheap(&["k-1", "k-2"]).await;
    h.apply().await;
    // The rule now wants none; the listing comes back cut.
    h.load_rules(&on("none")).await;
    h.sandbox
        .account()
        .set_faults(Faults {
            assignments_cut_at: Some(1),
            ..Faults::default()
        })
        .unwrap();
    take_changes(&h);
    let report = h.apply().await;
    assert!(report.rows.is_empty(), "{:?}", report.rows);
    assert!(take_changes(&h).is_empty());
    assert!(
        report
            .plan
            .skips
            .iter()
            .any(|s| s.rule == "all" && s.reason.contains("ended after 1 of its 2 rows")),
        "{:?}",
        report.plan.skips
    );
    // Whole again: nothing had changed; the rule is evaluated and the keys
    // released to none.
    h.sandbox.account().set_faults(Faults::default()).unwrap();
    assert_eq!(assignments(&h).len(), 2, "nothing changed");
    let report = h.apply().await;
    assert_eq!(report.count(Outcome::Applied), 2);
    assert!(assignments(&h).is_empty());
}

#[tokio::test]
async fn a_guardrail_deleted_between_runs_drops_its_claims_and_is_not_re_created() {
    let h = all_on_cheap(&["k-1", "k-2"]).await;
    h.apply().await;
    assert_eq!(h.store.claims().await.unwrap().len(), 2);
    h.sandbox
        .account()
        .delete_guardrail(CHEAP_MODELS_ONLY)
        .unwrap();
    take_changes(&h);
    let report = h.apply().await;
    let rows: Vec<(ChangeKind, Outcome)> = report
        .rows
        .iter()
        .map(|r| (r.change.kind, r.outcome))
        .collect();
    assert_eq!(rows, [(ChangeKind::Drift, Outcome::Applied); 2]);
    for r in &report.rows {
        assert_eq!(r.change.fields[&Field::Guardrail].to.to_json(), json!(null));
        assert!(
            r.change.reason.contains("no longer exists"),
            "{}",
            r.change.reason
        );
    }
    assert!(
        take_changes(&h).is_empty(),
        "nothing sent, nothing re-created"
    );
    assert!(h.store.claims().await.unwrap().is_empty());
    let next = h.apply().await;
    assert!(next.rows.is_empty());
    assert!(next.plan.skips.iter().any(|s| s.rule == "all"));
}

#[tokio::test(flavor = "multi_thread")]
async fn revert_gives_a_key_back_its_previous_guardrail_once_no_rule_asserts_it() {
    let h = all_on_cheap(&["k-1"]).await;
    assign_by_hand(&h, NO_TRAINING, &["k-1"]);
    let run = h.apply().await;
    assert_eq!(run.rows[0].id, 1);
    let refused = crate::revert::keywarden(&h, &["revert", "1"]).await;
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        common::text(&refused.stderr).contains("refused: rule all still asserts guardrail"),
        "{}",
        common::text(&refused.stderr)
    );
    h.store
        .set_rule_enabled("all", false, &Origin::Cli, h.now())
        .await
        .unwrap();
    take_changes(&h);
    let out = crate::revert::keywarden(&h, &["revert", "1"]).await;
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    let sent = take_changes(&h);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        sent[0].path,
        format!("/api/v1/guardrails/{NO_TRAINING}/assignments/keys")
    );
    assert_eq!(
        assignments(&h),
        BTreeMap::from([(h.hash("k-1"), NO_TRAINING.to_string())])
    );
    let revert = &h.history().await[0];
    assert_eq!(
        (revert.kind, revert.outcome),
        (ChangeKind::Revert, Outcome::Applied)
    );
    assert_eq!(
        serde_json::to_value(&revert.fields).unwrap(),
        json!({"guardrail": {"from": CHEAP_MODELS_ONLY, "to": NO_TRAINING}})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn check_config_warns_of_a_name_the_reachable_account_does_not_resolve() {
    let rules = format!(
        "{}\n[[rule]]\nname = \"cheap\"\npriority = 1\nkeys = \"all\"\n[rule.set]\nguardrail = \"cheap-models-only\"\n",
        on("no-such-guardrail").replace("keys = \"all\"", "keys = { names = [\"k-1\"] }")
    );
    let h = Harness::new(nov(10), keys(&["k-1"]), "", |_| {}).await;
    let dir = h.dir.path();
    std::fs::write(dir.join("rules.toml"), &rules).unwrap();
    std::fs::write(
        dir.join("keywarden.toml"),
        format!(
            "[openrouter]\nbase_url = \"{}\"\n[daemon]\nrules_files = [\"rules.toml\"]\n",
            h.sandbox.base_url()
        ),
    )
    .unwrap();
    let out = common::check_config(dir, Some(h.sandbox.management_key())).await;
    assert_eq!(out.status.code(), Some(0), "a warning only");
    let stderr = common::text(&out.stderr);
    assert!(
        stderr.contains("rules.toml:2:")
            && stderr.contains(
                "rule \"all\": set.guardrail: no guardrail has the id or name \"no-such-guardrail\""
            ),
        "{stderr}"
    );
    assert!(stderr.contains("1 warning in 1 file"), "{stderr}");
    // Without a credential the account is not asked: no warning.
    let offline = common::check_config(dir, None).await;
    assert_eq!(offline.status.code(), Some(0));
    assert!(!common::text(&offline.stderr).contains("warning"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_removed_rule_gives_its_keys_their_guardrail_back_read_for_its_claims_alone() {
    let h = all_on_cheap(&["k-1", "k-2"]).await;
    h.apply().await;
    assert_eq!(assignments(&h).len(), 2);
    take_changes(&h);
    // No rule sets `guardrail` any more: the claims alone make the run
    // read the assignments and release them to none.
    h.load_rules("[[rule]]\nname = \"other\"\nkeys = \"all\"\n[rule.set]\nlimit = 9.0\n")
        .await;
    let report = h.apply().await;
    let released: Vec<_> = report
        .rows
        .iter()
        .filter(|r| r.change.fields.contains_key(&Field::Guardrail))
        .map(|r| {
            (
                r.change.kind,
                r.outcome,
                r.change.fields[&Field::Guardrail].to.to_json(),
            )
        })
        .collect();
    assert_eq!(
        released,
        vec![(ChangeKind::Release, Outcome::Applied, json!(null)); 2],
        "{:?}",
        report.rows
    );
    assert!(assignments(&h).is_empty(), "{:?}", assignments(&h));
}
