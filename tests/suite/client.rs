//! The OpenRouter client against local mock servers (retries, errors,
//! limits, paths) and against the sandbox (pagination, PATCH bodies, the
//! rate ceiling, no key in the logs).

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use keywarden::config::{ManagementKey, Workspaces};
use keywarden::openrouter::{ApiError, Client, ClientSettings, KeyPatch};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

const KEY: &str = "sk-or-v1-mgmt-0123456789abcdef0123456789abcdef";

/// What a mock server saw: one entry per request.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(Instant, String, HeaderMap)>>>);

impl Seen {
    fn record(&self, uri: &Uri, headers: &HeaderMap) -> usize {
        let mut v = self.0.lock().unwrap();
        v.push((Instant::now(), uri.to_string(), headers.clone()));
        v.len()
    }
    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    fn times(&self) -> Vec<Instant> {
        self.0.lock().unwrap().iter().map(|e| e.0).collect()
    }
    fn uris(&self) -> Vec<String> {
        self.0.lock().unwrap().iter().map(|e| e.1.clone()).collect()
    }
}

/// A writer into a shared buffer, for a test's own tracing subscriber.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    /// Everything logged so far.
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Captures the log lines of the calling thread alone, at `trace` for every
/// crate, until the guard is dropped: a `#[tokio::test]` runs its client and
/// sandbox on its own thread, so other tests of this binary (run on other
/// threads at the same time) cannot write into it.
///
/// A global subscriber that records nothing is installed first: while only
/// one subscriber is known, tracing decides whether a call site is wanted
/// by asking the subscriber of whichever thread reaches it first, and a call
/// site first reached by another test would stay muted for this one.
fn capture_logs() -> (LogBuffer, tracing::subscriber::DefaultGuard) {
    static NO_GLOBAL_LOGS: std::sync::Once = std::sync::Once::new();
    NO_GLOBAL_LOGS.call_once(|| {
        tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::default())
            .expect("no other global subscriber in the test binary");
    });
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer({
            let logs = logs.clone();
            move || logs.clone()
        })
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    (logs, guard)
}

/// Serves `router` on a random loopback port; the API base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}/api/v1")
}

fn settings(base_url: &str, max_retries: u32) -> ClientSettings {
    ClientSettings {
        base_url: base_url.to_string(),
        management_key: ManagementKey::from_text(KEY.to_string()).unwrap(),
        // The default workspace only: these tests are about paging,
        // retries and limits (tests/suite/workspaces.rs lists workspaces).
        workspaces: Workspaces::Only(Vec::new()),
        timeout: Duration::from_secs(5),
        max_concurrency: 4,
        requests_per_second: 1000,
        max_retries,
    }
}

fn client(base_url: &str, max_retries: u32) -> Client {
    Client::new(settings(base_url, max_retries))
        .unwrap()
        .with_min_backoff(Duration::from_millis(10))
}

fn credits_body() -> Value {
    json!({"data": {"total_credits": 10.0, "total_usage": 4.0}})
}

fn error_body(code: u16, message: &str) -> Value {
    json!({"error": {"code": code, "message": message}})
}

fn reply(status: u16, headers: &[(&str, String)], body: impl Into<Body>) -> Response {
    let mut b = Response::builder().status(status);
    for (name, value) in headers {
        b = b.header(*name, value);
    }
    b.body(body.into()).unwrap()
}

/// A server whose every answer is chosen by `answer(n)` (n = 1, 2, …).
async fn scripted(answer: impl Fn(usize) -> Response + Send + Sync + 'static) -> (String, Seen) {
    let seen = Seen::default();
    let answer = Arc::new(answer);
    let router = Router::new().fallback(any({
        let seen = seen.clone();
        move |uri: Uri, headers: HeaderMap| {
            let n = seen.record(&uri, &headers);
            let answer = answer.clone();
            async move { answer(n) }
        }
    }));
    (serve(router).await, seen)
}

#[tokio::test]
async fn a_429_with_retry_after_seconds_is_retried_once_after_the_wait() {
    let (base, seen) = scripted(|n| match n {
        1 => reply(
            429,
            &[("retry-after", "1".into())],
            error_body(429, "slow down").to_string(),
        ),
        _ => reply(200, &[], credits_body().to_string()),
    })
    .await;
    let credits = client(&base, 3).credits().await.unwrap();
    assert_eq!(credits.remaining(), 6.0);
    let times = seen.times();
    assert_eq!(times.len(), 2, "exactly one retry");
    assert!(
        times[1] - times[0] >= Duration::from_secs(1),
        "waited {:?}",
        times[1] - times[0]
    );
}

#[tokio::test]
async fn a_429_with_an_http_date_retry_after_waits_until_then() {
    let (base, seen) = scripted(|n| match n {
        1 => {
            let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
            reply(429, &[("retry-after", at)], "")
        }
        _ => reply(200, &[], credits_body().to_string()),
    })
    .await;
    client(&base, 3).credits().await.unwrap();
    let times = seen.times();
    assert_eq!(times.len(), 2);
    // The date has one-second resolution: at least one second is left of it.
    assert!(
        times[1] - times[0] >= Duration::from_millis(900),
        "waited {:?}",
        times[1] - times[0]
    );
}

#[tokio::test]
async fn a_429_that_persists_ends_rate_limited_with_its_retry_after() {
    let (base, seen) = scripted(|_| reply(429, &[("retry-after", "0".into())], "")).await;
    let out = client(&base, 2)
        .update_key("h1", &KeyPatch::default())
        .await;
    assert_eq!(
        out.result.unwrap_err(),
        ApiError::RateLimited {
            retry_after: Some(Duration::ZERO)
        }
    );
    assert_eq!(
        (out.attempts, out.http_status, seen.count()),
        (3, Some(429), 3)
    );
}

#[tokio::test]
async fn a_5xx_is_retried_then_given_up_after_max_retries() {
    let (base, seen) =
        scripted(|_| reply(503, &[], error_body(503, "upstream down").to_string())).await;
    let patch = KeyPatch {
        disabled: Some(true),
        ..Default::default()
    };
    let out = client(&base, 3).update_key("h1", &patch).await;
    assert_eq!(out.attempts, 4);
    assert_eq!(out.http_status, Some(503));
    assert_eq!(seen.count(), 4);
    match out.result.unwrap_err() {
        ApiError::Server {
            status: 503,
            message,
        } => assert_eq!(message, "upstream down"),
        other => panic!("expected Server, got {other:?}"),
    }
}

#[tokio::test]
async fn a_5xx_then_success_reports_every_attempt() {
    let (base, _) = scripted(|n| match n {
        1 | 2 => reply(502, &[], "bad gateway"),
        _ => reply(
            200,
            &[],
            json!({"data": key_json("h1", "one", true)}).to_string(),
        ),
    })
    .await;
    let patch = KeyPatch {
        disabled: Some(true),
        ..Default::default()
    };
    let out = client(&base, 5).update_key("h1", &patch).await;
    assert!(out.result.unwrap().disabled);
    assert_eq!((out.attempts, out.http_status), (3, Some(200)));
}

#[tokio::test]
async fn client_errors_are_typed_and_not_retried() {
    let message = || "limit must be >= 0".to_string();
    let cases = [
        (400, ApiError::BadRequest { message: message() }),
        (
            401,
            ApiError::AuthFailed {
                status: 401,
                message: message(),
            },
        ),
        (
            403,
            ApiError::AuthFailed {
                status: 403,
                message: message(),
            },
        ),
        (404, ApiError::KeyNotFound { hash: "h1".into() }),
    ];
    for (status, expected) in cases {
        let (base, seen) = scripted(move |_| {
            reply(
                status,
                &[],
                error_body(status, "limit must be >= 0").to_string(),
            )
        })
        .await;
        let out = client(&base, 5)
            .update_key("h1", &KeyPatch::default())
            .await;
        let err = out.result.unwrap_err();
        assert!(!err.is_ambiguous());
        assert_eq!(err, expected, "HTTP {status}");
        assert_eq!(
            (out.attempts, out.http_status, seen.count()),
            (1, Some(status), 1)
        );
    }
}

#[tokio::test]
async fn malformed_responses_are_invalid_not_panics() {
    let huge = format!("{{\"data\": \"{}\"}}", "x".repeat(20 * 1024 * 1024));
    let bodies: Vec<(&str, Body)> = vec![
        ("not json", Body::from("<html>hello</html>")),
        ("truncated", Body::from(r#"{"data": {"total_credits": 1"#)),
        ("wrong shape", Body::from(r#"{"data": {"total": "many"}}"#)),
        ("no envelope", Body::from(r#"[1, 2, 3]"#)),
        ("20 MB", Body::from(huge)),
        // No Content-Length: the cap must hold while streaming too.
        (
            "20 MB streamed",
            Body::from_stream(futures::stream::iter(
                (0..20).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024 * 1024])),
            )),
        ),
    ];
    for (what, body) in bodies {
        let body = Mutex::new(Some(body));
        let (base, seen) =
            scripted(move |_| reply(200, &[], body.lock().unwrap().take().unwrap())).await;
        let err = client(&base, 3).credits().await.unwrap_err();
        assert!(
            matches!(err, ApiError::InvalidResponse { .. }),
            "{what}: {err:?}"
        );
        assert_eq!(seen.count(), 1, "{what}: not retried");
    }
}

#[tokio::test]
async fn a_hash_is_one_path_segment_whatever_it_holds() {
    let (base, seen) =
        scripted(|_| reply(404, &[], error_body(404, "no such key").to_string())).await;
    let c = client(&base, 0);
    for hash in ["../x", "a/b?c#d", "%2e%2e", "..%2F"] {
        let err = c.get_key(hash).await.unwrap_err();
        assert_eq!(err, ApiError::KeyNotFound { hash: hash.into() });
    }
    assert_eq!(
        seen.uris(),
        [
            "/api/v1/keys/..%2Fx",
            "/api/v1/keys/a%2Fb%3Fc%23d",
            "/api/v1/keys/%252e%252e",
            "/api/v1/keys/..%252F",
        ]
    );
    for hash in ["..", ".", ""] {
        let out = c.update_key(hash, &KeyPatch::default()).await;
        assert!(
            matches!(out.result, Err(ApiError::NotSent { .. })),
            "{hash:?}"
        );
        assert_eq!(out.attempts, 0);
    }
    assert_eq!(seen.count(), 4, "nothing sent for . and ..");
}

#[tokio::test]
async fn requests_carry_the_bearer_key_and_the_user_agent() {
    let (base, seen) = scripted(|_| reply(200, &[], credits_body().to_string())).await;
    client(&base, 0).credits().await.unwrap();
    let entries = seen.0.lock().unwrap();
    let headers = &entries[0].2;
    assert_eq!(headers["authorization"], format!("Bearer {KEY}"));
    assert_eq!(
        headers["user-agent"],
        format!("keywarden/{}", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test]
async fn an_unreachable_api_is_a_network_error_after_the_retries() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}/api/v1");
    let out = client(&base, 2)
        .update_key("h1", &KeyPatch::default())
        .await;
    assert_eq!((out.attempts, out.http_status), (3, None));
    let err = out.result.unwrap_err();
    assert!(matches!(err, ApiError::Network { .. }), "{err:?}");
    assert!(!err.is_ambiguous());
    let explained = err.explain();
    assert!(
        explained.starts_with(&format!("cannot reach http://127.0.0.1:{port}/api/v1: ")),
        "{explained}"
    );
    assert!(
        explained.ends_with("check [openrouter].base_url and the network"),
        "{explained}"
    );
}

#[tokio::test]
async fn a_connection_closed_after_sending_is_ambiguous() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(Mutex::new(0));
    tokio::spawn({
        let accepted = accepted.clone();
        async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                *accepted.lock().unwrap() += 1;
                // Read the request, then hang up without answering.
                let mut buf = vec![0u8; 4096];
                let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut buf).await;
                drop(socket);
            }
        }
    });
    let base = format!("http://{addr}/api/v1");
    let out = client(&base, 1)
        .update_key(
            "h1",
            &KeyPatch {
                disabled: Some(true),
                ..Default::default()
            },
        )
        .await;
    let err = out.result.unwrap_err();
    assert!(err.is_ambiguous(), "{err:?}");
    // It may have been applied: not sent again.
    assert_eq!(out.attempts, 1);
    assert_eq!(*accepted.lock().unwrap(), 1);
}

#[tokio::test]
async fn a_timeout_is_ambiguous() {
    let slow = Router::new().fallback(any(|| async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        "late"
    }));
    let slow_base = serve(slow).await;
    let mut s = settings(&slow_base, 0);
    s.timeout = Duration::from_millis(300);
    let out = Client::new(s)
        .unwrap()
        .update_key("h1", &KeyPatch::default())
        .await;
    assert!(out.result.unwrap_err().is_ambiguous());
    assert_eq!(out.attempts, 1);
}

fn key_json(hash: &str, name: &str, disabled: bool) -> Value {
    json!({"hash": hash, "name": name, "label": "sk-or-v1-abc...def", "disabled": disabled,
        "limit": null, "limit_remaining": null, "limit_reset": null, "include_byok_in_limit": false,
        "usage": 1.0, "usage_daily": null, "usage_weekly": 0.5, "usage_monthly": 1.0,
        "byok_usage": 0, "byok_usage_daily": 0, "byok_usage_weekly": 0, "byok_usage_monthly": 0,
        "created_at": "2025-08-24T10:30:00Z", "updated_at": null, "creator_user_id": null})
}

/// A mock `GET /keys` over `n` keys per workspace (pages of 100 by offset).
async fn paged_keys(n: usize) -> (String, Seen) {
    let seen = Seen::default();
    let router = Router::new()
        .route(
            "/api/v1/keys",
            get(
                move |State(seen): State<Seen>,
                      uri: Uri,
                      headers: HeaderMap,
                      Query(q): Query<HashMap<String, String>>| async move {
                    seen.record(&uri, &headers);
                    let offset: usize = q.get("offset").map_or(0, |o| o.parse().unwrap());
                    let ws = q
                        .get("workspace_id")
                        .cloned()
                        .unwrap_or_else(|| "default".into());
                    let keys: Vec<Value> = (offset..n.min(offset + 100))
                        .map(|i| key_json(&format!("{ws}-{i:04}"), &format!("key-{i}"), i % 7 == 0))
                        .collect();
                    if q.get("include_disabled").map(String::as_str) != Some("true") {
                        return StatusCode::BAD_REQUEST.into_response();
                    }
                    axum::Json(json!({"data": keys})).into_response()
                },
            ),
        )
        .with_state(seen.clone());
    (serve(router).await, seen)
}

#[tokio::test]
async fn listing_reads_every_page_until_an_empty_one_in_order() {
    let (base, seen) = paged_keys(250).await;
    let keys = client(&base, 0).list_keys().await.unwrap();
    let hashes: Vec<String> = keys.iter().map(|k| k.hash.clone()).collect();
    let expected: Vec<String> = (0..250).map(|i| format!("default-{i:04}")).collect();
    assert_eq!(hashes, expected);
    let uris = seen.uris();
    for offset in [0, 100, 200, 300] {
        assert!(
            uris.contains(&format!(
                "/api/v1/keys?include_disabled=true&offset={offset}"
            )),
            "offset {offset} in {uris:?}"
        );
    }
    assert!(
        keys.iter().filter(|k| k.disabled).count() > 0,
        "disabled keys included"
    );
}

#[tokio::test]
async fn listing_covers_every_watched_workspace() {
    let (base, seen) = paged_keys(120).await;
    let mut s = settings(&base, 0);
    s.workspaces = Workspaces::Only(vec!["ws-a".into(), "ws-b".into()]);
    let keys = Client::new(s).unwrap().list_keys().await.unwrap();
    assert_eq!(keys.len(), 240);
    assert_eq!(keys[0].hash, "ws-a-0000");
    assert_eq!(keys[120].hash, "ws-b-0000");
    assert!(seen.uris().iter().all(|u| u.contains("workspace_id=ws-")));
}

#[tokio::test]
async fn an_empty_account_lists_no_keys_with_one_request() {
    let (base, seen) = paged_keys(0).await;
    assert!(client(&base, 0).list_keys().await.unwrap().is_empty());
    assert_eq!(seen.count(), 1);
}

#[tokio::test]
async fn concurrency_is_bounded_across_clones() {
    let in_flight = Arc::new(Mutex::new((0usize, 0usize)));
    let router = Router::new().fallback(any({
        let in_flight = in_flight.clone();
        move || {
            let in_flight = in_flight.clone();
            async move {
                {
                    let mut g = in_flight.lock().unwrap();
                    g.0 += 1;
                    g.1 = g.1.max(g.0);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                in_flight.lock().unwrap().0 -= 1;
                axum::Json(credits_body())
            }
        }
    }));
    let base = serve(router).await;
    let mut s = settings(&base, 0);
    s.max_concurrency = 3;
    let c = Client::new(s).unwrap();
    let calls: Vec<_> = (0..12)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.credits().await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    let max = in_flight.lock().unwrap().1;
    assert!((2..=3).contains(&max), "at most 3 in flight, saw {max}");
}

#[tokio::test]
async fn server_messages_never_echo_the_key() {
    let (base, _) = scripted(|_| {
        reply(
            401,
            &[],
            error_body(401, &format!("bad key {KEY}")).to_string(),
        )
    })
    .await;
    let err = client(&base, 0).credits().await.unwrap_err();
    let text = format!("{err} {err:?} {}", err.explain());
    assert!(!text.contains(KEY), "{text}");
    assert!(text.contains("[redacted]"));
}

#[test]
fn debug_output_never_shows_the_key() {
    let s = settings("https://openrouter.ai/api/v1", 0);
    assert_eq!(
        format!("{:?}", s.management_key),
        "ManagementKey([redacted])"
    );
    let text = format!("{s:?} {:?}", Client::new(s.clone()).unwrap());
    assert!(!text.contains(KEY), "{text}");
}

// --- Against the sandbox ---------------------------------------------------

use keywarden::sandbox::{JournalEntry, Sandbox, SandboxOptions};

/// A sandbox with `keys` generated keys, all in the default workspace.
async fn sandbox(keys: usize) -> Sandbox {
    Sandbox::start(
        "127.0.0.1:0",
        SandboxOptions {
            seed_keys: keywarden::sandbox::seed::generated(keys),
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

fn sandbox_client(sb: &Sandbox, requests_per_second: u32) -> Client {
    let mut s = settings(&sb.base_url(), 2);
    s.management_key = ManagementKey::from_text(sb.management_key().to_string()).unwrap();
    s.requests_per_second = requests_per_second;
    Client::new(s)
        .unwrap()
        .with_min_backoff(Duration::from_millis(10))
}

fn api_calls(sb: &Sandbox, method: &str) -> Vec<JournalEntry> {
    sb.account()
        .requests()
        .into_iter()
        .filter(|e| e.method == method)
        .collect()
}

#[tokio::test]
async fn listing_the_sandbox_reads_250_keys_in_three_pages_and_an_empty_fourth() {
    let sb = sandbox(250).await;
    let keys = sandbox_client(&sb, 1000).list_keys().await.unwrap();
    let listed: Vec<&str> = keys.iter().map(|k| k.hash.as_str()).collect();
    let account = sb.account().keys();
    let expected: Vec<&str> = account.iter().map(|k| k.hash.as_str()).collect();
    assert_eq!(listed.len(), 250);
    assert_eq!(listed, expected, "every key, in the API's order, once");
    let gets = api_calls(&sb, "GET");
    for offset in [0, 100, 200, 300] {
        let entry = gets
            .iter()
            .find(|e| {
                e.query.as_deref().is_some_and(|q| {
                    q.contains(&format!("offset={offset}&"))
                        || q.ends_with(&format!("offset={offset}"))
                })
            })
            .unwrap_or_else(|| panic!("no request for offset {offset}"));
        assert_eq!(entry.path, "/api/v1/keys");
        assert!(
            entry
                .query
                .as_deref()
                .unwrap()
                .contains("include_disabled=true")
        );
        assert_eq!(entry.status, 200);
    }
}

#[tokio::test]
async fn each_writable_field_is_patched_exactly_as_asked() {
    let sb = sandbox(3).await;
    let c = sandbox_client(&sb, 1000);
    let hash = sb.account().keys()[1].hash.clone();
    let patches = [
        (
            KeyPatch {
                disabled: Some(true),
                ..Default::default()
            },
            json!({"disabled": true}),
        ),
        (
            KeyPatch {
                limit: Some(Some(12.5)),
                ..Default::default()
            },
            json!({"limit": 12.5}),
        ),
        (
            KeyPatch {
                limit_reset: Some(Some(keywarden::domain::LimitReset::Weekly)),
                ..Default::default()
            },
            json!({"limit_reset": "weekly"}),
        ),
        (
            KeyPatch {
                include_byok_in_limit: Some(true),
                ..Default::default()
            },
            json!({"include_byok_in_limit": true}),
        ),
        (
            KeyPatch {
                limit: Some(None),
                ..Default::default()
            },
            json!({"limit": null}),
        ),
        (
            KeyPatch {
                limit_reset: Some(None),
                ..Default::default()
            },
            json!({"limit_reset": null}),
        ),
    ];
    for (patch, body) in &patches {
        let out = c.update_key(&hash, patch).await;
        let key = out.result.unwrap();
        assert_eq!((out.attempts, out.http_status), (1, Some(200)));
        let sent = api_calls(&sb, "PATCH").pop().unwrap();
        assert_eq!(sent.path, format!("/api/v1/keys/{hash}"));
        assert_eq!(&sent.body, body);
        let field = body.as_object().unwrap().keys().next().unwrap().clone();
        assert_eq!(
            serde_json::to_value(&key).unwrap()[&field],
            body[&field],
            "{field} as returned"
        );
    }
    let key = c.get_key(&hash).await.unwrap();
    assert!(key.disabled && key.include_byok_in_limit);
    assert_eq!((key.limit, key.limit_reset), (None, None));
}

#[tokio::test]
async fn an_unknown_hash_is_key_not_found() {
    let sb = sandbox(1).await;
    let out = sandbox_client(&sb, 1000)
        .update_key(
            "no-such-hash",
            &KeyPatch {
                disabled: Some(true),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(
        out.result.unwrap_err(),
        ApiError::KeyNotFound {
            hash: "no-such-hash".into()
        }
    );
    assert_eq!((out.attempts, out.http_status), (1, Some(404)));
}

#[tokio::test]
async fn a_wrong_key_is_auth_failed_and_not_retried() {
    let sb = sandbox(1).await;
    let mut s = settings(&sb.base_url(), 3);
    s.management_key = ManagementKey::from_text("sk-or-v1-wrong".into()).unwrap();
    let err = Client::new(s).unwrap().list_keys().await.unwrap_err();
    assert!(
        matches!(err, ApiError::AuthFailed { status: 401, .. }),
        "{err:?}"
    );
    assert_eq!(sb.account().requests().len(), 1);
}

#[tokio::test]
async fn injected_server_errors_are_retried_and_counted() {
    let sb = sandbox(2).await;
    let c = sandbox_client(&sb, 1000);
    let faults = json!({"error_rate": 1.0, "status": 502});
    reqwest::Client::new()
        .post(format!("{}/faults", sb.control_url()))
        .json(&faults)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let hash = sb.account().keys()[0].hash.clone();
    let out = c
        .update_key(
            &hash,
            &KeyPatch {
                disabled: Some(true),
                ..Default::default()
            },
        )
        .await;
    assert!(
        matches!(out.result, Err(ApiError::Server { status: 502, .. })),
        "{:?}",
        out.result
    );
    assert_eq!((out.attempts, out.http_status), (3, Some(502)));
    assert_eq!(api_calls(&sb, "PATCH").len(), 3);
}

#[tokio::test]
async fn a_dropped_connection_after_the_change_is_ambiguous() {
    let sb = sandbox(2).await;
    let c = sandbox_client(&sb, 1000);
    reqwest::Client::new()
        .post(format!("{}/faults", sb.control_url()))
        .json(&json!({"drop_rate": 1.0}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let hash = sb.account().keys()[0].hash.clone();
    let out = c
        .update_key(
            &hash,
            &KeyPatch {
                disabled: Some(true),
                ..Default::default()
            },
        )
        .await;
    let err = out.result.unwrap_err();
    assert!(err.is_ambiguous(), "{err:?}");
    // Applied once and not sent again (a retry would apply it twice).
    assert_eq!(out.attempts, 1);
    let patches = api_calls(&sb, "PATCH");
    assert_eq!(patches.len(), 1);
    assert!(
        patches.iter().all(|e| e.applied),
        "the sandbox applied it: hence `unknown`, not `failed`"
    );
}

#[tokio::test]
async fn the_requests_per_second_ceiling_holds_for_all_clones() {
    let sb = sandbox(2).await;
    let c = sandbox_client(&sb, 5);
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.credits().await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    let times: Vec<chrono::DateTime<chrono::Utc>> = sb
        .account()
        .requests()
        .iter()
        .map(|e| {
            chrono::DateTime::parse_from_rfc3339(&e.received_at)
                .unwrap()
                .to_utc()
        })
        .collect();
    assert_eq!(times.len(), 20);
    for start in &times {
        let window = times
            .iter()
            .filter(|t| **t >= *start && **t < *start + chrono::Duration::seconds(1))
            .count();
        assert!(
            window <= 6,
            "{window} requests within one second of {start}"
        );
    }
}

#[tokio::test]
async fn the_management_key_is_in_no_log_line_even_at_trace() {
    let (logs, _capturing) = capture_logs();
    let sb = sandbox(120).await;
    let key = sb.management_key().to_string();
    let c = sandbox_client(&sb, 1000);
    let keys = c.list_keys().await.unwrap();
    let out = c
        .update_key(
            &keys[0].hash,
            &KeyPatch {
                disabled: Some(true),
                ..Default::default()
            },
        )
        .await;
    out.result.unwrap();
    let _ = c.get_key("missing").await.unwrap_err();
    reqwest::Client::new()
        .post(format!("{}/faults", sb.control_url()))
        .json(&json!({"error_rate": 1.0, "status": 500}))
        .send()
        .await
        .unwrap();
    let err = c.credits().await.unwrap_err();
    tracing::error!(error = %err, "as a caller would log it");
    let text = logs.text();
    assert!(
        text.contains("openrouter request"),
        "the client logged: {text}"
    );
    assert!(text.lines().count() > 5);
    assert!(!text.contains(&key), "the key leaked into the logs");
    assert!(
        !text.contains(KEY),
        "the mock servers' key leaked into the logs"
    );
    assert!(
        !text.contains(&key[10..30]),
        "part of the key leaked into the logs"
    );
    assert!(!format!("{err} {err:?}").contains(&key));
}
