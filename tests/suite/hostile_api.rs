//! Malformed and hostile answers from the API and from budget sources
//! (issue 7, item 3): each is a clear error or a safely handled value,
//! never a panic (exit 1, not 101), never a PATCH to a wrong path, never a
//! change caused by a bad budget.
//!
//! A small axum server on 127.0.0.1:0 plays OpenRouter: it answers the key
//! listing with whatever the test chooses, applies PATCHes to the keys it
//! holds and records the raw request line of every call.

use crate::common::text;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{Method, Uri};
use axum::response::Response;
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The management key the tests hand keywarden.
const KEY: &str = "sk-or-v1-hostile-0123456789abcdef0123456789abcdef";

/// How the mock answers `GET /keys`: given the `offset`, the response.
type Listing = Arc<dyn Fn(usize) -> Response + Send + Sync>;

/// The mock OpenRouter.
#[derive(Clone)]
struct Mock {
    /// The account's keys (PATCHed in place).
    keys: Arc<Mutex<Vec<Value>>>,
    /// `GET /keys` answers; `None` serves `keys` in pages of 100.
    listing: Option<Listing>,
    /// `(method, raw path and query)` of every request.
    seen: Arc<Mutex<Vec<(Method, String)>>>,
}

impl Mock {
    fn new(keys: Vec<Value>) -> Mock {
        Mock {
            keys: Arc::new(Mutex::new(keys)),
            listing: None,
            seen: Arc::default(),
        }
    }

    fn listing(mut self, f: impl Fn(usize) -> Response + Send + Sync + 'static) -> Mock {
        self.listing = Some(Arc::new(f));
        self
    }

    /// Serves on a random loopback port; the API base URL.
    async fn serve(&self) -> String {
        let router = Router::new().fallback(handle).with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        format!("http://{addr}/api/v1")
    }

    /// The raw paths of the PATCH requests received.
    fn patch_paths(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, _)| m == Method::PATCH)
            .map(|(_, p)| p.clone())
            .collect()
    }
}

fn json_response(status: u16, body: &Value) -> Response {
    raw(status, body.to_string())
}

fn raw(status: u16, body: impl Into<Body>) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap()
}

fn offset_of(uri: &Uri) -> usize {
    uri.query()
        .unwrap_or("")
        .split('&')
        .find_map(|p| p.strip_prefix("offset="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Dispatches by hand (no router) so that every raw path reaches it as sent.
async fn handle(State(mock): State<Mock>, method: Method, uri: Uri, body: Bytes) -> Response {
    let target = uri
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    mock.seen.lock().unwrap().push((method.clone(), target));
    let path = uri.path();
    if path == "/api/v1/keys" && method == Method::GET {
        let offset = offset_of(&uri);
        if let Some(listing) = &mock.listing {
            return listing(offset);
        }
        let keys = mock.keys.lock().unwrap();
        let page: Vec<Value> = keys.iter().skip(offset).take(100).cloned().collect();
        return json_response(200, &json!({ "data": page }));
    }
    if path == "/api/v1/credits" {
        return json_response(
            200,
            &json!({"data": {"total_credits": 100.0, "total_usage": 1.0}}),
        );
    }
    if let Some(segment) = path.strip_prefix("/api/v1/keys/") {
        let hash = percent_decode_str(segment).decode_utf8_lossy().into_owned();
        let mut keys = mock.keys.lock().unwrap();
        let Some(key) = keys.iter_mut().find(|k| k["hash"] == hash.as_str()) else {
            return json_response(
                404,
                &json!({"error": {"code": 404, "message": "no such key"}}),
            );
        };
        if method == Method::PATCH {
            let patch: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if let Some(fields) = patch.as_object() {
                for (field, value) in fields {
                    key[field] = value.clone();
                }
            }
        }
        return json_response(200, &json!({ "data": key }));
    }
    json_response(
        404,
        &json!({"error": {"code": 404, "message": "not found"}}),
    )
}

/// A key as the API returns it, with `usage_monthly` as given.
fn key(hash: &str, name: &str, usage_monthly: Value) -> Value {
    json!({
        "hash": hash, "name": name, "label": "sk-or-v1-abc...def", "disabled": false,
        "limit": null, "limit_remaining": null, "limit_reset": null,
        "include_byok_in_limit": false, "usage": 100.0,
        "usage_daily": null, "usage_weekly": 100.0, "usage_monthly": usage_monthly,
        "byok_usage": 0, "byok_usage_daily": 0, "byok_usage_weekly": 0, "byok_usage_monthly": 0,
        "created_at": "2026-08-24T10:30:00Z", "updated_at": null, "creator_user_id": null
    })
}

/// A rule disabling every key whose spend in `window` reaches `usd`
/// (`usd` is TOML: a number or a source).
fn budget_rule(window: &str, usd: &str) -> String {
    format!(
        "[[rule]]\nname = \"cap\"\nkeys = \"all\"\n[rule.when]\nbudget = {{ usd = {usd}, window = \"{window}\" }}\n[rule.set]\ndisabled = true\n"
    )
}

/// A directory with a config (fast client, no guard) and a database.
struct Setup {
    dir: tempfile::TempDir,
    base_url: String,
}

impl Setup {
    fn new(base_url: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("keywarden.toml"),
            "[openrouter]\nrequests_per_second = 1000\nmax_retries = 0\ntimeout = \"20s\"\n\n\
             [daemon]\nmax_changes_per_run = 1000\nmax_disable_fraction = 1.0\n",
        )
        .unwrap();
        Setup {
            dir,
            base_url: base_url.to_string(),
        }
    }

    fn database(&self) -> PathBuf {
        self.dir.path().join("keywarden.db")
    }

    /// `keywarden ARGS` against the mock; waits for it to exit.
    async fn keywarden(&self, args: &[&str]) -> Output {
        self.command(args).output().await.unwrap()
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::from(crate::common::keywarden());
        cmd.arg("--config")
            .arg(self.dir.path().join("keywarden.toml"))
            .arg("--database")
            .arg(self.database())
            .args(args)
            .env("OPENROUTER_MANAGEMENT_KEY", KEY)
            .env("KEYWARDEN_BASE_URL", &self.base_url)
            .kill_on_drop(true);
        cmd
    }

    /// Imports `rules` (must succeed).
    async fn import(&self, rules: &str) {
        let file = self.dir.path().join("rules.toml");
        std::fs::write(&file, rules).unwrap();
        let out = self
            .keywarden(&["rules", "import", file.to_str().unwrap()])
            .await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }

    /// One SQL query's first column, as text, over the database.
    async fn column(&self, sql: &str) -> Vec<String> {
        let pool = crate::common::raw(&self.database()).await;
        let rows: Vec<(String,)> = sqlx::query_as(sql).fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows.into_iter().map(|r| r.0).collect()
    }
}

/// Exit 1 (not 101: no panic) with `expected` in the error.
fn assert_clean_failure(out: &Output, expected: &str, case: &str) {
    let stderr = text(&out.stderr) + &text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{case}: {stderr}");
    assert!(!stderr.contains("panicked"), "{case}: {stderr}");
    assert!(stderr.contains(expected), "{case}: {stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_key_listings_are_clear_errors_and_change_nothing() {
    let cases: Vec<(&str, Response, &str)> = vec![
        (
            "not JSON",
            raw(200, "<html>502 Bad Gateway</html>"),
            "invalid response",
        ),
        ("empty body", raw(200, ""), "invalid response"),
        (
            "truncated JSON",
            raw(200, r#"{"data": [{"hash": "a1", "name": "tea"#),
            "invalid response",
        ),
        (
            "data not a list",
            raw(200, r#"{"data": "keys"}"#),
            "invalid response",
        ),
        (
            "data null",
            raw(200, r#"{"data": null}"#),
            "invalid response",
        ),
        (
            "hash a number",
            raw(
                200,
                r#"{"data": [{"hash": 7, "name": "x", "disabled": false}]}"#,
            ),
            "invalid response",
        ),
        (
            "disabled a string",
            raw(
                200,
                r#"{"data": [{"hash": "h", "name": "x", "disabled": "no"}]}"#,
            ),
            "invalid response",
        ),
        (
            "usage a string",
            raw(
                200,
                r#"{"data": [{"hash": "h", "name": "x", "disabled": false, "usage_monthly": "lots"}]}"#,
            ),
            "invalid response",
        ),
        (
            "a 10 MB body",
            raw(200, format!("{{\"data\": [{}", " ".repeat(10 << 20))),
            "invalid response",
        ),
        (
            "an error status with a body that is not JSON",
            raw(418, "\u{1b}[31mteapot"),
            "HTTP 418",
        ),
    ];
    for (case, response, expected) in cases {
        let response = Arc::new(Mutex::new(Some(response)));
        let mock = Mock::new(Vec::new()).listing(move |_| {
            response
                .lock()
                .unwrap()
                .take()
                .unwrap_or_else(|| raw(500, "asked twice"))
        });
        let setup = Setup::new(&mock.serve().await);
        let out = setup.keywarden(&["keys", "list"]).await;
        assert_clean_failure(&out, expected, case);
        assert!(
            out.stdout.is_empty(),
            "{case}: printed {}",
            text(&out.stdout)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_listing_fails_the_run_and_sends_nothing() {
    let mock = Mock::new(vec![key("h1", "team-a-01", json!(99.0))]).listing(|_| {
        raw(
            200,
            r#"{"data": [{"hash": "h1", "name": "team-a-01", "disabled": nu"#,
        )
    });
    let setup = Setup::new(&mock.serve().await);
    setup.import(&budget_rule("monthly", "10.0")).await;
    let out = setup.keywarden(&["apply"]).await;
    assert_clean_failure(&out, "invalid response", "apply");
    assert!(mock.patch_paths().is_empty());
    assert!(setup.column("SELECT outcome FROM changes").await.is_empty());
    assert_eq!(
        setup.column("SELECT status FROM runs").await,
        ["error"],
        "the run is recorded as ended in error"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_body_is_cut_at_the_cap_not_read_into_memory() {
    // 64 KiB chunks for ever, with no Content-Length: only the cap ends it.
    let mock = Mock::new(Vec::new()).listing(|_| {
        let chunk = Bytes::from(vec![b' '; 64 << 10]);
        let stream = futures::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
        raw(200, Body::from_stream(stream))
    });
    let setup = Setup::new(&mock.serve().await);
    let (out, peak_kib) = with_peak_rss(setup.command(&["keys", "list"])).await;
    assert_clean_failure(&out, "larger than 16 MiB", "endless body");
    assert!(
        peak_kib < 256 * 1024,
        "peak resident memory {peak_kib} KiB reading a capped body"
    );
}

/// Runs `cmd` to its end, sampling its peak resident memory (`VmHWM`, KiB).
async fn with_peak_rss(mut cmd: tokio::process::Command) -> (Output, u64) {
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id().unwrap());
    let peak = Arc::new(Mutex::new(0u64));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            while let Ok(status) = tokio::fs::read_to_string(&status_file).await {
                if let Some(kib) = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                {
                    let mut p = peak.lock().unwrap();
                    *p = (*p).max(kib);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let out = child.wait_with_output().await.unwrap();
    sampler.abort();
    let peak = *peak.lock().unwrap();
    (out, peak)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_thousand_keys_in_a_thousand_pages_are_all_seen() {
    const KEYS: usize = 100_000;
    let one = |i: usize| key(&format!("{i:064x}"), &format!("key-{i:06}"), json!(0.5));
    let mock = Mock::new(vec![one(77_777)]).listing(move |offset| {
        let page: Vec<Value> = (offset..(offset + 100).min(KEYS)).map(one).collect();
        json_response(200, &json!({ "data": page }))
    });
    let setup = Setup::new(&mock.serve().await);
    setup
        .import(
            "[[rule]]\nname = \"one\"\nkeys = { names = [\"key-077777\"] }\n[rule.set]\ndisabled = true\n",
        )
        .await;
    let started = Instant::now();
    let (out, peak_kib) = with_peak_rss(setup.command(&["apply"])).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(stdout.contains("1 applied"), "{stdout}");
    let listed = mock
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(m, p)| m == Method::GET && p.starts_with("/api/v1/keys?"))
        .count();
    // 1,000 full pages, the empty one, and at most max_concurrency - 1
    // empty pages asked for ahead.
    assert!((1001..=1008).contains(&listed), "{listed} listing requests");
    assert_eq!(
        mock.patch_paths(),
        [format!("/api/v1/keys/{:064x}", 77_777)]
    );
    assert_eq!(
        setup
            .column("SELECT CAST(keys_seen AS TEXT) FROM runs")
            .await,
        [KEYS.to_string()]
    );
    assert!(
        peak_kib < 1024 * 1024,
        "peak resident memory {peak_kib} KiB for 100,000 keys"
    );
    eprintln!(
        "100,000 keys: run took {:?}, peak RSS {} MiB",
        started.elapsed(),
        peak_kib / 1024
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_null_window_counter_is_unknown_never_zero_and_the_run_says_why() {
    // usage_daily is null on both keys: a daily budget is not evaluated.
    let mock = Mock::new(vec![
        key("h1", "team-a-01", json!(5.0)),
        key("h2", "team-a-02", json!(5.0)),
    ]);
    let setup = Setup::new(&mock.serve().await);
    // A budget of 0 USD would be reached by a null read as zero.
    setup.import(&budget_rule("daily", "0.0")).await;
    let out = setup.keywarden(&["apply"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(mock.patch_paths().is_empty(), "{:?}", mock.patch_paths());
    let notes = setup.column("SELECT notes FROM runs").await;
    let notes: Value = serde_json::from_str(&notes[0]).unwrap();
    let reasons: Vec<&str> = notes["skips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        [
            "daily usage of key team-a-01 unknown (null or missing in the API response)",
            "daily usage of key team-a-02 unknown (null or missing in the API response)"
        ]
    );

    // The monthly counter is known: the same rule on it does disable them.
    setup.import(&budget_rule("monthly", "0.0")).await;
    let out = setup.keywarden(&["apply"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(mock.patch_paths().len(), 2);
}

/// A name with every kind of control character, and one of 10 KB.
fn hostile_names() -> (String, String) {
    let control = "evil\u{1b}[2J\u{1b}]0;owned\u{7}\r\nname\u{0}\u{9b}31m|,\"".to_string();
    let long = "n".repeat(10 * 1024);
    (control, long)
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_key_names_are_stored_exactly_and_printed_without_control_characters() {
    let (control, long) = hostile_names();
    let mock = Mock::new(vec![
        key("h1", &control, json!(99.0)),
        key("h2", &long, json!(99.0)),
    ]);
    let setup = Setup::new(&mock.serve().await);
    setup.import(&budget_rule("monthly", "10.0")).await;
    let out = setup.keywarden(&["plan"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_no_control(&out.stdout, "plan");
    assert!(text(&out.stdout).contains("evil"));
    let out = setup.keywarden(&["apply"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_no_control(&out.stdout, "apply");
    assert_eq!(mock.patch_paths().len(), 2);

    // Stored exactly.
    let mut stored = setup.column("SELECT key_name FROM changes").await;
    stored.sort();
    let mut expected = vec![control.clone(), long.clone()];
    expected.sort();
    assert_eq!(stored, expected);

    // Tables for people: no control character reaches the terminal.
    for args in [
        &["keys", "list"][..],
        &["history"][..],
        &["history", "--format", "markdown"][..],
    ] {
        let out = setup.keywarden(args).await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert_no_control(&out.stdout, &format!("{args:?}"));
        assert!(text(&out.stdout).contains("evil"), "{args:?}");
    }

    // Formats for programs: the exact names, safely quoted.
    let out = setup.keywarden(&["history", "--format", "json"]).await;
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut names: Vec<&str> = rows
        .iter()
        .map(|r| r["key_name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, expected);
    let out = setup.keywarden(&["history", "--format", "csv"]).await;
    let mut reader = csv::Reader::from_reader(&out.stdout[..]);
    let column = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "key_name")
        .unwrap();
    let mut names: Vec<String> = reader
        .records()
        .map(|r| r.unwrap()[column].to_string())
        .collect();
    names.sort();
    assert_eq!(names, expected);
    let out = setup.keywarden(&["keys", "list", "--format", "json"]).await;
    let keys: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(keys[0]["name"], control.as_str());
}

/// No C0/C1 control character but the line feed.
fn assert_no_control(out: &[u8], what: &str) {
    let out = text(out);
    let bad: Vec<char> = out
        .chars()
        .filter(|c| c.is_control() && *c != '\n')
        .collect();
    assert!(bad.is_empty(), "{what} printed control characters {bad:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn hashes_with_path_characters_are_patched_at_their_own_encoded_path() {
    let hashes = ["../x", "a/b", "%2F", "?q", "#f", "a b", "..", "."];
    let keys: Vec<Value> = hashes
        .iter()
        .enumerate()
        .map(|(i, h)| key(h, &format!("key-{i}"), json!(99.0)))
        .collect();
    let mock = Mock::new(keys);
    let setup = Setup::new(&mock.serve().await);
    setup.import(&budget_rule("monthly", "10.0")).await;
    let out = setup.keywarden(&["apply"]).await;
    // `.` and `..` cannot be one path segment: refused, nothing sent, exit 1.
    assert_clean_failure(&out, "6 applied, 2 failed", "apply");
    let mut paths = mock.patch_paths();
    paths.sort();
    let mut expected: Vec<String> = ["../x", "a/b", "%2F", "?q", "#f", "a b"]
        .iter()
        .map(|h| format!("/api/v1/keys/{}", encoded(h)))
        .collect();
    expected.sort();
    assert_eq!(paths, expected);
    for h in ["../x", "a/b", "%2F", "?q", "#f", "a b"] {
        let key = mock
            .keys
            .lock()
            .unwrap()
            .iter()
            .find(|k| k["hash"] == h)
            .cloned();
        assert_eq!(key.unwrap()["disabled"], true, "{h}");
    }
    let outcomes = setup
        .column(
            "SELECT key_hash || ' ' || outcome || COALESCE(' ' || error, '') FROM changes ORDER BY key_hash",
        )
        .await;
    assert_eq!(
        outcomes,
        [
            "#f applied",
            "%2F applied",
            ". failed not sent: \".\" is not a key hash",
            ".. failed not sent: \"..\" is not a key hash",
            "../x applied",
            "?q applied",
            "a b applied",
            "a/b applied"
        ]
    );
}

/// `hash` as one path segment: every byte outside the unreserved set
/// percent-encoded (what the mock decodes back).
fn encoded(hash: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
        .add(b' ')
        .add(b'"')
        .add(b'#')
        .add(b'<')
        .add(b'>')
        .add(b'`')
        .add(b'?')
        .add(b'{')
        .add(b'}')
        .add(b'/')
        .add(b'%');
    percent_encoding::utf8_percent_encode(hash, SEGMENT).to_string()
}

/// A budget URL answering `body` (status 200).
async fn budget_server(body: Arc<Mutex<Body>>) -> String {
    let router = Router::new().fallback(move || {
        let body = std::mem::take(&mut *body.lock().unwrap());
        async move { raw(200, body) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}/budgets")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_budget_source_is_a_source_error_and_changes_nothing() {
    let cases: Vec<(&str, Body, &str)> = vec![
        ("not JSON", Body::from("<html>oops</html>"), "not JSON"),
        ("truncated", Body::from(r#"{"usd": 1"#), "not JSON"),
        (
            "a 2 MB body",
            Body::from(" ".repeat(2 << 20)),
            "body larger than",
        ),
        (
            "negative",
            Body::from(r#"{"usd": -5}"#),
            "not a non-negative amount",
        ),
        (
            "NaN",
            Body::from(r#"{"usd": "NaN"}"#),
            "not a non-negative amount",
        ),
        ("infinite", Body::from(r#"{"usd": 1e999}"#), "not JSON"),
        (
            "wrong type",
            Body::from(r#"{"usd": [10]}"#),
            "/usd is not a number",
        ),
        (
            "wrong pointer",
            Body::from(r#"{"budget": 10}"#),
            "nothing at /usd",
        ),
    ];
    for (case, body, expected) in cases {
        let body = Arc::new(Mutex::new(body));
        let url = budget_server(body.clone()).await;
        let mock = Mock::new(vec![key("h1", "team-a-01", json!(99.0))]);
        let setup = Setup::new(&mock.serve().await);
        setup
            .import(&budget_rule(
                "monthly",
                &format!("{{ url = \"{url}\", pointer = \"/usd\" }}"),
            ))
            .await;
        let out = setup.keywarden(&["apply"]).await;
        let stderr = text(&out.stderr);
        assert!(!stderr.contains("panicked"), "{case}: {stderr}");
        assert!(mock.patch_paths().is_empty(), "{case}: a PATCH was sent");
        let errors = setup
            .column("SELECT detail FROM events WHERE kind = 'source_error'")
            .await;
        assert_eq!(errors.len(), 1, "{case}: {errors:?}");
        assert!(errors[0].contains(expected), "{case}: {}", errors[0]);

        // The control: a good answer from the same source does disable the key.
        *body.lock().unwrap() = Body::from(r#"{"usd": 10}"#);
        let out = setup.keywarden(&["apply"]).await;
        assert_eq!(out.status.code(), Some(0), "{case}: {}", text(&out.stderr));
        assert_eq!(mock.patch_paths().len(), 1, "{case}");
    }
}
