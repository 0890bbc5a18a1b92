//! `keywarden revert CHANGE_ID [--dry-run] [--exempt-until TIME]` (SPEC §5),
//! run as a user runs it, against the sandbox.

use crate::common;

use common::{Harness, nov, seed, text};
use keywarden::engine::{ChangeKind, Outcome};
use keywarden::openrouter::model::KeyPatch;
use keywarden::rules::model::Origin;
use serde_json::json;
use std::process::Output;

const RULES: &str = r#"
[[rule]]
name = "team-a-monthly"
keys = { names = ["team-a-*"] }
[rule.when]
budget = { usd = 50.0, window = "monthly", scope = "group" }
[rule.set]
disabled = true
"#;

/// A harness whose one key was disabled by `team-a-monthly` (change 1).
async fn disabled_by_rule() -> Harness {
    let h = Harness::new(nov(10), vec![seed("team-a-ci")], RULES, |_| {}).await;
    h.spend("team-a-ci", 60.0);
    let run = h.apply().await;
    assert_eq!(run.rows.len(), 1);
    assert_eq!(run.rows[0].id, 1);
    assert!(h.key("team-a-ci").disabled);
    h.take_patches();
    h
}

/// Runs the binary against the harness's sandbox and database.
pub(crate) async fn keywarden(h: &Harness, args: &[&str]) -> Output {
    let config = h.dir.path().join("keywarden.toml");
    std::fs::write(
        &config,
        format!(
            "[openrouter]\nbase_url = \"{}\"\nmax_retries = 0\n",
            h.sandbox.base_url()
        ),
    )
    .unwrap();
    let mut all = vec![
        "--config".to_string(),
        config.display().to_string(),
        "--database".into(),
        h.config.database_path().display().to_string(),
    ];
    all.extend(args.iter().map(|s| s.to_string()));
    tokio::process::Command::from(common::keywarden())
        .args(&all)
        .env("OPENROUTER_MANAGEMENT_KEY", h.sandbox.management_key())
        .output()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn reverted_change_restores_the_key_and_records_a_revert() {
    let h = disabled_by_rule().await;
    // The rule no longer asserts anything: disabled by a person.
    h.store
        .set_rule_enabled("team-a-monthly", false, &Origin::Cli, h.now())
        .await
        .unwrap();

    let dry = keywarden(&h, &["revert", "1", "--dry-run"]).await;
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    assert!(
        text(&dry.stdout).contains("would revert change 1 on team-a-ci: disabled: true → false")
    );
    assert!(h.take_patches().is_empty(), "a dry run sends nothing");
    assert_eq!(h.history().await.len(), 1, "a dry run records nothing");

    let out = keywarden(&h, &["revert", "1"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("reverted change 1 on team-a-ci"),
        "{}",
        text(&out.stderr)
    );
    let patches = h.take_patches();
    assert_eq!(patches.len(), 1);
    assert_eq!(
        patches[0].path,
        format!("/api/v1/keys/{}", h.hash("team-a-ci"))
    );
    assert_eq!(patches[0].body, json!({"disabled": false}));
    assert!(!h.key("team-a-ci").disabled);

    let newest = &h.history().await[0];
    assert_eq!(newest.kind, ChangeKind::Revert);
    assert_eq!(newest.outcome, Outcome::Applied);
    assert_eq!(newest.rule, "team-a-monthly");
    assert_eq!(
        serde_json::to_value(&newest.fields).unwrap(),
        json!({"disabled": {"from": true, "to": false}})
    );
    assert!(
        h.store.claims().await.unwrap().is_empty(),
        "the claim is given up"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn revert_is_refused_while_a_rule_still_asserts_the_value() {
    let h = disabled_by_rule().await;
    let out = keywarden(&h, &["revert", "1"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("rule team-a-monthly still asserts disabled = true"),
        "{err}"
    );
    assert!(err.contains("--exempt-until"), "{err}");
    assert!(h.take_patches().is_empty());
    assert_eq!(h.history().await.len(), 1);
    assert!(h.key("team-a-ci").disabled);
}

#[tokio::test(flavor = "multi_thread")]
async fn exempt_until_adds_the_exemption_and_reverts() {
    let h = disabled_by_rule().await;
    let out = keywarden(&h, &["revert", "1", "--exempt-until", "2099-01-01"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout)
            .contains("exempted team-a-ci from rule team-a-monthly until 2099-01-01T00:00:00Z")
    );
    let exemptions = h.store.exemptions().await.unwrap();
    assert_eq!(exemptions.len(), 1);
    assert_eq!(exemptions[0].key_hash, h.hash("team-a-ci"));
    assert_eq!(exemptions[0].rule.as_deref(), Some("team-a-monthly"));
    assert_eq!(
        exemptions[0].until.to_rfc3339(),
        "2099-01-01T00:00:00+00:00"
    );
    assert_eq!(h.take_patches()[0].body, json!({"disabled": false}));
    assert!(!h.key("team-a-ci").disabled);

    // The next run leaves the exempt key alone.
    h.apply().await;
    assert!(!h.key("team-a-ci").disabled);
    assert!(h.take_patches().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn revert_is_refused_when_the_key_no_longer_holds_the_value() {
    let h = disabled_by_rule().await;
    h.sandbox
        .account()
        .patch_key(
            &h.hash("team-a-ci"),
            &KeyPatch {
                disabled: Some(false),
                ..KeyPatch::default()
            },
        )
        .unwrap();
    let out = keywarden(&h, &["revert", "1"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("has disabled = false now"),
        "{}",
        text(&out.stderr)
    );

    let missing = keywarden(&h, &["revert", "99"]).await;
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("no change 99"));
}
