//! The sandbox (SPEC §8), driven over HTTP on loopback as keywarden and
//! people drive it.

use chrono::{DateTime, Utc};
use keywarden::domain::LimitReset;
use keywarden::sandbox::{Sandbox, SandboxOptions, SeedKey};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A running sandbox and an HTTP client for it.
pub(crate) struct Env {
    pub(crate) sandbox: Sandbox,
    pub(crate) http: Client,
}

impl Env {
    /// A sandbox with `keys` generated keys, then `seed_keys`, its clock at
    /// `start`. The generated keys are all in the default workspace and hold
    /// no guardrail (not spread as `--keys N` spreads them): these tests
    /// look at one workspace's listing.
    pub(crate) async fn start(keys: usize, seed_keys: Vec<SeedKey>, start: &str) -> Env {
        let mut seeds = keywarden::sandbox::seed::generated(keys);
        seeds.extend(seed_keys);
        let opts = SandboxOptions {
            keys: 0,
            seed_keys: seeds,
            management_key: None,
            start: Some(t(start)),
        };
        Env {
            sandbox: Sandbox::start("127.0.0.1:0", opts).await.unwrap(),
            http: Client::new(),
        }
    }

    /// An `/api/v1` request with the management key.
    pub(crate) async fn api(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let url = format!("{}{path}", self.sandbox.base_url());
        let mut req = self
            .http
            .request(method, url)
            .bearer_auth(self.sandbox.management_key());
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        (resp.status(), resp.json().await.unwrap_or(Value::Null))
    }

    /// A `/_sandbox` request.
    pub(crate) async fn control(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let url = format!("{}{path}", self.sandbox.control_url());
        let mut req = self.http.request(method, url);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        (resp.status(), resp.json().await.unwrap_or(Value::Null))
    }

    async fn spend(&self, hash: &str, usd: f64, byok: bool) -> (StatusCode, Value) {
        self.control(
            Method::POST,
            "/spend",
            Some(json!({"hash": hash, "usd": usd, "byok": byok})),
        )
        .await
    }

    async fn set_now(&self, now: &str) {
        let (status, body) = self
            .control(Method::POST, "/clock", Some(json!({ "now": now })))
            .await;
        assert_eq!(status, 200, "{body}");
    }

    async fn key(&self, hash: &str) -> Value {
        let (status, body) = self.api(Method::GET, &format!("/keys/{hash}"), None).await;
        assert_eq!(status, 200, "{body}");
        body["data"].clone()
    }
}

fn seed(name: &str, limit: Option<f64>, reset: Option<LimitReset>, byok: bool) -> SeedKey {
    SeedKey {
        name: name.into(),
        limit,
        limit_reset: reset,
        include_byok_in_limit: byok,
        ..SeedKey::default()
    }
}

fn error(code: u16, message: &str) -> Value {
    json!({"error": {"code": code, "message": message}})
}

#[tokio::test]
async fn daily_limit_refuses_spend_past_it_and_accepts_again_after_midnight_utc() {
    let key = seed("daily", Some(10.0), Some(LimitReset::Daily), false);
    let hash = key.hash();
    let env = Env::start(0, vec![key], "2026-11-27T22:00:00Z").await;
    assert_eq!(env.spend(&hash, 6.0, false).await.0, 200);
    // 4 USD left: the next spend is accepted in full and overruns, like OpenRouter's last request.
    let (status, body) = env.spend(&hash, 5.0, false).await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            body["data"]["usage_daily"].clone(),
            body["data"]["limit_remaining"].clone()
        ),
        (json!(11.0), json!(0.0))
    );
    let (status, body) = env.spend(&hash, 0.01, false).await;
    assert_eq!(status, 402);
    assert_eq!(body["error"]["code"], 402);

    env.set_now("2026-11-27T23:59:59Z").await;
    assert_eq!(env.spend(&hash, 1.0, false).await.0, 402);
    env.set_now("2026-11-28T00:00:00Z").await;
    assert_eq!(env.key(&hash).await["limit_remaining"], json!(10.0));
    let (status, body) = env.spend(&hash, 1.0, false).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["usage_daily"], json!(1.0));
    assert_eq!(body["data"]["usage"], json!(12.0));
    assert_eq!(body["data"]["limit_remaining"], json!(9.0));
}

#[tokio::test]
async fn weekly_usage_resets_on_monday_midnight_utc_and_not_on_sunday() {
    let key = seed("weekly", Some(100.0), Some(LimitReset::Weekly), false);
    let hash = key.hash();
    // 2026-11-28 is a Saturday.
    let env = Env::start(0, vec![key], "2026-11-28T12:00:00Z").await;
    env.spend(&hash, 3.0, false).await;
    env.set_now("2026-11-29T23:59:59Z").await; // Sunday night
    let sunday = env.key(&hash).await;
    assert_eq!(
        (
            sunday["usage_weekly"].clone(),
            sunday["usage_daily"].clone()
        ),
        (json!(3.0), json!(0.0))
    );
    assert_eq!(sunday["limit_remaining"], json!(97.0));
    env.set_now("2026-11-30T00:00:00Z").await; // Monday
    let monday = env.key(&hash).await;
    assert_eq!(monday["usage_weekly"], json!(0.0));
    assert_eq!(monday["limit_remaining"], json!(100.0));
    assert_eq!(monday["usage_monthly"], json!(3.0), "still November");
    assert_eq!(monday["usage"], json!(3.0));
}

#[tokio::test]
async fn monthly_usage_resets_on_the_first() {
    let key = seed("monthly", Some(50.0), Some(LimitReset::Monthly), false);
    let hash = key.hash();
    let env = Env::start(0, vec![key], "2026-11-30T23:00:00Z").await;
    env.spend(&hash, 4.0, false).await;
    assert_eq!(env.key(&hash).await["limit_remaining"], json!(46.0));
    let (_, now) = env
        .control(Method::POST, "/clock", Some(json!({"advance": "2h"})))
        .await;
    assert_eq!(now["now"], "2026-12-01T01:00:00Z");
    let december = env.key(&hash).await;
    assert_eq!(december["usage_monthly"], json!(0.0));
    assert_eq!(
        december["usage_weekly"],
        json!(4.0),
        "the week began on Monday 30 November"
    );
    assert_eq!(december["limit_remaining"], json!(50.0));
}

#[tokio::test]
async fn byok_spend_counts_in_limit_remaining_only_with_include_byok_in_limit() {
    let with = seed("with-byok", Some(10.0), Some(LimitReset::Monthly), true);
    let without = seed("without-byok", Some(10.0), Some(LimitReset::Monthly), false);
    let (h_with, h_without) = (with.hash(), without.hash());
    let env = Env::start(0, vec![with, without], "2026-11-10T00:00:00Z").await;
    env.spend(&h_with, 4.0, true).await;
    env.spend(&h_without, 4.0, true).await;
    let (with, without) = (env.key(&h_with).await, env.key(&h_without).await);
    assert_eq!(with["limit_remaining"], json!(6.0));
    assert_eq!(without["limit_remaining"], json!(10.0));
    assert_eq!(without["byok_usage_monthly"], json!(4.0));
    assert_eq!(without["usage"], json!(0.0));
    let (_, credits) = env.api(Method::GET, "/credits", None).await;
    assert_eq!(
        credits["data"]["total_usage"],
        json!(0.0),
        "BYOK spend uses no credits"
    );
}

#[tokio::test]
async fn two_hundred_fifty_keys_list_as_three_pages_then_an_empty_one() {
    let env = Env::start(250, vec![], "2026-11-27T10:00:00Z").await;
    let mut hashes = Vec::new();
    let mut sizes = Vec::new();
    for offset in [0, 100, 200, 300] {
        let (status, body) = env
            .api(Method::GET, &format!("/keys?offset={offset}"), None)
            .await;
        assert_eq!(status, 200);
        let page = body["data"].as_array().unwrap().clone();
        sizes.push(page.len());
        hashes.extend(page.iter().map(|k| k["hash"].as_str().unwrap().to_owned()));
        if offset == 0 {
            assert_eq!(page[0]["name"], "team-a-01", "creation order");
            assert_eq!(page[6]["name"], "team-a-02");
        }
    }
    assert_eq!(sizes, [100, 100, 50, 0]);
    hashes.sort();
    hashes.dedup();
    assert_eq!(hashes.len(), 250);
}

#[tokio::test]
async fn disabled_keys_are_listed_only_with_include_disabled() {
    let env = Env::start(3, vec![], "2026-11-27T10:00:00Z").await;
    let hash = env.sandbox.account().keys()[1].hash.clone();
    env.api(
        Method::PATCH,
        &format!("/keys/{hash}"),
        Some(json!({"disabled": true})),
    )
    .await;
    let names = |body: &Value| -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, default) = env.api(Method::GET, "/keys", None).await;
    assert_eq!(names(&default), ["team-a-01", "team-c-01"]);
    let (_, explicit) = env
        .api(Method::GET, "/keys?include_disabled=false", None)
        .await;
    assert_eq!(names(&explicit), ["team-a-01", "team-c-01"]);
    let (_, all) = env
        .api(Method::GET, "/keys?include_disabled=true", None)
        .await;
    assert_eq!(names(&all), ["team-a-01", "team-b-01", "team-c-01"]);
    // Spend on the disabled key is refused like a real request.
    let (status, body) = env.spend(&hash, 1.0, false).await;
    assert_eq!(
        (status.as_u16(), body),
        (403, error(403, "Key is disabled"))
    );
}

#[tokio::test]
async fn keys_in_other_workspaces_are_listed_only_when_asked_for() {
    let mut other = seed("elsewhere", None, None, false);
    other.workspace_id = Some("ws-2".into());
    let env = Env::start(1, vec![other], "2026-11-27T10:00:00Z").await;
    let (_, default) = env.api(Method::GET, "/keys", None).await;
    assert_eq!(default["data"].as_array().unwrap().len(), 1);
    let (_, ws2) = env.api(Method::GET, "/keys?workspace_id=ws-2", None).await;
    assert_eq!(ws2["data"][0]["name"], "elsewhere");
}

#[tokio::test]
async fn auth_and_bad_requests_get_openrouter_error_bodies() {
    let env = Env::start(1, vec![], "2026-11-27T10:00:00Z").await;
    let hash = env.sandbox.account().keys()[0].hash.clone();
    let url = format!("{}/keys", env.sandbox.base_url());

    let resp = env.http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        error(401, "Missing Authentication header")
    );
    let resp = env
        .http
        .get(&url)
        .bearer_auth("sk-or-v1-wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"]["code"], 401);

    let (status, body) = env.api(Method::GET, "/keys/0000", None).await;
    assert_eq!((status.as_u16(), body), (404, error(404, "Key not found")));
    for hostile in [
        "..%2F..%2Fetc%2Fpasswd",
        "a%2Fb",
        "%00",
        "x/y",
        "..",
        "%FF%FE",
    ] {
        let (status, body) = env
            .api(
                Method::PATCH,
                &format!("/keys/{hostile}"),
                Some(json!({"limit": 1})),
            )
            .await;
        assert_eq!(status, 404, "{hostile}: {body}");
        assert_eq!(body["error"]["code"], 404);
    }

    let patch = format!("/keys/{hash}");
    for bad in [
        json!({"limit_reset": "yearly"}),
        json!({"limit": -1}),
        json!({"limit": "10"}),
        json!({"disabled": "yes"}),
        json!({"disabld": true}),
        json!([1, 2]),
    ] {
        let (status, body) = env.api(Method::PATCH, &patch, Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(body["error"]["code"], 400, "{bad}");
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    }
    assert_eq!(env.api(Method::GET, "/keys?offset=-1", None).await.0, 400);
    assert_eq!(
        env.api(Method::GET, "/keys?include_disabled=maybe", None)
            .await
            .0,
        400
    );
    assert_eq!(
        env.api(Method::POST, "/keys", Some(json!({"limit": 5})))
            .await
            .0,
        400
    );
    // None of that changed the key.
    assert_eq!(
        env.key(&hash).await,
        serde_json::to_value(&env.sandbox.account().keys()[0]).unwrap()
    );
    assert_eq!(env.key(&hash).await["updated_at"], Value::Null);
}

#[tokio::test]
async fn patch_sets_each_field_including_no_limit_and_no_reset() {
    let key = seed("patchme", Some(10.0), Some(LimitReset::Daily), false);
    let hash = key.hash();
    let env = Env::start(0, vec![key], "2026-11-27T10:00:00Z").await;
    let path = format!("/keys/{hash}");
    for (patch, field, want) in [
        (json!({"disabled": true}), "disabled", json!(true)),
        (
            json!({"include_byok_in_limit": true}),
            "include_byok_in_limit",
            json!(true),
        ),
        (
            json!({"limit_reset": "weekly"}),
            "limit_reset",
            json!("weekly"),
        ),
        (json!({"limit_reset": null}), "limit_reset", Value::Null),
        (json!({"limit": 25.5}), "limit", json!(25.5)),
        (json!({"limit": null}), "limit", Value::Null),
        (json!({"name": "renamed"}), "name", json!("renamed")),
    ] {
        let (status, body) = env.api(Method::PATCH, &path, Some(patch.clone())).await;
        assert_eq!(status, 200, "{patch}: {body}");
        assert_eq!(body["data"][field], want, "{patch}");
        assert_eq!(env.key(&hash).await[field], want, "{patch}");
    }
    let key = env.key(&hash).await;
    assert_eq!(
        key["limit_remaining"],
        Value::Null,
        "no limit, nothing remaining"
    );
    assert_eq!(key["updated_at"], "2026-11-27T10:00:00Z");
    // An empty patch leaves everything as it was.
    assert_eq!(
        env.api(Method::PATCH, &path, Some(json!({}))).await.1["data"]["disabled"],
        json!(true)
    );
}

#[tokio::test]
async fn created_keys_can_be_read_used_and_deleted() {
    let env = Env::start(0, vec![], "2026-11-27T10:00:00Z").await;
    let (status, body) = env
        .api(
            Method::POST,
            "/keys",
            Some(json!({"name": "new", "limit": 5, "limit_reset": "monthly"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let hash = body["data"]["hash"].as_str().unwrap().to_owned();
    let secret = body["key"].as_str().unwrap().to_owned();
    assert_eq!(
        (hash.len(), body["data"]["limit_remaining"].clone()),
        (64, json!(5.0))
    );
    assert!(secret.starts_with("sk-or-v1-"));

    // The new key's own secret reads GET /key but may not manage keys.
    let key_url = format!("{}/key", env.sandbox.base_url());
    let me: Value = env
        .http
        .get(&key_url)
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            me["data"]["is_management_key"].clone(),
            me["data"]["limit"].clone()
        ),
        (json!(false), json!(5.0))
    );
    let list = env
        .http
        .get(format!("{}/keys", env.sandbox.base_url()))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 403);

    let (status, body) = env
        .api(Method::DELETE, &format!("/keys/{hash}"), None)
        .await;
    assert_eq!((status.as_u16(), body), (200, json!({"deleted": true})));
    assert_eq!(
        env.api(Method::GET, &format!("/keys/{hash}"), None).await.0,
        404
    );
    assert_eq!(
        env.api(Method::DELETE, &format!("/keys/{hash}"), None)
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn error_rate_one_answers_the_fault_status_and_changes_nothing() {
    let env = Env::start(1, vec![], "2026-11-27T10:00:00Z").await;
    let hash = env.sandbox.account().keys()[0].hash.clone();
    let (status, _) = env
        .control(
            Method::POST,
            "/faults",
            Some(json!({"error_rate": 1.0, "status": 503})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = env
        .api(
            Method::PATCH,
            &format!("/keys/{hash}"),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], 503);
    let (status, _) = env.api(Method::GET, "/keys", None).await;
    assert_eq!(status, 503);
    // Control calls are not faulted; `{}` clears.
    assert_eq!(
        env.control(Method::POST, "/faults", Some(json!({})))
            .await
            .0,
        200
    );
    assert_eq!(env.key(&hash).await["disabled"], json!(false));
    let (status, _) = env
        .control(Method::POST, "/faults", Some(json!({"error_rate": 2})))
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn dropped_patch_is_applied_but_the_client_gets_no_answer() {
    let env = Env::start(1, vec![], "2026-11-27T10:00:00Z").await;
    let hash = env.sandbox.account().keys()[0].hash.clone();
    env.control(Method::POST, "/faults", Some(json!({"drop_rate": 1.0})))
        .await;
    let url = format!("{}/keys/{hash}", env.sandbox.base_url());
    let outcome = async {
        let resp = env
            .http
            .patch(&url)
            .bearer_auth(env.sandbox.management_key())
            .json(&json!({"disabled": true}))
            .send()
            .await?;
        resp.bytes().await
    }
    .await;
    assert!(
        outcome.is_err(),
        "the client must see a connection error, got {outcome:?}"
    );
    // GETs are never dropped; the change was applied.
    assert_eq!(env.key(&hash).await["disabled"], json!(true));
    let journal = env.sandbox.account().requests();
    assert_eq!(
        (journal[0].method.as_str(), journal[0].applied),
        ("PATCH", true)
    );
}

#[tokio::test]
async fn beyond_the_rate_limit_the_answer_is_429_with_retry_after() {
    let env = Env::start(1, vec![], "2026-11-27T10:00:00Z").await;
    env.control(
        Method::POST,
        "/faults",
        Some(json!({"rate_limit_per_second": 2, "retry_after": 3})),
    )
    .await;
    let url = format!("{}/keys", env.sandbox.base_url());
    let mut limited = None;
    for _ in 0..10 {
        let resp = env
            .http
            .get(&url)
            .bearer_auth(env.sandbox.management_key())
            .send()
            .await
            .unwrap();
        if resp.status() == 429 {
            limited = Some(resp);
            break;
        }
    }
    let resp = limited.expect("10 requests at once exceed 2 a second");
    assert_eq!(resp.headers()["retry-after"], "3");
    assert_eq!(resp.json::<Value>().await.unwrap()["error"]["code"], 429);
}

#[tokio::test]
async fn journal_records_each_management_call() {
    let env = Env::start(1, vec![], "2026-11-27T10:00:00Z").await;
    let hash = env.sandbox.account().keys()[0].hash.clone();
    env.api(Method::GET, "/keys?include_disabled=true&offset=0", None)
        .await;
    env.api(
        Method::PATCH,
        &format!("/keys/{hash}"),
        Some(json!({"limit": null})),
    )
    .await;
    env.api(Method::PATCH, "/keys/nope", Some(json!({"limit": 1})))
        .await;
    let (status, journal) = env.control(Method::GET, "/requests", None).await;
    assert_eq!(status, 200);
    let journal = journal.as_array().unwrap();
    assert_eq!(journal.len(), 3, "control calls are not journalled");
    assert_eq!(journal[0]["query"], "include_disabled=true&offset=0");
    assert_eq!(journal[0]["body"], Value::Null);
    let patch = &journal[1];
    assert_eq!(patch["method"], "PATCH");
    assert_eq!(patch["path"], format!("/api/v1/keys/{hash}"));
    assert_eq!(patch["body"], json!({"limit": null}));
    assert_eq!(
        (patch["status"].clone(), patch["applied"].clone()),
        (json!(200), json!(true))
    );
    assert_eq!(patch["at"], "2026-11-27T10:00:00Z");
    assert!(DateTime::parse_from_rfc3339(patch["received_at"].as_str().unwrap()).is_ok());
    assert_eq!(
        (journal[2]["status"].clone(), journal[2]["applied"].clone()),
        (json!(404), json!(false))
    );

    assert_eq!(
        env.control(Method::DELETE, "/requests", None).await.1,
        json!({"cleared": 3})
    );
    assert!(env.sandbox.account().requests().is_empty());
}

#[tokio::test]
async fn clock_credits_and_reset_through_the_control_api() {
    let env = Env::start(2, vec![], "2026-11-27T10:00:00Z").await;
    let hash = env.sandbox.account().keys()[0].hash.clone();
    let (_, now) = env
        .control(Method::POST, "/clock", Some(json!({"advance": "36h"})))
        .await;
    assert_eq!(now, json!({"now": "2026-11-28T22:00:00Z"}));
    assert_eq!(
        env.control(Method::POST, "/clock", Some(json!({"advance": "soon"})))
            .await
            .0,
        400
    );
    assert_eq!(
        env.control(Method::POST, "/clock", Some(json!({}))).await.0,
        400
    );

    env.spend(&hash, 2.5, false).await;
    let (_, credits) = env
        .control(Method::POST, "/credits", Some(json!({"total_credits": 20})))
        .await;
    assert_eq!(
        credits["data"],
        json!({"total_credits": 20.0, "total_usage": 2.5})
    );
    let (_, credits) = env.api(Method::GET, "/credits", None).await;
    assert_eq!(credits["data"]["total_credits"], json!(20.0));

    env.api(Method::POST, "/keys", Some(json!({"name": "extra"})))
        .await;
    env.control(Method::POST, "/faults", Some(json!({"latency_ms": 1})))
        .await;
    assert_eq!(env.control(Method::POST, "/reset", None).await.0, 200);
    let keys = env.sandbox.account().keys();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].usage, Some(0.0));
    assert!(env.sandbox.account().requests().is_empty());
    assert_eq!(env.control(Method::GET, "/faults", None).await.1, json!({}));
    assert_eq!(
        env.api(Method::GET, "/credits", None).await.1["data"]["total_credits"],
        json!(1000.0)
    );
}

#[tokio::test]
async fn ten_thousand_keys_list_in_a_hundred_pages() {
    let env = Env::start(10_000, vec![], "2026-11-27T10:00:00Z").await;
    let mut total = 0;
    for page in 0..=100 {
        let (status, body) = env
            .api(Method::GET, &format!("/keys?offset={}", page * 100), None)
            .await;
        assert_eq!(status, 200);
        total += body["data"].as_array().unwrap().len();
    }
    // How fast is the run benchmark's business (`cargo bench --bench run`),
    // not a timed test's.
    assert_eq!(total, 10_000);
}

#[tokio::test]
async fn seeded_usage_counts_in_the_windows_of_the_start_time() {
    let key = SeedKey {
        name: "seeded".into(),
        limit: Some(20.0),
        limit_reset: Some(LimitReset::Weekly),
        usage_daily: 1.0,
        usage_weekly: 5.0,
        usage_monthly: 8.0,
        ..SeedKey::default()
    };
    let hash = key.hash();
    let env = Env::start(0, vec![key], "2026-11-27T10:00:00Z").await;
    let k = env.key(&hash).await;
    assert_eq!(
        (k["usage"].clone(), k["limit_remaining"].clone()),
        (json!(8.0), json!(15.0))
    );
    env.set_now("2026-11-28T00:00:00Z").await;
    assert_eq!(env.key(&hash).await["usage_daily"], json!(0.0));
}

/// The `GET /keys` object of the key named `name`.
async fn key_named(env: &Env, name: &str) -> Value {
    env.key(&crate::daemon::hash_of(&env.sandbox, name)).await
}

#[tokio::test]
async fn traffic_spends_as_the_clock_moves_minute_by_minute_and_windows_roll_over() {
    let env = Env::start(12, vec![], "2026-12-01T20:00:00Z").await;
    let (status, body) = env
        .control(
            Method::POST,
            "/traffic",
            Some(
                json!({"names": ["team-a-*"], "usd_per_hour": 1.5, "pattern": "steady", "seed": 7}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["streams"][0]["pattern"], "steady");

    // Six hours, across midnight, in two moves: 9 USD each, 6 of them today.
    env.control(Method::POST, "/clock", Some(json!({"advance": "2h"})))
        .await;
    env.control(Method::POST, "/clock", Some(json!({"advance": "4h"})))
        .await;
    let a = key_named(&env, "team-a-01").await;
    assert!((a["usage"].as_f64().unwrap() - 9.0).abs() < 1e-6, "{a}");
    assert!(
        (a["usage_daily"].as_f64().unwrap() - 3.0).abs() < 1e-6,
        "{a}"
    );
    assert!(
        (a["usage_monthly"].as_f64().unwrap() - 9.0).abs() < 1e-6,
        "{a}"
    );
    assert_eq!(key_named(&env, "team-b-01").await["usage"], 0.0);

    // A key that is disabled spends nothing more; the stream counts the refusals.
    let a1 = a["hash"].as_str().unwrap().to_string();
    env.api(
        Method::PATCH,
        &format!("/keys/{a1}"),
        Some(json!({"disabled": true})),
    )
    .await;
    env.control(Method::POST, "/clock", Some(json!({"advance": "1h"})))
        .await;
    assert_eq!(key_named(&env, "team-a-01").await["usage"], a["usage"]);
    assert!(
        (key_named(&env, "team-a-02").await["usage"]
            .as_f64()
            .unwrap()
            - 10.5)
            .abs()
            < 1e-6
    );
    let (_, streams) = env.control(Method::GET, "/traffic", None).await;
    assert_eq!(streams["streams"][0]["refused"], 60);

    // `{}` stops it.
    let (status, body) = env.control(Method::POST, "/traffic", Some(json!({}))).await;
    assert_eq!((status.as_u16(), body), (200, json!({"streams": []})));
    let before = key_named(&env, "team-a-02").await["usage"].clone();
    env.control(Method::POST, "/clock", Some(json!({"advance": "3h"})))
        .await;
    assert_eq!(key_named(&env, "team-a-02").await["usage"], before);
}

#[tokio::test]
async fn traffic_patterns_are_deterministic_and_bad_streams_are_refused() {
    async fn spent(pattern: &str) -> Vec<Value> {
        let unlimited = ["team-1", "team-2", "team-3"].map(|n| seed(n, None, None, false));
        let env = Env::start(0, unlimited.to_vec(), "2026-11-30T00:00:00Z").await;
        let (status, body) = env
            .control(
                Method::POST,
                "/traffic",
                Some(json!({"names": ["team-*"], "usd_per_hour": 2.0, "pattern": pattern, "seed": 3})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        env.control(Method::POST, "/clock", Some(json!({"advance": "7d"})))
            .await;
        let mut usage = Vec::new();
        for name in ["team-1", "team-2", "team-3"] {
            usage.push(key_named(&env, name).await["usage"].clone());
        }
        usage
    }
    for pattern in ["steady", "diurnal", "bursty"] {
        let week = spent(pattern).await;
        assert_eq!(week, spent(pattern).await, "{pattern} is reproducible");
        for usd in &week {
            let usd = usd.as_f64().unwrap();
            assert!(
                (usd - 336.0).abs() < 40.0,
                "{pattern}: {usd} USD in a week at 2 USD/h"
            );
        }
    }

    let env = Env::start(2, vec![], "2026-11-30T00:00:00Z").await;
    for bad in [
        json!({"usd_per_hour": 1.0}),
        json!({"names": ["a"], "hashes": ["b"], "usd_per_hour": 1.0}),
        json!({"names": ["a"], "usd_per_hour": -1.0}),
        json!({"names": ["a"], "usd_per_hour": 1.0, "pattern": "sometimes"}),
        json!({"names": ["["], "usd_per_hour": 1.0}),
    ] {
        let (status, body) = env
            .control(Method::POST, "/traffic", Some(bad.clone()))
            .await;
        assert_eq!(status, 400, "{bad} -> {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("traffic")
                || body["error"]["message"].is_string(),
            "{body}"
        );
    }
    assert_eq!(
        env.control(Method::GET, "/traffic", None).await.1,
        json!({"streams": []})
    );
}
