//! Every workspace (SPEC §12, keywarden's side): `[openrouter] workspaces`
//! lists every workspace by default, a list of ids or slugs restricts it,
//! and an unknown one is the run's clear failure.

use crate::common::{Harness, nov, seed, settings};
use keywarden::config::{Config, Workspaces};
use keywarden::engine::ChangeKind;
use keywarden::openrouter::{ApiError, Client};
use keywarden::sandbox::faults::{Faults, OneOrMany};
use keywarden::sandbox::ids::DEFAULT_WORKSPACE;
use keywarden::sandbox::workspace::{NewWorkspace, RESEARCH_WORKSPACE, SUPPORT_WORKSPACE};
use keywarden::sandbox::{AccountError, SeedKey};

/// A key named `name` in the workspace `workspace_id`.
fn in_workspace(name: &str, workspace_id: &str) -> SeedKey {
    SeedKey {
        workspace_id: Some(workspace_id.into()),
        ..seed(name)
    }
}

/// 3 keys in `default`, 150 in `research` (two pages), 2 in `support`.
fn spread_keys() -> Vec<SeedKey> {
    let mut keys: Vec<SeedKey> = (1..=3)
        .map(|i| in_workspace(&format!("ops-{i:02}"), DEFAULT_WORKSPACE))
        .collect();
    keys.extend((1..=150).map(|i| in_workspace(&format!("lab-{i:03}"), RESEARCH_WORKSPACE)));
    keys.extend((1..=2).map(|i| in_workspace(&format!("desk-{i:02}"), SUPPORT_WORKSPACE)));
    keys
}

/// A rule that disables every key of the `research` workspace.
const RESEARCH_OFF: &str = r#"
[[rule]]
name = "research-off"
keys = { workspaces = ["research"] }
[rule.set]
disabled = true
"#;

/// A harness over [`spread_keys`] with `workspaces` configured.
async fn harness(workspaces: Workspaces, rules: &str) -> Harness {
    Harness::new(nov(2), spread_keys(), rules, |c| {
        c.openrouter.workspaces = workspaces;
        c.daemon.max_changes_per_run = 1000;
    })
    .await
}

/// A client of the harness's sandbox with `workspaces` configured.
fn client(h: &Harness, workspaces: Workspaces) -> Client {
    let mut config: Config = (*h.config).clone();
    config.openrouter.workspaces = workspaces;
    Client::new(settings(&config, h.sandbox.management_key())).unwrap()
}

/// The `workspace_id`s of the `GET /keys` requests the sandbox received.
fn listed_workspaces(h: &Harness) -> Vec<String> {
    let mut ids: Vec<String> = h
        .sandbox
        .account()
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path == "/api/v1/keys")
        .filter_map(|r| {
            r.query?
                .split('&')
                .find_map(|p| p.strip_prefix("workspace_id=").map(str::to_owned))
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

#[tokio::test]
async fn by_default_every_workspace_and_every_key_in_it_is_listed() {
    let h = harness(Workspaces::default(), "").await;
    let listing = client(&h, Workspaces::default()).list().await.unwrap();
    assert_eq!(listing.keys.len(), 155, "every key of the three workspaces");
    let slugs: Vec<&str> = listing.workspaces.iter().map(|w| w.slug.as_str()).collect();
    assert_eq!(slugs, ["default", "research", "support"]);
    assert!(listing.fallback.is_none());
    let lab = listing.keys.iter().find(|k| k.name == "lab-150").unwrap();
    assert_eq!(lab.workspace_id.as_deref(), Some(RESEARCH_WORKSPACE));
    assert_eq!(listing.slug_of(RESEARCH_WORKSPACE), Some("research"));
    let requests = h.sandbox.account().requests();
    let workspace_pages: Vec<_> = requests
        .iter()
        .filter(|r| r.path == "/api/v1/workspaces")
        .collect();
    assert_eq!(workspace_pages.len(), 1, "three workspaces fit one page");
    assert_eq!(
        workspace_pages[0].query.as_deref(),
        Some("offset=0&limit=100")
    );
    // The default workspace's first page is asked for beside
    // `GET /workspaces`, without `workspace_id` (issue 18), and its listing
    // goes on so; the other workspaces are listed by id.
    let mut expected = vec![RESEARCH_WORKSPACE, SUPPORT_WORKSPACE];
    expected.sort();
    assert_eq!(listed_workspaces(&h), expected);
    let unnamed: Vec<_> = requests
        .iter()
        .filter(|r| r.path == "/api/v1/keys")
        .filter_map(|r| r.query.as_deref())
        .filter(|q| !q.contains("workspace_id"))
        .collect();
    assert_eq!(
        unnamed,
        [
            "include_disabled=true&offset=0",
            "include_disabled=true&offset=100"
        ],
        "its three keys, then the empty page"
    );
    assert!(
        listing
            .keys
            .iter()
            .any(|k| k.workspace_id.as_deref() == Some(DEFAULT_WORKSPACE)),
        "the default workspace's keys know it"
    );
}

#[tokio::test]
async fn a_list_of_slugs_and_ids_restricts_the_listing_to_those_workspaces() {
    let h = harness(Workspaces::default(), "").await;
    let only = Workspaces::Only(vec!["research".into(), SUPPORT_WORKSPACE.into()]);
    let keys = client(&h, only).list_keys().await.unwrap();
    assert_eq!(keys.len(), 152);
    assert!(keys.iter().all(|k| !k.name.starts_with("ops-")));
    let mut expected = vec![RESEARCH_WORKSPACE, SUPPORT_WORKSPACE];
    expected.sort();
    assert_eq!(listed_workspaces(&h), expected, "slugs are sent as ids");
}

#[tokio::test]
async fn more_than_a_hundred_workspaces_are_read_page_by_page() {
    let h = harness(Workspaces::default(), "").await;
    for i in 0..130 {
        h.sandbox
            .account()
            .create_workspace(NewWorkspace {
                name: format!("Team {i}"),
                slug: format!("team-{i}"),
                ..NewWorkspace::default()
            })
            .unwrap();
    }
    let workspaces = client(&h, Workspaces::default())
        .list_workspaces()
        .await
        .unwrap();
    assert_eq!(workspaces.len(), 133);
    assert_eq!(workspaces[132].slug, "team-129");
    let offsets: Vec<String> = h
        .sandbox
        .account()
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/v1/workspaces")
        .filter_map(|r| r.query)
        .collect();
    assert_eq!(offsets, ["offset=0&limit=100", "offset=100&limit=100"]);
}

#[tokio::test]
async fn an_unknown_workspace_fails_the_run_with_a_message_naming_it_and_changes_nothing() {
    let only = Workspaces::Only(vec!["research".into(), "reserch".into()]);
    let h = harness(only.clone(), RESEARCH_OFF).await;
    let err = client(&h, only).list_keys().await.unwrap_err();
    assert!(matches!(err, ApiError::UnknownWorkspace { .. }), "{err:?}");
    let report = h.apply().await;
    let error = report.error.expect("the run failed");
    assert!(
        error.contains("[openrouter].workspaces names \"reserch\"")
            && error.contains("default, research, support"),
        "{error}"
    );
    assert!(h.take_patches().is_empty(), "nothing was changed");
    let pool = crate::common::raw(&h.config.database_path()).await;
    let (status, recorded): (String, String) =
        sqlx::query_as("SELECT status, error FROM runs WHERE id = ?")
            .bind(report.run_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((status.as_str(), recorded), ("error", error));
}

#[test]
fn workspaces_is_all_or_a_list_and_anything_else_is_an_error_naming_the_line() {
    let path = std::path::Path::new("keywarden.toml");
    let parse = |value: &str| Config::parse(&format!("[openrouter]\nworkspaces = {value}\n"), path);
    assert_eq!(
        parse("\"all\"").unwrap().openrouter.workspaces,
        Workspaces::All
    );
    assert_eq!(
        parse("[\"research\", \"ws-2\"]")
            .unwrap()
            .openrouter
            .workspaces,
        Workspaces::Only(vec!["research".into(), "ws-2".into()])
    );
    let err = parse("\"research\"").unwrap_err().to_string();
    assert!(
        err.contains("keywarden.toml:2:") && err.contains("write [\"research\"]"),
        "{err}"
    );
    let err = parse("[\"\"]").unwrap_err().to_string();
    assert!(err.contains("must not be empty"), "{err}");
}

/// Faults that refuse `GET /workspaces` with `status`, as for an account
/// or key without workspaces; every other path answers normally.
fn refuse_workspaces(sandbox: &keywarden::sandbox::Sandbox, status: u16) {
    sandbox
        .account()
        .set_faults(Faults {
            error_rate: Some(1.0),
            status: Some(OneOrMany::One(status)),
            path: Some("/workspaces".into()),
            ..Faults::default()
        })
        .unwrap();
}

#[tokio::test]
async fn a_refused_workspace_listing_falls_back_to_the_default_workspace() {
    let h = harness(Workspaces::default(), "").await;
    for status in [403, 404] {
        refuse_workspaces(&h.sandbox, status);
        let listing = client(&h, Workspaces::default()).list().await.unwrap();
        let names: Vec<&str> = listing.keys.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["ops-01", "ops-02", "ops-03"], "HTTP {status}");
        assert!(listing.workspaces.is_empty());
        let fallback = listing.fallback.expect("the fallback is reported");
        assert_eq!(fallback.status, status);
        assert!(
            fallback.note.contains(&format!("HTTP {status}"))
                && fallback.note.contains("the default workspace's keys only"),
            "{}",
            fallback.note
        );
    }
    let only = Workspaces::Only(vec![RESEARCH_WORKSPACE.into()]);
    let listing = client(&h, only).list().await.unwrap();
    assert_eq!(
        listing.keys.len(),
        150,
        "configured ids are listed as given"
    );
    assert!(listing.fallback.unwrap().note.contains(RESEARCH_WORKSPACE));
}

#[tokio::test]
async fn a_run_without_workspaces_succeeds_and_records_nothing_alarming() {
    let rules = r#"
[[rule]]
name = "ops-off"
keys = { names = ["ops-01"] }
[rule.set]
disabled = true
"#;
    let h = harness(Workspaces::default(), rules).await;
    refuse_workspaces(&h.sandbox, 403);
    let report = h.apply().await;
    assert_eq!(report.error, None);
    assert_eq!(report.keys_seen, 3, "the default workspace's keys");
    assert!(h.key("ops-01").disabled, "rules still apply there");
    let pool = crate::common::raw(&h.config.database_path()).await;
    let (status, events): (String, i64) = sqlx::query_as(
        "SELECT status, (SELECT count(*) FROM events WHERE run_id = runs.id) FROM runs WHERE id = ?",
    )
    .bind(report.run_id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((status.as_str(), events), ("ok", 0));
}

#[tokio::test]
async fn keys_list_says_when_only_the_default_workspace_was_listed() {
    let h = harness(Workspaces::default(), "").await;
    let listed = keys_list(&h, "table").await;
    assert!(!listed.contains("note:"), "{listed}");
    refuse_workspaces(&h.sandbox, 403);
    let listed = keys_list(&h, "table").await;
    let note = listed.lines().last().unwrap();
    assert!(
        note.starts_with("note: the API refused to list workspaces (HTTP 403")
            && note.ends_with("so keywarden listed the default workspace's keys only"),
        "{listed}"
    );
    let json: Vec<serde_json::Value> = serde_json::from_str(&keys_list(&h, "json").await).unwrap();
    assert_eq!(json.len(), 3);
    assert!(json.iter().all(|k| {
        k["keywarden"]["workspace_fallback"]
            .as_str()
            .is_some_and(|n| n.contains("HTTP 403"))
    }));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_service_warns_of_the_fallback_once_not_every_run() {
    let sandbox = crate::daemon::sandbox(None).await;
    refuse_workspaces(&sandbox, 403);
    let setup = crate::daemon::Setup::new(&crate::daemon::budget_rule("team-a-*", 10.0), "");
    let service = crate::daemon::Daemon::start(&setup, &sandbox, "fallback");
    let listings = || {
        sandbox
            .account()
            .requests()
            .iter()
            .filter(|r| r.path == "/api/v1/workspaces")
            .count()
    };
    assert!(
        crate::daemon::eventually(crate::daemon::PATIENCE, || listings() >= 3).await,
        "three runs; stderr:\n{}",
        service.stderr()
    );
    let stderr = service.stderr();
    let warnings = stderr
        .lines()
        .filter(|l| l.contains("refused to list workspaces"))
        .count();
    assert_eq!(warnings, 1, "{stderr}");
}

/// `keywarden keys list --format FORMAT` against the harness's sandbox and
/// database: its standard output (it must succeed).
async fn keys_list(h: &Harness, format: &str) -> String {
    let config = h.dir.path().join("empty.toml");
    std::fs::write(&config, "").unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_keywarden"))
        .args(["--database"])
        .arg(h.config.database_path())
        .args(["keys", "list", "--format", format])
        .env_clear()
        .env("KEYWARDEN_BASE_URL", h.sandbox.base_url())
        .env("OPENROUTER_MANAGEMENT_KEY", h.sandbox.management_key())
        .env("KEYWARDEN_CONFIG", config)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test]
async fn a_rule_selects_keys_by_workspace_slug_name_or_id_with_globs() {
    let rules = format!(
        r#"
[[rule]]
name = "research-capped"
keys = {{ workspaces = ["research"] }}
[rule.set]
limit = 5.0

[[rule]]
name = "support-off"
keys = {{ workspaces = ["Supp*"] }}
[rule.set]
disabled = true

[[rule]]
name = "default-weekly"
keys = {{ workspaces = ["{DEFAULT_WORKSPACE}"] }}
[rule.set]
limit_reset = "weekly"
"#
    );
    let h = harness(Workspaces::default(), &rules).await;
    let report = h.apply().await;
    assert_eq!(report.error, None);
    let patched: Vec<(String, serde_json::Value)> = h
        .take_patches()
        .into_iter()
        .map(|p| {
            let hash = p.path.rsplit('/').next().unwrap().to_owned();
            let name = h.sandbox.account().key(&hash).unwrap().name;
            (name, p.body)
        })
        .collect();
    assert_eq!(patched.len(), 155, "every key, once");
    for (name, body) in &patched {
        let want = match name.split('-').next().unwrap() {
            "lab" => serde_json::json!({"limit": 5.0}),
            "desk" => serde_json::json!({"disabled": true}),
            _ => serde_json::json!({"limit_reset": "weekly"}),
        };
        assert_eq!(body, &want, "{name}");
    }
    let history = h.history().await;
    let desk = history.iter().find(|c| c.key_name == "desk-01").unwrap();
    assert_eq!(desk.rule, "support-off");
}

#[tokio::test]
async fn sandbox_keys_are_spread_over_three_workspaces_and_keywarden_sees_them_all() {
    let sandbox = crate::common::sandbox_with_keys(12).await;
    let mut config = Config::default();
    config.openrouter.base_url = sandbox.base_url();
    config.openrouter.requests_per_second = 1000;
    let listing = Client::new(settings(&config, sandbox.management_key()))
        .unwrap()
        .list()
        .await
        .unwrap();
    assert_eq!(listing.keys.len(), 12);
    for slug in ["default", "research", "support"] {
        let id = &listing
            .workspaces
            .iter()
            .find(|w| w.slug == slug)
            .unwrap()
            .id;
        let held = listing
            .keys
            .iter()
            .filter(|k| k.workspace_id.as_deref() == Some(id.as_str()))
            .count();
        assert_eq!(held, 4, "{slug}");
    }
    let default_only = sandbox.account().list(0, true, None);
    assert_eq!(default_only.len(), 4, "GET /keys alone sees a third");
}

#[tokio::test]
async fn the_sandbox_deletes_an_empty_workspace_with_its_guardrails_only() {
    let h = harness(Workspaces::default(), "").await;
    let account = h.sandbox.account();
    assert!(matches!(
        account.delete_workspace("default"),
        Err(AccountError::DefaultWorkspace)
    ));
    let refused = account.delete_workspace("support").unwrap_err();
    assert_eq!(refused.status(), 400);
    assert!(
        refused.to_string().contains("remove the keys first"),
        "{refused}"
    );
    for key in account.keys() {
        if key.workspace_id.as_deref() == Some(SUPPORT_WORKSPACE) {
            account.delete_key(&key.hash).unwrap();
        }
    }
    account.delete_workspace("support").unwrap();
    assert_eq!(
        account
            .delete_workspace(SUPPORT_WORKSPACE)
            .unwrap_err()
            .status(),
        404
    );
    let slugs: Vec<String> = client(&h, Workspaces::default())
        .list_workspaces()
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.slug)
        .collect();
    assert_eq!(slugs, ["default", "research"]);
}

/// Deletes the workspace `slug` from the sandbox the only way OpenRouter
/// allows: its keys first, then the workspace.
fn delete_workspace(h: &Harness, slug: &str, id: &str) {
    let account = h.sandbox.account();
    for key in account.keys() {
        if key.workspace_id.as_deref() == Some(id) {
            account.delete_key(&key.hash).unwrap();
        }
    }
    account.delete_workspace(slug).unwrap();
}

#[tokio::test]
async fn a_workspace_that_disappears_drops_its_keys_claims_and_records_it() {
    let h = harness(Workspaces::default(), RESEARCH_OFF).await;
    let first = h.apply().await;
    assert_eq!(first.error, None);
    assert_eq!(h.take_patches().len(), 150, "every research key disabled");
    assert_eq!(h.store.claims().await.unwrap().len(), 150);

    delete_workspace(&h, "research", RESEARCH_WORKSPACE);
    h.sandbox.account().clear_requests();
    let second = h.apply().await;
    assert_eq!(second.error, None, "a vanished workspace is no failure");
    assert_eq!(second.keys_seen, 5);
    assert!(
        h.store.claims().await.unwrap().is_empty(),
        "the claims are dropped"
    );
    let writes: Vec<String> = h
        .sandbox
        .account()
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        writes.is_empty(),
        "nothing re-created or patched: {writes:?}"
    );
    let history = h.history().await;
    let dropped: Vec<_> = history
        .iter()
        .filter(|c| c.run_id == Some(second.run_id))
        .collect();
    assert_eq!(dropped.len(), 150);
    let lab = dropped.iter().find(|c| c.key_name == "lab-001").unwrap();
    assert_eq!(lab.kind, ChangeKind::Deleted);
    assert_eq!(lab.rule, "research-off");
    assert!(lab.reason.contains("no longer exists"), "{}", lab.reason);
    let third = h.apply().await;
    assert_eq!(third.plan.changes.len(), 0, "recorded once");
}

#[tokio::test]
async fn a_configured_workspace_that_disappears_fails_the_run_and_keeps_its_claims() {
    let only = Workspaces::Only(vec!["research".into(), "support".into()]);
    let h = harness(only, RESEARCH_OFF).await;
    h.apply().await;
    delete_workspace(&h, "research", RESEARCH_WORKSPACE);
    let report = h.apply().await;
    let error = report.error.expect("the run fails");
    assert!(error.contains("names \"research\""), "{error}");
    assert_eq!(
        h.store.claims().await.unwrap().len(),
        150,
        "nothing is concluded from a run that could not list"
    );
}

#[tokio::test]
async fn without_workspaces_a_claimed_key_elsewhere_is_read_by_hash_and_still_released() {
    let rules = r#"
[[rule]]
name = "lab-001-off"
keys = { names = ["lab-001"] }
[rule.set]
disabled = true
"#;
    let h = harness(Workspaces::default(), rules).await;
    h.apply().await;
    assert!(h.key("lab-001").disabled);
    refuse_workspaces(&h.sandbox, 403);
    h.sandbox.account().clear_requests();
    let held = h.apply().await;
    assert_eq!(held.error, None);
    assert_eq!(
        held.keys_seen, 4,
        "the default workspace and the claimed key"
    );
    assert!(
        held.plan.changes.is_empty(),
        "no deleted row: {:?}",
        held.plan
    );
    let hash = h.hash("lab-001");
    assert!(
        h.sandbox
            .account()
            .requests()
            .iter()
            .any(|r| r.method == "GET" && r.path == format!("/api/v1/keys/{hash}")),
        "read by its hash"
    );
    h.load_rules("").await;
    let released = h.apply().await;
    assert_eq!(released.plan.changes.len(), 1);
    assert_eq!(released.plan.changes[0].kind, ChangeKind::Release);
    assert!(!h.key("lab-001").disabled, "given back");
    assert!(h.store.claims().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn check_config_warns_of_a_workspace_the_reachable_account_does_not_have() {
    let h = harness(Workspaces::All, "").await;
    let dir = h.dir.path();
    std::fs::write(
        dir.join("rules.toml"),
        "[[rule]]\nname = \"lab\"\nkeys = { workspaces = [\"resaerch\", \"Support\"] }\n\
         [rule.set]\ndisabled = true\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("keywarden.toml"),
        format!(
            "[openrouter]\nbase_url = \"{}\"\nworkspaces = [\"research\", \"nope\"]\n\
             [daemon]\nrules_files = [\"rules.toml\"]\n",
            h.sandbox.base_url()
        ),
    )
    .unwrap();
    let out = crate::common::check_config(dir, Some(h.sandbox.management_key())).await;
    assert_eq!(out.status.code(), Some(0), "warnings only");
    let stderr = crate::common::text(&out.stderr);
    assert!(
        stderr.contains(
            "keywarden.toml:3:14: warning: [openrouter].workspaces: \"nope\" is neither the id \
             nor the slug of a workspace of the account (its workspaces: default, research, \
             support): a run will fail"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "rules.toml:2:8: warning: rule \"lab\": keys.workspaces: \"resaerch\" matches no \
             workspace of the account (by id, slug or name)"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("2 warnings in 1 file"), "{stderr}");
    // Without a credential the account is not asked: no warning.
    let offline = crate::common::check_config(dir, None).await;
    assert_eq!(offline.status.code(), Some(0));
    assert!(
        !crate::common::text(&offline.stderr).contains("warning"),
        "{}",
        crate::common::text(&offline.stderr)
    );
}
