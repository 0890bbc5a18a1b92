//! The dashboard in headless Chromium (Debian's `chromium`, installed by
//! `.ci/run`), as a person sees it: every page renders with the sandbox's
//! data, with JavaScript and without; a spend pushed through the sandbox
//! shows on the open Budgets page within 2 s of the run that read it,
//! without a reload (driven over the DevTools protocol); and the
//! screenshots of the Overview and Budgets pages that `docs/` shows.

use crate::common::{Harness, seed};
use crate::daemon;
use keywarden::context::Shell;
use keywarden::service::schedule::next_run;
use keywarden::ui::{Dashboard, role};
use std::sync::Arc;

use daemon::{Daemon, PATIENCE, Setup, hash_of, sandbox};
use keywarden::sandbox::Sandbox;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What a run must show within, after it finishes (SPEC §13).
const LIVE_WITHIN: Duration = Duration::from_secs(2);

/// Headless Chromium with the dashboard's window size.
fn chromium(profile: &Path) -> Command {
    let mut cmd = crate::common::chromium(profile);
    cmd.arg("--window-size=1280,1000");
    cmd
}

/// The DOM of `url` once loaded (`--dump-dom`).
fn dump_dom(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = chromium(profile.path())
        .arg("--dump-dom")
        .arg(url)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The service with the dashboard, a budget rule over the team keys and
/// a spend on `team-a-01`.
async fn served() -> (Sandbox, Setup, Daemon, String) {
    let sandbox = sandbox(None).await;
    let port = crate::daemon::free_port();
    let setup = Setup::new(
        r#"[[rule]]
name = "team-monthly"
keys = { names = ["team-*"] }
schedule = "*/1 * * * * *"
warn_at = [0.2]
[rule.when]
budget = { usd = 50.0, window = "monthly" }
[rule.set]
disabled = true
"#,
        &format!("[ui]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    sandbox
        .account()
        .spend(&hash_of(&sandbox, "team-a-01"), 12.5, false)
        .unwrap();
    let service = Daemon::start(&setup, &sandbox, "ui-browser");
    service.wait_for("READY=1", PATIENCE).await;
    let base = format!("http://127.0.0.1:{port}");
    wait_for_json(&base, "/api/keys", |keys| {
        keys.as_array().is_some_and(|k| k.len() == 2)
    })
    .await;
    (sandbox, setup, service, base)
}

/// Polls `path` until `ready` holds of its JSON; returns it.
async fn wait_for_json(base: &str, path: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let value: Value = reqwest::get(format!("{base}{path}"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if ready(&value) {
            return value;
        }
        assert!(Instant::now() < deadline, "{path} never ready: {value:#}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_renders_with_the_sandbox_data_with_and_without_javascript() {
    let (_sandbox, _setup, _service, base) = served().await;
    let pages: [(&str, &[&str]); 5] = [
        ("/", &["Overview", "leader", "Keys", "2"]),
        (
            "/budgets",
            &["team-monthly", "team-a-01", "12.50 of 50.00", "<svg"],
        ),
        ("/keys", &["team-a-01", "team-b-01", "team-monthly"]),
        ("/history", &["History", "No changes recorded"]),
        ("/rules", &["team-monthly", "budget", "usd = 50.0"]),
    ];
    for (path, texts) in pages {
        let dom = dump_dom(&format!("{base}{path}"));
        let without_script = Page::open_with(
            &format!("{base}{path}"),
            &["--blink-settings=scriptEnabled=false"],
        )
        .html();
        for text in texts {
            assert!(dom.contains(text), "{path} lacks {text:?}:\n{dom}");
            assert!(
                without_script.contains(text),
                "{path} without JavaScript lacks {text:?}:\n{without_script}"
            );
        }
        // Without JavaScript the page refreshes itself.
        assert!(
            without_script.contains("http-equiv=\"refresh\""),
            "{without_script}"
        );
    }
}

/// A page open in Chromium, driven over the DevTools protocol.
struct Page {
    chromium: Child,
    _profile: tempfile::TempDir,
    socket: tungstenite::WebSocket<TcpStream>,
    next_id: u64,
}

impl Page {
    /// Opens `url` in headless Chromium with a DevTools port of its choice.
    fn open(url: &str) -> Page {
        Page::open_with(url, &[])
    }

    /// [`Page::open`] with more Chromium `flags`.
    fn open_with(url: &str, flags: &[&str]) -> Page {
        let profile = tempfile::tempdir().unwrap();
        let chromium = chromium(profile.path())
            .args(flags)
            .arg("--remote-debugging-port=0")
            .arg(url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let port_file = profile.path().join("DevToolsActivePort");
        let deadline = Instant::now() + PATIENCE;
        let port: u16 = loop {
            if let Some(port) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|t| t.lines().next().and_then(|l| l.parse().ok()))
            {
                break port;
            }
            assert!(
                Instant::now() < deadline,
                "chromium opened no DevTools port"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let ws_url = loop {
            // Empty until the browser's HTTP side is up.
            let targets: Value =
                serde_json::from_str(&http_get(port, "/json/list")).unwrap_or(Value::Null);
            let page = targets.as_array().into_iter().flatten().find(|t| {
                t["type"] == "page" && t["url"].as_str().is_some_and(|u| u.starts_with(url))
            });
            if let Some(page) = page {
                break page["webSocketDebuggerUrl"].as_str().unwrap().to_string();
            }
            assert!(Instant::now() < deadline, "no page for {url}: {targets:#}");
            std::thread::sleep(Duration::from_millis(50));
        };
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (socket, _) = tungstenite::client(ws_url.as_str(), stream).unwrap();
        Page {
            chromium,
            _profile: profile,
            socket,
            next_id: 1,
        }
    }

    /// The value of a JavaScript expression in the page.
    fn evaluate(&mut self, expression: &str) -> Value {
        self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        )["result"]["value"]
            .clone()
    }

    /// The page's HTML as the browser holds it, read through the DOM
    /// domain (no script runs: it works with JavaScript disabled), once
    /// its `<main>` has loaded.
    fn html(&mut self) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let root = self.call("DOM.getDocument", json!({"depth": 0}))["root"]["nodeId"].clone();
            let html = self.call("DOM.getOuterHTML", json!({"nodeId": root}))["outerHTML"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if html.contains("</main>") {
                return html;
            }
            assert!(Instant::now() < deadline, "the page never loaded: {html}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The result of a DevTools `method`.
    fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let call = json!({"id": id, "method": method, "params": params});
        self.socket
            .send(tungstenite::Message::text(call.to_string()))
            .unwrap();
        loop {
            let message = self.socket.read().unwrap();
            let Ok(text) = message.to_text() else {
                continue;
            };
            let reply: Value = serde_json::from_str(text).unwrap();
            if reply["id"] == id {
                return reply["result"].clone();
            }
        }
    }

    /// The text of the page's `<main>` once the page has loaded it.
    fn main_text(&mut self) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(text) = self
                .evaluate(
                    "document.querySelector('main') && document.querySelector('main').innerText",
                )
                .as_str()
            {
                return text.to_string();
            }
            assert!(Instant::now() < deadline, "the page never loaded");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        let _ = self.chromium.kill();
        let _ = self.chromium.wait();
    }
}

/// A plain HTTP GET on loopback (DevTools' JSON list): its body, read to
/// its `Content-Length`; empty while the browser is not ready.
fn http_get(port: u16, path: &str) -> String {
    use std::io::BufRead;
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    if write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )
    .is_err()
    {
        return String::new();
    }
    let mut reader = std::io::BufReader::new(stream);
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return String::new();
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    match reader.read_exact(&mut body) {
        Ok(()) => String::from_utf8_lossy(&body).into_owned(),
        Err(_) => String::new(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spend_shows_on_the_open_budgets_page_within_two_seconds_of_its_run_without_a_reload() {
    let (sandbox, _setup, _service, base) = served().await;
    let mut page = Page::open(&format!("{base}/budgets"));
    assert!(page.main_text().contains("12.50 of 50.00"));
    // A mark that a reload would wipe out.
    page.evaluate("window.keptAcrossUpdates = 'yes'");
    let before = wait_for_json(&base, "/api/status", |s| {
        s["last_run"]["finished_at"].is_string()
    })
    .await;
    let spent_after = before["last_run"]["id"].as_i64().unwrap();

    sandbox
        .account()
        .spend(&hash_of(&sandbox, "team-a-01"), 7.25, false)
        .unwrap();
    // The first run that starts after the spend reads it; from its end the
    // page has 2 s.
    let status = wait_for_json(&base, "/api/status", |s| {
        s["last_run"]["id"].as_i64().unwrap() > spent_after + 1
            && s["last_run"]["finished_at"].is_string()
    })
    .await;
    let finished = Instant::now();
    let deadline = finished + LIVE_WITHIN;
    loop {
        let text = page.main_text();
        if text.contains("19.75 of 50.00") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "run {} finished; 2 s later the Budgets page still shows:\n{text}",
            status["last_run"]["id"]
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        page.evaluate("window.keptAcrossUpdates"),
        "yes",
        "the page was reloaded"
    );
}

/// The screenshots' rules: a daily budget over the team keys together
/// (its `warn_before` keeps the usage readings a burn rate needs), and a
/// small one that holds `team-b-01` disabled once it is reached.
const DAY_RULES: &str = r#"[[rule]]
name = "team-daily"
keys = { names = ["team-*"] }
warn_at = [0.5]
warn_before = ["12h"]
[rule.when]
budget = { usd = 40.0, window = "daily", scope = "group" }
[rule.set]
disabled = true

[[rule]]
name = "team-b-cap"
keys = { names = ["team-b-01"] }
[rule.when]
budget = { usd = 3.0, window = "daily" }
[rule.set]
disabled = true
"#;

/// The dashboard, in this process, after 5 hours of runs a quarter of an
/// hour apart from midnight on the sandbox clock (keywarden's clock here),
/// with steady traffic on both team keys; its base URL.
async fn served_with_history() -> (Harness, String) {
    let midnight = chrono::DateTime::parse_from_rfc3339("2026-12-02T00:00:00Z")
        .unwrap()
        .to_utc();
    let h = Harness::new(
        midnight,
        vec![seed("team-a-01"), seed("team-b-01")],
        DAY_RULES,
        |_| {},
    )
    .await;
    crate::common::steady_traffic(&h.sandbox, "team-a-01", 2.0);
    crate::common::steady_traffic(&h.sandbox, "team-b-01", 1.0);
    for _ in 0..20 {
        h.sandbox.account().advance(chrono::Duration::minutes(15));
        h.apply().await;
    }
    let shell = Shell {
        config: h.config.clone(),
        store: h.store.clone(),
        clock: Arc::new(h.sandbox.account().clone()),
    };
    let dashboard = Dashboard::new(shell, h.runner.clone(), role(true), next_run, None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    keywarden::ui::start(listener, Arc::new(dashboard));
    (h, base)
}

#[tokio::test(flavor = "multi_thread")]
async fn screenshots_of_the_overview_and_budgets_pages_for_the_docs() {
    let (h, base) = served_with_history().await;
    // What the screenshots show: a known burn rate and a crossing ahead for
    // the team's day, and team-b-01 held disabled by its cap.
    let budgets = wait_for_json(&base, "/api/budgets", |rows| {
        rows.as_array()
            .into_iter()
            .flatten()
            .any(|r| r["rule"] == "team-daily" && r["rate_usd_per_hour"].is_number())
    })
    .await;
    let day = budgets
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "team-daily")
        .unwrap();
    assert!(day["crossing_at"].is_string(), "{budgets:#}");
    assert!(day["projected_usd"].as_f64().unwrap() > 40.0, "{budgets:#}");
    assert!(daemon::disabled(&h.sandbox, "team-b-01"));
    let page = dump_dom(&format!("{base}/budgets"));
    assert!(page.contains("will cross"), "{page}");
    assert!(
        page.contains("class=\"projection\""),
        "no dashed projection: {page}"
    );
    let overview = dump_dom(&format!("{base}/"));
    assert!(
        overview.contains(
            "<div class=\"label\">Held disabled by keywarden</div><div class=\"value\">1</div>"
        ) && overview.contains("data-run=\"20\""),
        "no held key, or not at the last run: {overview}"
    );
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    for (path, file) in [
        ("/", "dashboard-overview.png"),
        ("/budgets", "dashboard-budgets.png"),
    ] {
        let shot = tempfile::tempdir().unwrap();
        let png = shot.path().join(file);
        let profile = tempfile::tempdir().unwrap();
        let out = chromium(profile.path())
            .arg(format!("--screenshot={}", png.display()))
            .arg(format!("{base}{path}"))
            .output()
            .unwrap();
        assert!(
            png.exists(),
            "no screenshot of {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            std::fs::metadata(&png).unwrap().len() > 10_000,
            "{path}: a blank screenshot"
        );
        if std::env::var_os("KEYWARDEN_UPDATE_SCREENSHOTS").is_some() {
            std::fs::copy(&png, docs.join(file)).unwrap();
        }
    }
}
