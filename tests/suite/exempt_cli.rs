//! `keywarden exempt add|list|remove` through the binary.

use crate::common;

use chrono::{DateTime, Duration, Utc};
use common::{offline as keywarden, stdout};
use keywarden::domain::Settings;
use keywarden::engine::{ChangeKind, Outcome};
use keywarden::rules::model::{Conditions, Origin, Rule, Selector};
use keywarden::store::Store;
use std::process::Output;

const H1: &str = "f01d52606dc8f0a8303a7b5cc3fa07109c2e346cec7c0a16b40de462992ce943";
const H2: &str = "0e6a7cb1c9d0e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3";

fn usage_error(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// A database with the rule `team-a-monthly` and one change of key H1 named `team-a-ci`.
async fn seeded() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.toml"), "").unwrap();
    let store = Store::open(&dir.path().join("kw.db")).await.unwrap();
    let rule = Rule {
        name: "team-a-monthly".into(),
        description: None,
        enabled: true,
        priority: 0,
        keys: Selector::All,
        schedule: None,
        timezone: None,
        when: Conditions::default(),
        set: Settings {
            disabled: Some(true),
            ..Settings::default()
        },
        warn_at: vec![],
        warn_before_secs: vec![],
    };
    store
        .sync_rules(&Origin::Cli, &[rule], false, Utc::now())
        .await
        .unwrap();
    let change = common::disable_change(H1, "team-a-ci", "team-a-monthly", ChangeKind::Assert);
    store
        .record_changes(None, Utc::now(), &[change], Some(Outcome::DryRun))
        .await
        .unwrap();
    (dir, store)
}

#[tokio::test]
async fn add_by_name_then_list_and_remove() {
    let (dir, store) = seeded().await;
    let before = Utc::now();
    let out = stdout(&keywarden(
        dir.path(),
        &[
            "exempt",
            "add",
            "team-a-ci",
            "--until",
            "7d",
            "--rule",
            "team-a-monthly",
            "--reason",
            "conference demo",
        ],
    ));
    assert!(out.starts_with("exemption 1: keywarden leaves key team-a-ci (f01d52606dc8…) alone (rule team-a-monthly) until "), "{out}");
    let exemptions = store.exemptions().await.unwrap();
    assert_eq!(exemptions.len(), 1);
    let e = &exemptions[0];
    assert_eq!(
        (e.key_hash.as_str(), e.rule.as_deref(), e.reason.as_str()),
        (H1, Some("team-a-monthly"), "conference demo")
    );
    let week = Duration::days(7);
    assert!(
        e.until >= before + week - Duration::seconds(1) && e.until <= Utc::now() + week,
        "7d is a week from now: {}",
        e.until
    );

    // An expired one, straight into the store, is listed as expired.
    store
        .add_exemption(
            H2,
            None,
            Utc::now() - Duration::days(1),
            "last week",
            Utc::now() - week,
        )
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&stdout(&keywarden(
        dir.path(),
        &["exempt", "list", "--format", "json"],
    )))
    .unwrap();
    let list = json.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(
        (
            &list[0]["id"],
            &list[0]["key_name"],
            &list[0]["rule"],
            &list[0]["active"]
        ),
        (
            &1.into(),
            &"team-a-ci".into(),
            &"team-a-monthly".into(),
            &true.into()
        )
    );
    assert_eq!(
        (&list[1]["key_hash"], &list[1]["rule"], &list[1]["active"]),
        (&H2.into(), &serde_json::Value::Null, &false.into())
    );
    DateTime::parse_from_rfc3339(list[0]["until"].as_str().unwrap()).unwrap();
    let table = stdout(&keywarden(dir.path(), &["exempt", "list"]));
    for expected in [
        "team-a-ci",
        "conference demo",
        "active",
        "expired",
        "(every rule)",
    ] {
        assert!(table.contains(expected), "{expected:?} in\n{table}");
    }

    assert_eq!(
        stdout(&keywarden(dir.path(), &["exempt", "remove", "1"])),
        "removed exemption 1\n"
    );
    assert!(
        usage_error(&keywarden(dir.path(), &["exempt", "remove", "1"])).contains("no exemption 1")
    );
    assert_eq!(store.exemptions().await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_unknown_hash_shaped_key_is_accepted_and_a_date_runs_to_its_end() {
    let (dir, store) = seeded().await;
    stdout(&keywarden(
        dir.path(),
        &[
            "exempt",
            "add",
            H2,
            "--until",
            "2099-12-24",
            "--reason",
            "holidays",
        ],
    ));
    let e = &store.exemptions().await.unwrap()[0];
    assert_eq!((e.key_hash.as_str(), e.rule.as_deref()), (H2, None));
    assert_eq!(
        e.until,
        DateTime::parse_from_rfc3339("2099-12-25T00:00:00Z").unwrap()
    );
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let (dir, store) = seeded().await;
    let cases: [(&[&str], &str); 5] = [
        (
            &["exempt", "add", "nobody", "--until", "7d", "--reason", "x"],
            "no key named `nobody`",
        ),
        (
            &["exempt", "add", H1, "--until", "soon", "--reason", "x"],
            "--until",
        ),
        (
            &[
                "exempt",
                "add",
                H1,
                "--until",
                "2020-01-01",
                "--reason",
                "x",
            ],
            "not in the future",
        ),
        (
            &["exempt", "add", H1, "--until", "7d", "--reason", " "],
            "--reason",
        ),
        (
            &[
                "exempt", "add", H1, "--until", "7d", "--rule", "typo", "--reason", "x",
            ],
            "no rule named `typo`",
        ),
    ];
    for (args, expected) in cases {
        let err = usage_error(&keywarden(dir.path(), args));
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    assert!(store.exemptions().await.unwrap().is_empty());
    assert_eq!(
        stdout(&keywarden(dir.path(), &["exempt", "list"])),
        "no exemptions\n"
    );
}

#[tokio::test]
async fn a_name_history_does_not_know_is_looked_up_on_the_account() {
    use keywarden::sandbox::{Sandbox, SandboxOptions, SeedKey};
    let (dir, store) = seeded().await;
    let seed = |name: &str| SeedKey {
        name: name.into(),
        ..SeedKey::default()
    };
    let options = SandboxOptions {
        seed_keys: vec![seed("support-01"), seed("support-02")],
        ..SandboxOptions::default()
    };
    let sb = Sandbox::start("127.0.0.1:0", options).await.unwrap();
    let hash = sb.account().keys()[1].hash.clone();
    let exempt = |name: &'static str| {
        tokio::process::Command::from(common::keywarden())
            .arg("--config")
            .arg(dir.path().join("empty.toml"))
            .arg("--database")
            .arg(dir.path().join("kw.db"))
            .args([
                "exempt", "add", name, "--until", "7d", "--reason", "on call",
            ])
            .env("KEYWARDEN_BASE_URL", sb.base_url())
            .env("OPENROUTER_MANAGEMENT_KEY", sb.management_key())
            .output()
    };
    let added = stdout(&exempt("support-02").await.unwrap());
    assert!(added.contains(&hash), "{added}");
    let exemptions = store.exemptions().await.unwrap();
    assert_eq!(exemptions.len(), 1);
    assert_eq!(
        exemptions[0].key_hash, hash,
        "the account's key of that name"
    );
    let err = usage_error(&exempt("nobody").await.unwrap());
    assert!(
        err.contains("no key named `nobody` in the history or on the account"),
        "{err}"
    );
}
