//! The sandbox's workspaces, guardrails and key assignments (SPEC §12),
//! driven over HTTP on loopback: paging, an assignment that replaces, bulk
//! removal, 404s, a model a guardrail refuses, and the faults and journal
//! that apply to these routes as to the others.

use crate::sandbox::Env;
use keywarden::sandbox::guardrail::{CHEAP_MODELS, CHEAP_MODELS_ONLY, NO_TRAINING};
use keywarden::sandbox::workspace::RESEARCH_WORKSPACE;
use reqwest::Method;
use serde_json::{Value, json};

const START: &str = "2026-11-27T10:00:00Z";
const UNKNOWN_GUARDRAIL: &str = "00000000-0000-4000-8000-000000000000";

/// The hashes of the sandbox's keys, in creation order.
fn hashes(env: &Env) -> Vec<String> {
    env.sandbox
        .account()
        .keys()
        .into_iter()
        .map(|k| k.hash)
        .collect()
}

/// Bulk-assigns (`remove` false) or bulk-removes `keys` on `guardrail`.
async fn bulk(env: &Env, guardrail: &str, remove: bool, keys: &[String]) -> (u16, Value) {
    let path = if remove {
        format!("/guardrails/{guardrail}/assignments/keys/remove")
    } else {
        format!("/guardrails/{guardrail}/assignments/keys")
    };
    let (status, body) = env
        .api(Method::POST, &path, Some(json!({ "key_hashes": keys })))
        .await;
    (status.as_u16(), body)
}

/// Every page of a listing at `path`, `limit` at a time: the pages' sizes
/// and the records of all of them.
async fn all_pages(env: &Env, path: &str, limit: usize) -> (Vec<usize>, Vec<Value>) {
    let (mut sizes, mut records) = (Vec::new(), Vec::new());
    loop {
        let query = format!("{path}?offset={}&limit={limit}", records.len());
        let (status, body) = env.api(Method::GET, &query, None).await;
        assert_eq!(status, 200, "{query}: {body}");
        let page = body["data"].as_array().unwrap().clone();
        sizes.push(page.len());
        records.extend(page);
        if records.len() >= body["total_count"].as_u64().unwrap() as usize {
            return (sizes, records);
        }
    }
}

#[tokio::test]
async fn the_account_starts_with_three_workspaces_and_two_guardrails() {
    let env = Env::start(0, vec![], START).await;
    let (_, workspaces) = env.api(Method::GET, "/workspaces", None).await;
    let slugs: Vec<&str> = workspaces["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["default", "research", "support"]);
    assert_eq!(workspaces["total_count"], 3);
    // By id or by slug; 404 for neither.
    let (_, by_slug) = env.api(Method::GET, "/workspaces/research", None).await;
    let (_, by_id) = env
        .api(
            Method::GET,
            &format!("/workspaces/{RESEARCH_WORKSPACE}"),
            None,
        )
        .await;
    assert_eq!(by_slug, by_id);
    let (status, body) = env.api(Method::GET, "/workspaces/nowhere", None).await;
    assert_eq!(
        (status.as_u16(), &body["error"]["code"]),
        (404, &json!(404))
    );

    let (_, guardrails) = env.api(Method::GET, "/guardrails", None).await;
    let names: Vec<&str> = guardrails["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["cheap-models-only", "no-training"]);
    assert_eq!(guardrails["data"][0]["allowed_models"], json!(CHEAP_MODELS));
    assert_eq!(
        guardrails["data"][1]["enable_paid_model_training"],
        json!(false)
    );
    // Another workspace's guardrails are listed only when asked for.
    let (_, research) = env
        .api(
            Method::GET,
            &format!("/guardrails?workspace_id={RESEARCH_WORKSPACE}"),
            None,
        )
        .await;
    assert_eq!(research["total_count"], 0);
}

#[tokio::test]
async fn workspaces_are_created_and_listed_page_by_page() {
    let env = Env::start(0, vec![], START).await;
    for n in 0..120 {
        let (status, body) = env
            .api(
                Method::POST,
                "/workspaces",
                Some(json!({"name": format!("Team {n}"), "slug": format!("team-{n}")})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let (sizes, workspaces) = all_pages(&env, "/workspaces", 100).await;
    assert_eq!(sizes, [100, 23]);
    assert_eq!(workspaces[122]["slug"], "team-119");
    // Without a limit a page holds 50; a limit above 100 is refused.
    let (_, first) = env.api(Method::GET, "/workspaces", None).await;
    assert_eq!(first["data"].as_array().unwrap().len(), 50);
    let (status, _) = env.api(Method::GET, "/workspaces?limit=500", None).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn two_hundred_and_fifty_assignments_come_in_three_pages() {
    let env = Env::start(250, vec![], START).await;
    let keys = hashes(&env);
    for batch in keys.chunks(100) {
        let (status, body) = bulk(&env, CHEAP_MODELS_ONLY, false, batch).await;
        assert_eq!(
            (status, body["assigned_count"].as_u64()),
            (200, Some(batch.len() as u64))
        );
    }
    let (sizes, assignments) = all_pages(
        &env,
        &format!("/guardrails/{CHEAP_MODELS_ONLY}/assignments/keys"),
        100,
    )
    .await;
    assert_eq!(sizes, [100, 100, 50]);
    let listed: Vec<&str> = assignments
        .iter()
        .map(|a| a["key_hash"].as_str().unwrap())
        .collect();
    assert_eq!(listed, keys);
    let (sizes, _) = all_pages(&env, "/guardrails/assignments/keys", 100).await;
    assert_eq!(sizes, [100, 100, 50]);
}

#[tokio::test]
async fn assigning_replaces_a_keys_guardrail_and_removing_leaves_it_none() {
    let env = Env::start(3, vec![], START).await;
    let keys = hashes(&env);
    assert_eq!(
        bulk(&env, CHEAP_MODELS_ONLY, false, &keys).await.1["assigned_count"],
        3
    );
    // The key holds one guardrail: the new one replaces the old.
    let (status, body) = bulk(&env, NO_TRAINING, false, &keys[..1]).await;
    assert_eq!((status, &body), (200, &json!({"assigned_count": 1})));
    let (_, all) = env
        .api(Method::GET, "/guardrails/assignments/keys", None)
        .await;
    let held: Vec<(&str, &str)> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["key_hash"].as_str().unwrap(),
                a["guardrail_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        held,
        [
            (keys[0].as_str(), NO_TRAINING),
            (keys[1].as_str(), CHEAP_MODELS_ONLY),
            (keys[2].as_str(), CHEAP_MODELS_ONLY),
        ]
    );
    // Removing counts only the keys that held that guardrail; unknown
    // hashes are skipped, not counted.
    let (status, body) = bulk(
        &env,
        CHEAP_MODELS_ONLY,
        true,
        &[keys[0].clone(), keys[1].clone(), "unknown".into()],
    )
    .await;
    assert_eq!((status, &body), (200, &json!({"unassigned_count": 1})));
    let (status, body) = bulk(&env, CHEAP_MODELS_ONLY, false, &["unknown".into()]).await;
    assert_eq!((status, &body), (200, &json!({"assigned_count": 0})));
    let (_, cheap) = env
        .api(
            Method::GET,
            &format!("/guardrails/{CHEAP_MODELS_ONLY}/assignments/keys"),
            None,
        )
        .await;
    assert_eq!(cheap["total_count"], 1);
    assert_eq!(cheap["data"][0]["key_hash"], json!(keys[2]));
}

#[tokio::test]
async fn an_unknown_guardrail_is_404_everywhere_and_a_deleted_one_frees_its_keys() {
    let env = Env::start(1, vec![], START).await;
    let keys = hashes(&env);
    let unknown = format!("/guardrails/{UNKNOWN_GUARDRAIL}");
    for (method, path, body) in [
        (Method::GET, unknown.clone(), None),
        (
            Method::PATCH,
            unknown.clone(),
            Some(json!({"limit_usd": 1})),
        ),
        (Method::DELETE, unknown.clone(), None),
        (Method::GET, format!("{unknown}/assignments/keys"), None),
        (
            Method::POST,
            format!("{unknown}/assignments/keys"),
            Some(json!({"key_hashes": keys})),
        ),
        (
            Method::POST,
            format!("{unknown}/assignments/keys/remove"),
            Some(json!({"key_hashes": keys})),
        ),
    ] {
        let (status, answer) = env.api(method.clone(), &path, body).await;
        assert_eq!(status, 404, "{method} {path}");
        assert_eq!(answer["error"]["message"], "Guardrail not found");
    }
    bulk(&env, NO_TRAINING, false, &keys).await;
    let (status, _) = env
        .api(Method::DELETE, &format!("/guardrails/{NO_TRAINING}"), None)
        .await;
    assert_eq!(status, 200);
    let (_, all) = env
        .api(Method::GET, "/guardrails/assignments/keys", None)
        .await;
    assert_eq!(all, json!({"data": [], "total_count": 0}));
}

#[tokio::test]
async fn a_guardrail_is_created_and_updated_field_by_field() {
    let env = Env::start(0, vec![], START).await;
    let (status, created) = env
        .api(
            Method::POST,
            "/guardrails",
            Some(
                json!({"name": "research-cap", "limit_usd": 20, "reset_interval": "weekly",
                        "workspace_id": RESEARCH_WORKSPACE}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["data"]["id"].as_str().unwrap();
    let (_, updated) = env
        .api(
            Method::PATCH,
            &format!("/guardrails/{id}"),
            Some(json!({"limit_usd": null, "allowed_providers": ["openai"]})),
        )
        .await;
    let data = &updated["data"];
    assert_eq!(
        (
            &data["limit_usd"],
            &data["reset_interval"],
            &data["allowed_providers"]
        ),
        (&Value::Null, &json!("weekly"), &json!(["openai"]))
    );
    assert_eq!(data["workspace_id"], RESEARCH_WORKSPACE);
    assert!(data["updated_at"].is_string());
    // A guardrail in an unknown workspace is refused.
    let (status, _) = env
        .api(
            Method::POST,
            "/guardrails",
            Some(json!({"name": "lost", "workspace_id": UNKNOWN_GUARDRAIL})),
        )
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn spend_on_a_model_the_keys_guardrail_does_not_allow_is_refused() {
    let env = Env::start(2, vec![], START).await;
    let keys = hashes(&env);
    bulk(&env, CHEAP_MODELS_ONLY, false, &keys[..1]).await;
    let spend = |hash: &str, model: Option<&str>| json!({"hash": hash, "usd": 1.0, "model": model});
    let (status, body) = env
        .control(
            Method::POST,
            "/spend",
            Some(spend(&keys[0], Some("anthropic/claude-opus-4"))),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], 403);
    assert_eq!(
        body["error"]["message"],
        "Model anthropic/claude-opus-4 is not allowed by this key's guardrail \
         cheap-models-only: it is not in its allowed models"
    );
    assert_eq!(env.sandbox.account().keys()[0].usage, Some(0.0));
    // An allowed model, no model, and a key without a guardrail all spend.
    for (hash, model) in [
        (&keys[0], Some(CHEAP_MODELS[0])),
        (&keys[0], None),
        (&keys[1], Some("anthropic/claude-opus-4")),
    ] {
        let (status, body) = env
            .control(Method::POST, "/spend", Some(spend(hash, model)))
            .await;
        assert_eq!(status, 200, "{model:?}: {body}");
    }
    assert_eq!(env.sandbox.account().keys()[0].usage, Some(2.0));
}

#[tokio::test]
async fn faults_and_the_journal_apply_to_the_guardrail_routes() {
    let env = Env::start(1, vec![], START).await;
    let keys = hashes(&env);
    env.control(
        Method::POST,
        "/faults",
        Some(json!({"error_rate": 1.0, "status": 503})),
    )
    .await;
    let (status, body) = bulk(&env, CHEAP_MODELS_ONLY, false, &keys).await;
    assert_eq!((status, &body["error"]["code"]), (503, &json!(503)));
    let (status, _) = env.api(Method::GET, "/workspaces", None).await;
    assert_eq!(status, 503);
    env.control(Method::POST, "/faults", Some(json!({}))).await;
    let (_, all) = env
        .api(Method::GET, "/guardrails/assignments/keys", None)
        .await;
    assert_eq!(
        all["total_count"], 0,
        "a faulted assignment changes nothing"
    );

    // A dropped assignment is applied, but its answer never arrives.
    env.control(Method::POST, "/faults", Some(json!({"drop_rate": 1.0})))
        .await;
    let url = format!(
        "{}/guardrails/{CHEAP_MODELS_ONLY}/assignments/keys",
        env.sandbox.base_url()
    );
    let outcome = async {
        env.http
            .post(&url)
            .bearer_auth(env.sandbox.management_key())
            .json(&json!({ "key_hashes": keys }))
            .send()
            .await?
            .bytes()
            .await
    }
    .await;
    assert!(outcome.is_err(), "got {outcome:?}");
    env.control(Method::POST, "/faults", Some(json!({}))).await;

    let journal = env.sandbox.account().requests();
    let seen: Vec<(&str, &str, u16, bool)> = journal
        .iter()
        .map(|e| (e.method.as_str(), e.path.as_str(), e.status, e.applied))
        .collect();
    let assign = format!("/api/v1/guardrails/{CHEAP_MODELS_ONLY}/assignments/keys");
    assert_eq!(
        seen,
        [
            ("POST", assign.as_str(), 503, false),
            ("GET", "/api/v1/workspaces", 503, false),
            ("GET", "/api/v1/guardrails/assignments/keys", 200, false),
            ("POST", assign.as_str(), 200, true),
        ]
    );
    assert_eq!(journal[3].body, json!({ "key_hashes": keys }));
    let (_, all) = env
        .api(Method::GET, "/guardrails/assignments/keys", None)
        .await;
    assert_eq!(all["total_count"], 1);
}

#[tokio::test]
async fn the_new_routes_want_the_management_key() {
    let env = Env::start(0, vec![], START).await;
    let url = format!("{}/guardrails", env.sandbox.base_url());
    let resp = env.http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": {"code": 401, "message": "Missing Authentication header"}})
    );
    let resp = env
        .http
        .get(&url)
        .bearer_auth("sk-or-v1-nope")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}
