//! Every body the sandbox answers matches OpenRouter's published schema
//! (`openapi-keys.yaml` for keys and credits, `openapi-management.yaml` for
//! workspaces and guardrails) and carries the newer fields of `NOTES.md`, so
//! that clients written against OpenRouter accept it.

use chrono::{DateTime, Utc};
use keywarden::domain::LimitReset;
use keywarden::sandbox::guardrail::{CHEAP_MODELS_ONLY, NO_TRAINING};
use keywarden::sandbox::{Sandbox, SandboxOptions, SeedKey};
use reqwest::Method;
use serde_json::{Value, json};

/// OpenRouter's published schema, copied into the repository (see
/// `tests/fixtures/openrouter/README.md`).
const SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/openrouter/openapi-keys.yaml"
);

/// The larger published schema: workspaces, guardrails, assignments.
const MANAGEMENT_SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/openrouter/openapi-management.yaml"
);

fn spec() -> Value {
    spec_at(SPEC)
}

fn spec_at(path: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_yaml::from_str(&text).unwrap()
}

/// Whether `text` is a UUID: 8-4-4-4-12 hex digits.
fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Follows a local `$ref` (`#/components/schemas/X`).
fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let target = root
                .pointer(r.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("dangling $ref {r}"));
            resolve(root, target)
        }
        None => schema,
    }
}

fn has_type(value: &Value, ty: &str) -> bool {
    match ty {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        other => panic!("schema type {other} unknown to the checker"),
    }
}

/// Collects every way `value` breaks `schema`: a missing `required`
/// property, a value of an undeclared type, a `const` not met, a value
/// outside its `enum`, a string that is not the `uuid` its `format` says;
/// recursing into `properties` and array `items`.
fn check(root: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = resolve(root, schema);
    if let Some(ty) = schema.get("type") {
        let types: Vec<&str> = match ty {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            other => panic!("odd type {other}"),
        };
        if !types.iter().any(|t| has_type(value, t)) {
            errors.push(format!("{at}: {value} is not of type {types:?}"));
            return;
        }
    }
    if let Some(c) = schema.get("const") {
        if c != value {
            errors.push(format!("{at}: {value} is not the constant {c}"));
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        if !options.contains(value) {
            errors.push(format!("{at}: {value} is not one of {options:?}"));
        }
    }
    if schema.get("format").and_then(Value::as_str) == Some("uuid")
        && value.as_str().is_some_and(|s| !is_uuid(s))
    {
        errors.push(format!("{at}: {value} is not a uuid"));
    }
    if let Some(obj) = value.as_object() {
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = name.as_str().unwrap();
            if !obj.contains_key(name) {
                errors.push(format!("{at}: required property `{name}` missing"));
            }
        }
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (name, sub) in props {
                if let Some(v) = obj.get(name) {
                    check(root, sub, v, &format!("{at}.{name}"), errors);
                }
            }
        }
    }
    if let (Some(items), Some(list)) = (schema.get("items"), value.as_array()) {
        for (i, v) in list.iter().enumerate() {
            check(root, items, v, &format!("{at}[{i}]"), errors);
        }
    }
}

/// The response schema the spec declares for an operation and status.
fn response_schema<'a>(root: &'a Value, path: &str, method: &str, status: u16) -> &'a Value {
    root["paths"][path][method]["responses"][status.to_string()]["content"]["application/json"]["schema"]
        .as_object()
        .map(|_| &root["paths"][path][method]["responses"][status.to_string()]["content"]["application/json"]["schema"])
        .unwrap_or_else(|| panic!("the spec declares no {status} for {method} {path}"))
}

fn errors_of(root: &Value, path: &str, method: &str, status: u16, body: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(
        root,
        response_schema(root, path, method, status),
        body,
        "$",
        &mut errors,
    );
    errors
}

#[test]
fn the_checker_catches_missing_and_mistyped_fields() {
    let root = spec();
    let bad = json!({"data": [{"hash": 1, "name": "n"}]});
    let errors = errors_of(&root, "/keys", "get", 200, &bad);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("$.data[0].hash: 1 is not of type")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("`limit_remaining` missing")),
        "{errors:?}"
    );
    let bad_error = json!({"error": {"code": "404"}});
    assert_eq!(
        errors_of(&root, "/keys/{hash}", "get", 404, &bad_error).len(),
        2
    );
}

/// One request: spec path, method, request path, body, bearer, expected status.
type Case<'a> = (&'a str, Method, String, Option<Value>, Option<&'a str>, u16);

/// A sandbox with three generated keys (in the default workspace, no
/// guardrail), then `seed_keys`, its clock standing at 2026-11-27T10:00:00Z.
async fn start_sandbox(seed_keys: Vec<SeedKey>) -> Sandbox {
    let mut seeds = keywarden::sandbox::seed::generated(3);
    seeds.extend(seed_keys);
    let opts = SandboxOptions {
        keys: 0,
        seed_keys: seeds,
        management_key: None,
        start: Some(
            DateTime::parse_from_rfc3339("2026-11-27T10:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
        ),
    };
    Sandbox::start("127.0.0.1:0", opts).await.unwrap()
}

/// A `GET` case.
fn get<'a>(spec_path: &'a str, path: &str, bearer: Option<&'a str>, want: u16) -> Case<'a> {
    (spec_path, Method::GET, path.to_owned(), None, bearer, want)
}

/// A case with a JSON body.
fn with_body<'a>(
    spec_path: &'a str,
    method: Method,
    path: &str,
    body: Value,
    bearer: Option<&'a str>,
    want: u16,
) -> Case<'a> {
    (spec_path, method, path.to_owned(), Some(body), bearer, want)
}

/// Sends `case` to the sandbox at `base`, asserts its status and that its
/// body matches what `root` declares for it; returns the body.
async fn answer(root: &Value, http: &reqwest::Client, base: &str, case: Case<'_>) -> Value {
    let (spec_path, method, path, body, bearer, want) = case;
    let mut req = http.request(method.clone(), format!("{base}{path}"));
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status().as_u16(), want, "{method} {path}");
    let body: Value = resp.json().await.unwrap();
    let errors = errors_of(
        root,
        spec_path,
        &method.as_str().to_lowercase(),
        want,
        &body,
    );
    assert!(
        errors.is_empty(),
        "{method} {path} -> {want}: {errors:#?}\n{body}"
    );
    body
}

/// The fields `NOTES.md` adds to every key object.
const NEWER_KEY_FIELDS: [&str; 4] = [
    "workspace_id",
    "external_user",
    "last_used_at",
    "expires_at",
];

#[tokio::test]
async fn every_answer_matches_the_published_schema_and_carries_the_newer_fields() {
    let root = spec();
    let limited = SeedKey {
        name: "limited".into(),
        limit: Some(10.0),
        limit_reset: Some(LimitReset::Monthly),
        ..SeedKey::default()
    };
    let sandbox = start_sandbox(vec![limited]).await;
    let http = reqwest::Client::new();
    let base = sandbox.base_url();
    let mgmt = sandbox.management_key().to_owned();
    let hash = sandbox.account().keys()[0].hash.clone();
    let doomed = sandbox.account().keys()[1].hash.clone();
    sandbox
        .account()
        .spend(&sandbox.account().keys()[3].hash, 2.0, false)
        .unwrap();

    let cases: Vec<Case> = vec![
        ("/keys", Method::GET, "/keys".into(), None, Some(&mgmt), 200),
        (
            "/keys",
            Method::GET,
            "/keys?offset=-3".into(),
            None,
            Some(&mgmt),
            400,
        ),
        ("/keys", Method::GET, "/keys".into(), None, None, 401),
        (
            "/keys",
            Method::POST,
            "/keys".into(),
            Some(json!({"name": "made", "limit": 5})),
            Some(&mgmt),
            201,
        ),
        (
            "/keys",
            Method::POST,
            "/keys".into(),
            Some(json!({"name": ""})),
            Some(&mgmt),
            400,
        ),
        (
            "/keys",
            Method::POST,
            "/keys".into(),
            Some(json!({"name": "x"})),
            Some("sk-or-v1-nope"),
            401,
        ),
        (
            "/keys/{hash}",
            Method::GET,
            format!("/keys/{hash}"),
            None,
            Some(&mgmt),
            200,
        ),
        (
            "/keys/{hash}",
            Method::GET,
            format!("/keys/{hash}"),
            None,
            None,
            401,
        ),
        (
            "/keys/{hash}",
            Method::GET,
            "/keys/unknown".into(),
            None,
            Some(&mgmt),
            404,
        ),
        (
            "/keys/{hash}",
            Method::PATCH,
            format!("/keys/{hash}"),
            Some(json!({"limit": null, "disabled": true})),
            Some(&mgmt),
            200,
        ),
        (
            "/keys/{hash}",
            Method::PATCH,
            format!("/keys/{hash}"),
            Some(json!({"limit_reset": "yearly"})),
            Some(&mgmt),
            400,
        ),
        (
            "/keys/{hash}",
            Method::PATCH,
            format!("/keys/{hash}"),
            Some(json!({"limit": 1})),
            None,
            401,
        ),
        (
            "/keys/{hash}",
            Method::PATCH,
            "/keys/unknown".into(),
            Some(json!({"limit": 1})),
            Some(&mgmt),
            404,
        ),
        (
            "/keys/{hash}",
            Method::DELETE,
            format!("/keys/{doomed}"),
            None,
            Some(&mgmt),
            200,
        ),
        (
            "/keys/{hash}",
            Method::DELETE,
            format!("/keys/{doomed}"),
            None,
            None,
            401,
        ),
        (
            "/keys/{hash}",
            Method::DELETE,
            format!("/keys/{doomed}"),
            None,
            Some(&mgmt),
            404,
        ),
        ("/key", Method::GET, "/key".into(), None, Some(&mgmt), 200),
        ("/key", Method::GET, "/key".into(), None, None, 401),
        (
            "/credits",
            Method::GET,
            "/credits".into(),
            None,
            Some(&mgmt),
            200,
        ),
        ("/credits", Method::GET, "/credits".into(), None, None, 401),
    ];
    let mut secret = None;
    for case in cases {
        let (spec_path, method, path, want) = (case.0, case.1.clone(), case.2.clone(), case.5);
        let body = answer(&root, &http, &base, case).await;

        let keys: Vec<&Value> = match (&body["data"], spec_path) {
            (Value::Array(list), _) => list.iter().collect(),
            (data @ Value::Object(_), "/keys" | "/keys/{hash}") => vec![data],
            _ => vec![],
        };
        for key in keys {
            for field in NEWER_KEY_FIELDS {
                assert!(
                    key.get(field).is_some(),
                    "{method} {path}: key lacks `{field}`"
                );
            }
            assert!(key["workspace_id"].is_string());
        }
        if want == 201 {
            secret = body["key"].as_str().map(str::to_owned);
        }
    }

    // GET /key, for the management key and for a key with a limit.
    let limited_secret = secret.expect("POST /keys returned the secret");
    for bearer in [mgmt.as_str(), limited_secret.as_str()] {
        let body: Value = http
            .get(format!("{base}/key"))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(errors_of(&root, "/key", "get", 200, &body).is_empty());
        let data = &body["data"];
        assert!(data["allowed_data_regions"].is_array());
        assert!(data["budgets"].is_array());
        assert!(data["effective_budget"].is_object() || data["effective_budget"].is_null());
        for field in ["limit", "remaining", "used"] {
            assert!(data["free_model_daily_requests"][field].is_u64(), "{field}");
        }
        assert!(data.get("organization_id").is_some());
        assert!(data.get("workspace_id").is_some());
    }
    let body: Value = http
        .get(format!("{base}/key"))
        .bearer_auth(&limited_secret)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let layer = &body["data"]["effective_budget"];
    assert_eq!(layer["scope"], "key_limit");
    assert_eq!(layer["limit_usd"], json!(5.0));
    for (field, is_ok) in [
        ("budget_id", Value::is_null as fn(&Value) -> bool),
        ("guardrail_id", Value::is_null),
        ("include_byok", Value::is_boolean),
        ("remaining_usd", Value::is_number),
        ("reset_interval", Value::is_null),
        ("resets_at", Value::is_null),
        ("spend_usd", Value::is_number),
    ] {
        assert!(
            is_ok(&layer[field]),
            "budget layer `{field}` = {}",
            layer[field]
        );
    }
    assert_eq!(body["data"]["budgets"], json!([layer]));
    sandbox.shutdown().await;
}

#[tokio::test]
async fn every_workspace_and_guardrail_answer_matches_the_management_schema() {
    let root = spec_at(MANAGEMENT_SPEC);
    let sandbox = start_sandbox(vec![]).await;
    let http = reqwest::Client::new();
    let base = sandbox.base_url();
    let mgmt = sandbox.management_key().to_owned();
    let hash = sandbox.account().keys()[0].hash.clone();
    let (_, key_secret) = sandbox
        .account()
        .create_key(keywarden::sandbox::NewKey {
            name: "not management".into(),
            ..Default::default()
        })
        .unwrap();
    let hashes = json!({ "key_hashes": [hash] });
    let cheap = format!("/guardrails/{CHEAP_MODELS_ONLY}");
    let unknown = "/guardrails/00000000-0000-4000-8000-000000000000";
    let m = Some(mgmt.as_str());
    let cases: Vec<Case> = vec![
        get("/workspaces", "/workspaces", m, 200),
        get("/workspaces", "/workspaces?offset=1&limit=1", m, 200),
        get("/workspaces", "/workspaces", None, 401),
        with_body(
            "/workspaces",
            Method::POST,
            "/workspaces",
            json!({"name": "Growth", "slug": "growth", "description": null}),
            m,
            201,
        ),
        with_body(
            "/workspaces",
            Method::POST,
            "/workspaces",
            json!({"name": "Growth", "slug": "Not A Slug"}),
            m,
            400,
        ),
        with_body(
            "/workspaces",
            Method::POST,
            "/workspaces",
            json!({"name": "Again", "slug": "research"}),
            m,
            400,
        ),
        with_body(
            "/workspaces",
            Method::POST,
            "/workspaces",
            json!({"name": "x", "slug": "x"}),
            None,
            401,
        ),
        with_body(
            "/workspaces",
            Method::POST,
            "/workspaces",
            json!({"name": "x", "slug": "x"}),
            Some(&key_secret),
            403,
        ),
        get("/workspaces/{id}", "/workspaces/research", m, 200),
        get(
            "/workspaces/{id}",
            "/workspaces/00000000-0000-4000-8000-00000000a11c",
            m,
            200,
        ),
        get("/workspaces/{id}", "/workspaces/nowhere", m, 404),
        get("/workspaces/{id}", "/workspaces/research", None, 401),
        get("/guardrails", "/guardrails", m, 200),
        get("/guardrails", "/guardrails?limit=0", m, 400),
        get("/guardrails", "/guardrails", None, 401),
        with_body(
            "/guardrails",
            Method::POST,
            "/guardrails",
            json!({
                "name": "capped", "limit_usd": 50, "reset_interval": "monthly",
                "allowed_providers": ["openai"], "enforce_zdr": true,
            }),
            m,
            201,
        ),
        with_body(
            "/guardrails",
            Method::POST,
            "/guardrails",
            json!({"name": "bad", "reset_interval": "yearly"}),
            m,
            400,
        ),
        with_body(
            "/guardrails",
            Method::POST,
            "/guardrails",
            json!({"name": "x"}),
            None,
            401,
        ),
        with_body(
            "/guardrails",
            Method::POST,
            "/guardrails",
            json!({"name": "x"}),
            Some(&key_secret),
            403,
        ),
        get("/guardrails/{id}", &cheap, m, 200),
        get("/guardrails/{id}", unknown, m, 404),
        get("/guardrails/{id}", &cheap, None, 401),
        with_body(
            "/guardrails/{id}",
            Method::PATCH,
            &format!("/guardrails/{NO_TRAINING}"),
            json!({"limit_usd": 75, "reset_interval": "weekly", "description": null}),
            m,
            200,
        ),
        with_body(
            "/guardrails/{id}",
            Method::PATCH,
            &format!("/guardrails/{NO_TRAINING}"),
            json!({"allowed_models": []}),
            m,
            400,
        ),
        with_body(
            "/guardrails/{id}",
            Method::PATCH,
            unknown,
            json!({"limit_usd": 1}),
            m,
            404,
        ),
        with_body(
            "/guardrails/{id}",
            Method::PATCH,
            &cheap,
            json!({"limit_usd": 1}),
            None,
            401,
        ),
        with_body(
            "/guardrails/{id}/assignments/keys",
            Method::POST,
            &format!("{cheap}/assignments/keys"),
            hashes.clone(),
            m,
            200,
        ),
        with_body(
            "/guardrails/{id}/assignments/keys",
            Method::POST,
            &format!("{cheap}/assignments/keys"),
            json!({"key_hashes": []}),
            m,
            400,
        ),
        with_body(
            "/guardrails/{id}/assignments/keys",
            Method::POST,
            &format!("{unknown}/assignments/keys"),
            hashes.clone(),
            m,
            404,
        ),
        with_body(
            "/guardrails/{id}/assignments/keys",
            Method::POST,
            &format!("{cheap}/assignments/keys"),
            hashes.clone(),
            None,
            401,
        ),
        get(
            "/guardrails/{id}/assignments/keys",
            &format!("{cheap}/assignments/keys"),
            m,
            200,
        ),
        get(
            "/guardrails/{id}/assignments/keys",
            &format!("{unknown}/assignments/keys"),
            m,
            404,
        ),
        get(
            "/guardrails/{id}/assignments/keys",
            &format!("{cheap}/assignments/keys"),
            None,
            401,
        ),
        get(
            "/guardrails/assignments/keys",
            "/guardrails/assignments/keys",
            m,
            200,
        ),
        get(
            "/guardrails/assignments/keys",
            "/guardrails/assignments/keys",
            None,
            401,
        ),
        with_body(
            "/guardrails/{id}/assignments/keys/remove",
            Method::POST,
            &format!("{cheap}/assignments/keys/remove"),
            hashes.clone(),
            m,
            200,
        ),
        with_body(
            "/guardrails/{id}/assignments/keys/remove",
            Method::POST,
            &format!("{cheap}/assignments/keys/remove"),
            json!({"hashes": []}),
            m,
            400,
        ),
        with_body(
            "/guardrails/{id}/assignments/keys/remove",
            Method::POST,
            &format!("{unknown}/assignments/keys/remove"),
            hashes.clone(),
            m,
            404,
        ),
        with_body(
            "/guardrails/{id}/assignments/keys/remove",
            Method::POST,
            &format!("{cheap}/assignments/keys/remove"),
            hashes.clone(),
            None,
            401,
        ),
        (
            "/guardrails/{id}",
            Method::DELETE,
            cheap.clone(),
            None,
            None,
            401,
        ),
        (
            "/guardrails/{id}",
            Method::DELETE,
            cheap.clone(),
            None,
            m,
            200,
        ),
        (
            "/guardrails/{id}",
            Method::DELETE,
            cheap.clone(),
            None,
            m,
            404,
        ),
        // Last: deleting a workspace (without keys; the default one is refused).
        (
            "/workspaces/{id}",
            Method::DELETE,
            "/workspaces/default".into(),
            None,
            m,
            403,
        ),
        (
            "/workspaces/{id}",
            Method::DELETE,
            "/workspaces/support".into(),
            None,
            None,
            401,
        ),
        (
            "/workspaces/{id}",
            Method::DELETE,
            "/workspaces/support".into(),
            None,
            m,
            200,
        ),
        (
            "/workspaces/{id}",
            Method::DELETE,
            "/workspaces/support".into(),
            None,
            m,
            404,
        ),
    ];
    let mut bodies = Vec::new();
    for case in cases {
        bodies.push(answer(&root, &http, &base, case).await);
    }
    // Lists hold something to check: three workspaces, two guardrails, one
    // assignment while it lasted.
    assert_eq!(bodies[0]["total_count"], 3);
    assert_eq!(bodies[1]["data"].as_array().unwrap().len(), 1);
    assert_eq!(bodies[12]["total_count"], 2);
    assert_eq!(bodies[30]["total_count"], 1);
    assert_eq!(bodies[30]["data"][0]["key_hash"], json!(hash));
    sandbox.shutdown().await;
}
