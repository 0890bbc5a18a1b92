//! A harness for the service tests: `keywarden run` as a child process
//! against an in-process sandbox, with a systemd notification socket the
//! test owns, and its standard error collected.

use keywarden::sandbox::{Sandbox, SandboxOptions, SeedKey};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UnixDatagram;
use tokio::sync::Mutex as AsyncMutex;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

/// A sandbox with keys `team-a-01` and `team-b-01`.
pub async fn sandbox(start: Option<chrono::DateTime<chrono::Utc>>) -> Sandbox {
    let seed = |name: &str| SeedKey {
        name: name.into(),
        ..SeedKey::default()
    };
    Sandbox::start(
        "127.0.0.1:0",
        SandboxOptions {
            seed_keys: vec![seed("team-a-01"), seed("team-b-01")],
            start,
            ..SandboxOptions::default()
        },
    )
    .await
    .unwrap()
}

/// The hash of the sandbox key named `name`.
pub fn hash_of(sandbox: &Sandbox, name: &str) -> String {
    sandbox
        .account()
        .keys()
        .into_iter()
        .find(|k| k.name == name)
        .unwrap_or_else(|| panic!("no key {name}"))
        .hash
}

/// Whether the sandbox key named `name` is disabled.
pub fn disabled(sandbox: &Sandbox, name: &str) -> bool {
    sandbox
        .account()
        .keys()
        .into_iter()
        .find(|k| k.name == name)
        .unwrap()
        .disabled
}

/// How long a test waits for what takes a moment on an idle machine (a
/// key disabled, `READY=1`, a webhook delivered): generous, so that a
/// machine loaded at twice its cores passes too. Waits end as soon as what
/// they wait for happens.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Polls `cond` every 50 ms until it holds or `within` passes.
pub async fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cond()
}

/// A rule disabling the keys matching `names` once their monthly spend reaches `usd`.
pub fn budget_rule(names: &str, usd: f64) -> String {
    format!(
        r#"[[rule]]
name = "cap"
keys = {{ names = ["{names}"] }}
schedule = "*/1 * * * * *"
warn_at = [0.5]
[rule.when]
budget = {{ usd = {usd}, window = "monthly" }}
[rule.set]
disabled = true
"#
    )
}

/// A test's directory: config, rules file, database, notification socket.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub rules: PathBuf,
    pub database: PathBuf,
}

impl Setup {
    /// Writes the rules file and a config naming it, plus `extra` TOML.
    pub fn new(rules: &str, extra: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let rules_path = dir.path().join("rules.toml");
        std::fs::write(&rules_path, rules).unwrap();
        let config = dir.path().join("keywarden.toml");
        std::fs::write(
            &config,
            format!(
                "[openrouter]\nrequests_per_second = 100\nmax_retries = 1\n\n[daemon]\nrules_files = [{:?}]\n\n{extra}",
                rules_path.display().to_string()
            ),
        )
        .unwrap();
        let database = dir.path().join("keywarden.db");
        Setup {
            dir,
            config,
            rules: rules_path,
            database,
        }
    }

    /// `keywarden run` with this setup, against `sandbox`.
    pub fn command(&self, sandbox: &Sandbox, notify_socket: Option<&Path>) -> Command {
        let mut cmd = self.keywarden(sandbox, &["run"]);
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        if let Some(socket) = notify_socket {
            cmd.env("NOTIFY_SOCKET", socket)
                .env("WATCHDOG_USEC", "2000000");
        }
        cmd
    }

    /// Runs another command (`apply`, `rules import …`) on this setup's
    /// configuration and database, against `sandbox`, to its end.
    pub async fn cli(&self, sandbox: &Sandbox, args: &[&str]) -> std::process::Output {
        let mut cmd = self.keywarden(sandbox, args);
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    }

    /// `keywarden --config … --database … ARGS` with the sandbox's URL and key.
    fn keywarden(&self, sandbox: &Sandbox, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_keywarden"));
        cmd.arg("--config")
            .arg(&self.config)
            .arg("--database")
            .arg(&self.database)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("KEYWARDEN_BASE_URL", sandbox.base_url())
            .env("OPENROUTER_MANAGEMENT_KEY", sandbox.management_key())
            .env("KEYWARDEN_NOTIFY_BACKOFF_MS", "200")
            .env("RUST_LOG", "keywarden=debug")
            .stdin(Stdio::null());
        cmd
    }
}

/// A running `keywarden run`.
pub struct Daemon {
    pub child: Child,
    pub stderr: Arc<Mutex<String>>,
    /// The notification datagrams, drained from the socket as they come
    /// (as systemd does: a full socket would block the service).
    pub notify: Option<AsyncMutex<UnboundedReceiver<String>>>,
}

impl Daemon {
    /// Starts the service with a notification socket in the setup's directory.
    pub fn start(setup: &Setup, sandbox: &Sandbox, name: &str) -> Daemon {
        let socket_path = setup.dir.path().join(format!("{name}.sock"));
        let notify = UnixDatagram::bind(&socket_path).unwrap();
        let child = setup.command(sandbox, Some(&socket_path)).spawn().unwrap();
        Daemon::wrap(child, Some(notify))
    }

    /// Collects the standard error of `child` in the background.
    pub fn wrap(mut child: Child, notify: Option<UnixDatagram>) -> Daemon {
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let notify = notify.map(|socket| {
            let (tx, rx) = unbounded_channel();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                while let Ok(n) = socket.recv(&mut buf).await {
                    if tx
                        .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                        .is_err()
                    {
                        break;
                    }
                }
            });
            AsyncMutex::new(rx)
        });
        Daemon {
            child,
            stderr,
            notify,
        }
    }

    /// The next notification datagram, within `within`.
    pub async fn next_notification(&self, within: Duration) -> Option<String> {
        let mut rx = self.notify.as_ref().unwrap().lock().await;
        tokio::time::timeout(within, rx.recv()).await.ok().flatten()
    }

    /// Waits for a datagram holding `line` (e.g. `READY=1`), returning
    /// everything received before it (and it).
    pub async fn wait_for(&self, line: &str, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Some(msg) = self.next_notification(left).await else {
                break;
            };
            let found = msg.lines().any(|l| l == line);
            seen.push(msg);
            if found {
                return seen;
            }
        }
        panic!(
            "no {line} within {within:?}; received {seen:?}; stderr:\n{}",
            self.stderr()
        );
    }

    /// Sends a signal (`HUP`, `TERM`, …) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit, within `within`.
    pub async fn exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running; stderr:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What it wrote to standard error so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on (bound, then let go).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
