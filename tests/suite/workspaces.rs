//! Every workspace (SPEC §12, keywarden's side): `[openrouter] workspaces`
//! lists every workspace by default, a list of ids or slugs restricts it,
//! and an unknown one is the run's clear failure.

use crate::common::{Harness, nov, seed, settings};
use keywarden::config::{Config, Workspaces};
use keywarden::openrouter::{ApiError, Client};
use keywarden::sandbox::SeedKey;
use keywarden::sandbox::ids::DEFAULT_WORKSPACE;
use keywarden::sandbox::workspace::{NewWorkspace, RESEARCH_WORKSPACE, SUPPORT_WORKSPACE};

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

/// A harness over [`spread_keys`] with `workspaces` configured.
async fn harness(workspaces: Workspaces, rules: &str) -> Harness {
    Harness::new(nov(2), spread_keys(), rules, |c| {
        c.openrouter.workspaces = workspaces;
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
    let mut expected = vec![DEFAULT_WORKSPACE, RESEARCH_WORKSPACE, SUPPORT_WORKSPACE];
    expected.sort();
    assert_eq!(listed_workspaces(&h), expected);
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
    let rules = r#"
[[rule]]
name = "lab-off"
keys = { names = ["lab-*"] }
[rule.set]
disabled = true
"#;
    let only = Workspaces::Only(vec!["research".into(), "reserch".into()]);
    let h = harness(only.clone(), rules).await;
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
