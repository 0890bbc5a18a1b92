//! Secret hygiene (SPEC §2, §10; issue 7, item 4): every command, run with
//! a recognisable management key given by environment and by file, at
//! trace level in text and in JSON, against a working, a failing and a
//! refusing API; the key must be in nothing keywarden writes: standard
//! output and error, the database and its WAL, reports, backups, webhook
//! bodies. The budget source's header value and the webhook URL's secret
//! path must be in no log line either.
//!
//! `keywarden sandbox` is the one command left out: it prints its own
//! management key at start, by design (SPEC §8).

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Uri};
use axum::routing::{get, post};
use keywarden::sandbox::{Faults, Sandbox, SandboxOptions, SeedKey};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The management key: its distinctive middle is what is searched for.
const KEY: &str = "sk-or-v1-5ec2e7c0ffee5ec2e7c0ffee5ec2e7c0ffee5ec2e7c0ffee5ec2e7c0ffee";
const KEY_MARK: &str = "5ec2e7c0ffee";
/// The budget source's bearer token (from the environment, via `env:`).
const FINANCE_TOKEN: &str = "Bearer fin-70ken-d0n7-l0g-me-42";
const FINANCE_MARK: &str = "fin-70ken-d0n7-l0g-me";
/// The secret part of the webhook URLs' paths.
const HOOK_MARK: &str = "xoxb-h00k-5ecre7-pa7h";

/// What the local receiver saw: webhook bodies and budget-request headers.
#[derive(Clone, Default)]
struct Receiver {
    hooks: Arc<Mutex<Vec<(String, Bytes)>>>,
    budget_auth: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    /// Serves `/hooks/…` (POST, recorded) and `/budgets` (GET: 10 USD for
    /// team a); the base URL.
    async fn serve(&self) -> String {
        let hooks = self.hooks.clone();
        let auth = self.budget_auth.clone();
        let router = Router::new()
            .route(
                "/budgets",
                get(move |headers: HeaderMap| {
                    let value = headers
                        .get("authorization")
                        .map(|v| v.to_str().unwrap_or("").to_string())
                        .unwrap_or_default();
                    auth.lock().unwrap().push(value);
                    async { r#"{"teams": {"a": 10}}"# }
                }),
            )
            .fallback(post(move |uri: Uri, body: Bytes| {
                hooks.lock().unwrap().push((uri.path().to_string(), body));
                async { "ok" }
            }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        format!("http://{addr}")
    }
}

/// How the key reaches keywarden, and how it logs.
#[derive(Debug, Clone, Copy)]
struct Pass {
    key_in_file: bool,
    json_logs: bool,
}

/// A pass's directory, sandbox and receiver, and everything captured.
struct World {
    dir: tempfile::TempDir,
    sandbox: Sandbox,
    receiver: Receiver,
    pass: Pass,
    /// `(what, bytes)`: every output and file to search.
    captured: Vec<(String, Vec<u8>)>,
    /// Standard error only (the logs), for the header and URL secrets.
    logs: Vec<(String, String)>,
}

fn seed(name: &str) -> SeedKey {
    SeedKey {
        name: name.into(),
        ..SeedKey::default()
    }
}

impl World {
    async fn new(pass: Pass) -> World {
        let sandbox = Sandbox::start(
            "127.0.0.1:0",
            SandboxOptions {
                seed_keys: vec![seed("team-a-01"), seed("team-a-02"), seed("team-b-01")],
                management_key: Some(KEY.into()),
                ..SandboxOptions::default()
            },
        )
        .await
        .unwrap();
        let receiver = Receiver::default();
        let base = receiver.serve().await;
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("rules.toml");
        std::fs::write(
            &rules,
            format!(
                r#"[[rule]]
name = "team-a-monthly"
keys = {{ names = ["team-a-*"] }}
schedule = "*/1 * * * * *"
warn_at = [0.5]
[rule.when]
budget = {{ usd = {{ url = "{base}/budgets", pointer = "/teams/a", headers = {{ Authorization = "env:FINANCE_TOKEN" }} }}, window = "monthly", scope = "group" }}
[rule.set]
disabled = true
"#
            ),
        )
        .unwrap();
        let key_file = dir.path().join("management.key");
        std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
        let key_line = if pass.key_in_file {
            format!(
                "management_key_file = {:?}\n",
                key_file.display().to_string()
            )
        } else {
            String::new()
        };
        let events = r#"["key_disabled", "key_enabled", "change_failed", "budget_warning", "guard_tripped", "source_error", "auth_failed"]"#;
        std::fs::write(
            dir.path().join("keywarden.toml"),
            format!(
                r#"[openrouter]
{key_line}requests_per_second = 1000
max_retries = 1

[daemon]
rules_files = [{rules:?}]
max_disable_fraction = 1.0

[[notify]]
url = "{base}/hooks/T000/{HOOK_MARK}"
format = "json"
events = {events}

[[notify]]
url = "http://127.0.0.1:1/hooks/T000/{HOOK_MARK}-unreachable"
format = "slack"
events = {events}
"#
            ),
        )
        .unwrap();
        World {
            dir,
            sandbox,
            receiver,
            pass,
            captured: Vec::new(),
            logs: Vec::new(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `keywarden ARGS` at trace level, the key as this pass gives it.
    fn command(&self, args: &[&str], base_url: &str) -> std::process::Command {
        let mut cmd = crate::common::keywarden();
        cmd.arg("-vvv")
            .args([
                "--log-format",
                if self.pass.json_logs { "json" } else { "text" },
            ])
            .arg("--config")
            .arg(self.path("keywarden.toml"))
            .arg("--database")
            .arg(self.path("keywarden.db"))
            .args(args)
            .env("KEYWARDEN_BASE_URL", base_url)
            .env("FINANCE_TOKEN", FINANCE_TOKEN)
            .env("KEYWARDEN_NOTIFY_BACKOFF_MS", "100");
        if !self.pass.key_in_file {
            cmd.env("OPENROUTER_MANAGEMENT_KEY", KEY);
        }
        cmd
    }

    /// Runs a command to its end against the sandbox (or `base_url`),
    /// keeps what it printed; asserts its exit code.
    async fn keywarden_at(&mut self, args: &[&str], base_url: &str, expected: i32) {
        let mut cmd = self.command(args, base_url);
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        let what = format!("{:?} {args:?}", self.pass);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
        self.captured
            .push((format!("{what} stdout"), out.stdout.clone()));
        self.captured
            .push((format!("{what} stderr"), out.stderr.clone()));
        assert_eq!(out.status.code(), Some(expected), "{what}: {stderr}");
        self.logs.push((what, stderr));
    }

    async fn keywarden(&mut self, args: &[&str], expected: i32) {
        let base = self.sandbox.base_url();
        self.keywarden_at(args, &base, expected).await
    }

    /// Keeps a file's bytes (if it exists) for the search.
    fn capture_file(&mut self, name: &str) {
        if let Ok(bytes) = std::fs::read(self.path(name)) {
            self.captured
                .push((format!("{:?} file {name}", self.pass), bytes));
        }
    }
}

/// Every command, in an order that gives each something to show.
async fn every_command(pass: Pass) -> World {
    let mut w = World::new(pass).await;
    let rules = w.path("rules.toml").display().to_string();
    w.keywarden(&["check-config"], 0).await;
    w.keywarden(&["rules", "import", &rules], 0).await;
    w.keywarden(&["rules", "list"], 0).await;
    w.keywarden(&["rules", "export"], 0).await;
    w.keywarden(&["keys", "list"], 0).await;
    w.keywarden(&["keys", "list", "--format", "json"], 0).await;
    w.keywarden(&["keys", "list", "--format", "csv"], 0).await;

    // Team a over its 10 USD: the run disables both keys.
    for name in ["team-a-01", "team-a-02"] {
        let hash = crate::daemon::hash_of(&w.sandbox, name);
        w.sandbox.account().spend(&hash, 6.0, false).unwrap();
    }
    w.keywarden(&["plan"], 0).await;
    w.keywarden(&["plan", "--format", "json"], 0).await;
    w.keywarden(&["apply", "--dry-run"], 0).await;
    w.keywarden(&["apply"], 0).await;
    assert!(
        w.sandbox
            .account()
            .keys()
            .iter()
            .filter(|k| k.disabled)
            .count()
            == 2
    );

    for format in ["table", "json", "jsonl", "csv", "markdown"] {
        w.keywarden(&["history", "--format", format], 0).await;
    }
    for format in ["table", "json", "csv", "markdown", "html"] {
        let file = w.path(&format!("report.{format}")).display().to_string();
        w.keywarden(
            &[
                "report", "--since", "7d", "--format", format, "--output", &file,
            ],
            0,
        )
        .await;
        w.capture_file(&format!("report.{format}"));
    }
    w.keywarden(&["report", "--since", "7d"], 0).await;
    w.keywarden(
        &[
            "exempt",
            "add",
            "team-a-01",
            "--until",
            "2d",
            "--reason",
            "test",
        ],
        0,
    )
    .await;
    w.keywarden(&["exempt", "list"], 0).await;
    w.keywarden(&["exempt", "list", "--format", "json"], 0)
        .await;
    let backup = w.path("backup.db").display().to_string();
    w.keywarden(&["db", "backup", &backup], 0).await;
    w.capture_file("backup.db");

    // The service, briefly: it runs, and delivers the queued notifications.
    let mut service = w
        .command(&["run"], &w.sandbox.base_url())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + crate::daemon::PATIENCE;
    while w.receiver.hooks.lock().unwrap().len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Long enough for a few per-second runs and a failed delivery to the
    // unreachable webhook.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &service.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let out = tokio::task::spawn_blocking(move || {
        let _ = service.wait();
        service
    })
    .await
    .unwrap();
    let run_out = read_all(out);
    assert!(!run_out.1.contains("panicked"), "{}", run_out.1);
    w.captured
        .push((format!("{pass:?} run stdout"), run_out.0.into_bytes()));
    w.captured.push((
        format!("{pass:?} run stderr"),
        run_out.1.clone().into_bytes(),
    ));
    w.logs.push((format!("{pass:?} run"), run_out.1));

    // A failing API: unreachable, failing with 500s, refusing the key.
    w.keywarden_at(&["apply"], "http://127.0.0.1:1/api/v1", 1)
        .await;
    w.keywarden_at(&["keys", "list"], "http://127.0.0.1:1/api/v1", 1)
        .await;
    w.sandbox
        .account()
        .set_faults(Faults {
            error_rate: Some(1.0),
            status: Some(keywarden::sandbox::faults::OneOrMany::One(500)),
            ..Faults::default()
        })
        .unwrap();
    w.keywarden(&["apply"], 1).await;
    w.keywarden(&["keys", "list"], 1).await;
    w.sandbox.account().set_faults(Faults::default()).unwrap();
    let other = Sandbox::start("127.0.0.1:0", SandboxOptions::default())
        .await
        .unwrap();
    w.keywarden_at(&["apply"], &other.base_url(), 1).await;
    w.keywarden_at(&["keys", "list"], &other.base_url(), 1)
        .await;

    // A wrong configuration, with the key written inline where it must not be.
    let good = std::fs::read_to_string(w.path("keywarden.toml")).unwrap();
    std::fs::write(
        w.path("keywarden.toml"),
        good.replacen(
            "[openrouter]\n",
            &format!("[openrouter]\nmanagement_key = \"{KEY}\"\n"),
            1,
        ),
    )
    .unwrap();
    w.keywarden(&["check-config"], 2).await;
    std::fs::write(
        w.path("keywarden.toml"),
        good.replacen("[daemon]\n", "[daemon]\nschedul = \"nope\"\n", 1),
    )
    .unwrap();
    w.keywarden(&["check-config"], 2).await;
    w.keywarden(&["apply"], 2).await;

    for file in ["keywarden.db", "keywarden.db-wal", "keywarden.db-shm"] {
        w.capture_file(file);
    }
    w
}

/// A finished child's standard output and error.
fn read_all(mut child: std::process::Child) -> (String, String) {
    use std::io::Read;
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (out, err)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn check(w: &World) {
    // The secrets were really in play.
    let hooks = w.receiver.hooks.lock().unwrap().clone();
    assert!(!hooks.is_empty(), "{:?}: no webhook delivered", w.pass);
    assert!(
        w.receiver
            .budget_auth
            .lock()
            .unwrap()
            .iter()
            .any(|v| v == FINANCE_TOKEN),
        "{:?}: the budget source did not get its header",
        w.pass
    );
    assert!(
        w.logs
            .iter()
            .any(|(_, l)| l.contains("DEBUG") && l.contains("openrouter request")),
        "{:?}: no debug-level line was logged (-vvv is trace)",
        w.pass
    );
    assert!(
        w.logs
            .iter()
            .any(|(_, l)| l.contains("budget source") || l.contains("notification")),
        "{:?}: nothing about sources or notifications was logged",
        w.pass
    );

    // The management key is nowhere.
    let mut searched: Vec<(String, Vec<u8>)> = w.captured.clone();
    searched.extend(
        hooks
            .iter()
            .map(|(path, body)| (format!("webhook body to {path}"), body.to_vec())),
    );
    // The WAL is searched when it exists; SQLite checkpoints it into the
    // database file and removes it when the last connection closes, so its
    // presence depends on timing and it is not required here.
    for what in ["file keywarden.db", "file backup.db", "file report.html"] {
        assert!(
            searched.iter().any(|(w, _)| w.ends_with(what)),
            "{what} was not captured"
        );
    }
    for (what, bytes) in &searched {
        assert!(
            !contains(bytes, KEY_MARK),
            "the management key is in {what}"
        );
    }
    // The header value and the webhook path are in no log line.
    for (what, log) in &w.logs {
        assert!(
            !log.contains(FINANCE_MARK),
            "the finance token is in {what}: {log}"
        );
        assert!(
            !log.contains(HOOK_MARK),
            "the webhook path is in {what}: {log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_key_from_the_environment_leaks_nowhere_with_text_logs() {
    let w = every_command(Pass {
        key_in_file: false,
        json_logs: false,
    })
    .await;
    check(&w);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_key_from_a_file_leaks_nowhere_with_json_logs() {
    let w = every_command(Pass {
        key_in_file: true,
        json_logs: true,
    })
    .await;
    check(&w);
}
