//! High availability with real processes (SPEC §14): `keywarden run`
//! replicas against the in-process sandbox and one PostgreSQL database on
//! the test cluster (`.ci/postgres`). Every test holds [`SERIAL`]: they
//! share the cluster and the machine's patience. Without a cluster each
//! test says so and passes, like the store's PostgreSQL variants.

#[allow(dead_code)]
#[path = "suite/common/backends.rs"]
mod backends;
#[allow(dead_code)]
#[path = "suite/daemon/mod.rs"]
mod daemon;

use backends::TestDatabase;
use daemon::{Daemon, PATIENCE, eventually, free_port};
use keywarden::openrouter::model::KeyPatch;
use keywarden::sandbox::faults::{Faults, Latency};
use keywarden::sandbox::{Sandbox, SandboxOptions, SeedKey};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// One test at a time in this binary.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A password that must never be printed.
const SECRET: &str = "kw-never-printed-7f3a";

/// A directory with a configuration naming `url` and a rules file.
struct Site {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Site {
    fn new(url: &str, rules: &str) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let rules_path = dir.path().join("rules.toml");
        std::fs::write(&rules_path, rules).unwrap();
        Site::configured(dir, url, &rules_path)
    }

    /// Another host of the same deployment: its own directory and `url`,
    /// the same rules file (replicas share their rules files' paths, as
    /// hosts provisioned alike do: a rule belongs to the file that names it).
    fn beside(&self, url: &str) -> Site {
        Site::configured(
            tempfile::tempdir().unwrap(),
            url,
            &self.dir.path().join("rules.toml"),
        )
    }

    fn configured(dir: tempfile::TempDir, url: &str, rules_path: &std::path::Path) -> Site {
        let config = dir.path().join("keywarden.toml");
        std::fs::write(
            &config,
            format!(
                "[openrouter]\nrequests_per_second = 100\nmax_retries = 1\n\n\
                 [daemon]\nrules_files = [{:?}]\nstandby_poll = \"1s\"\n\
                 max_disable_fraction = 1.0\nmax_changes_per_run = 1000\n\n\
                 [database]\nurl = {url:?}\n",
                rules_path.display().to_string()
            ),
        )
        .unwrap();
        Site { dir, config }
    }

    /// `keywarden ARGS` on this site's configuration, with `password`.
    fn keywarden(&self, sandbox: &Sandbox, password: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_keywarden"));
        cmd.arg("--config")
            .arg(&self.config)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("KEYWARDEN_BASE_URL", sandbox.base_url())
            .env("OPENROUTER_MANAGEMENT_KEY", sandbox.management_key())
            .env("KEYWARDEN_DATABASE_PASSWORD", password)
            .env("KEYWARDEN_NOTIFY_BACKOFF_MS", "200")
            .env("RUST_LOG", "keywarden=debug")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        cmd
    }

    /// `keywarden ARGS` to its end.
    async fn output(&self, sandbox: &Sandbox, password: &str, args: &[&str]) -> Output {
        let mut cmd = self.keywarden(sandbox, password, args);
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    }

    /// `keywarden run` as a replica.
    fn replica(&self, sandbox: &Sandbox, password: &str) -> Daemon {
        let mut cmd = self.keywarden(sandbox, password, &["run"]);
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        Daemon::wrap(cmd.spawn().unwrap(), None)
    }
}

/// The keys of the failover tests: `k-00` … `k-29`, each over its budget.
const KEYS: usize = 30;

/// How often a standby tries to take the lead in these tests.
const STANDBY_POLL: Duration = Duration::from_secs(1);

/// A sandbox with [`KEYS`] keys, each spent past the `cap` rule's budget,
/// answering each request after 20 to 120 ms, so that PATCHes are in
/// flight when a leader dies.
async fn over_budget_sandbox() -> Sandbox {
    let sandbox = Sandbox::start(
        "127.0.0.1:0",
        SandboxOptions {
            seed_keys: (0..KEYS)
                .map(|n| SeedKey {
                    name: format!("k-{n:02}"),
                    ..SeedKey::default()
                })
                .collect(),
            ..SandboxOptions::default()
        },
    )
    .await
    .unwrap();
    for key in sandbox.account().keys() {
        sandbox.account().spend(&key.hash, 12.0, false).unwrap();
    }
    sandbox
        .account()
        .set_faults(Faults {
            latency_ms: Some(Latency::Range([20, 120])),
            ..Faults::default()
        })
        .unwrap();
    sandbox
}

/// Whether every key of the sandbox is disabled.
fn all_disabled(sandbox: &Sandbox) -> bool {
    sandbox.account().keys().iter().all(|k| k.disabled)
}

/// Re-enables every key behind keywarden's back (as a person would, not
/// through the API: the sandbox's journal holds keywarden's requests only).
fn enable_all(sandbox: &Sandbox) {
    for key in sandbox.account().keys() {
        let patch = KeyPatch {
            disabled: Some(false),
            ..KeyPatch::default()
        };
        sandbox.account().patch_key(&key.hash, &patch).unwrap();
    }
}

/// The pid the `leaders` row names, if any.
async fn leader_pid(conn: &mut sqlx::PgConnection) -> Option<i64> {
    sqlx::query_scalar("SELECT pid FROM leaders WHERE id = 1")
        .fetch_optional(&mut *conn)
        .await
        .ok()
        .flatten()
}

/// Waits until the `leaders` row names one of `pids` other than `not`;
/// which, and when.
async fn new_leader(
    conn: &mut sqlx::PgConnection,
    pids: &[i64],
    not: Option<i64>,
) -> Option<(i64, Instant)> {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if let Some(pid) = leader_pid(conn).await
            && Some(pid) != not
            && pids.contains(&pid)
        {
            return Some((pid, Instant::now()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// A small deterministic generator for the kill points.
struct Seeded(u64);

impl Seeded {
    /// The next value in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The PATCHes the sandbox applied, by key hash.
fn applied_patches(sandbox: &Sandbox) -> BTreeMap<String, i64> {
    let mut by_key = BTreeMap::new();
    for r in sandbox.account().requests() {
        if r.method == "PATCH" && r.applied {
            let hash = r.path.rsplit('/').next().unwrap().to_string();
            *by_key.entry(hash).or_insert(0) += 1;
        }
    }
    by_key
}

/// The rows still open; and the `applied` change rows, by key hash. Read
/// in that order: once none is open, every row read after is final (read
/// the other way round, a completion committed between the two reads was
/// missed by the first and not counted open by the second).
async fn applied_rows(conn: &mut sqlx::PgConnection) -> (BTreeMap<String, i64>, i64) {
    let open: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM changes WHERE outcome IN ('pending', 'unknown')")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT key_hash, COUNT(*) FROM changes WHERE outcome = 'applied' GROUP BY key_hash",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    (rows.into_iter().collect(), open)
}

/// Waits until every key is disabled and no change row is left open: the
/// round is over only once the new leader has also resolved the rows the
/// killed one left `pending`. It resolves a row by reading its key (SPEC
/// §4.5), so re-enabling the keys before that read would make a PATCH that
/// did land read as one that did not (`failed`, and sent again).
async fn converged(conn: &mut sqlx::PgConnection, sandbox: &Sandbox) -> bool {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let settled = all_disabled(sandbox) && applied_rows(conn).await.1 == 0;
        if settled || Instant::now() > deadline {
            return settled;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until no row is left open, then checks that every PATCH the
/// sandbox applied is exactly one `applied` history row, key by key.
async fn history_matches_the_journal(conn: &mut sqlx::PgConnection, sandbox: &Sandbox) {
    let deadline = Instant::now() + PATIENCE;
    let (rows, open) = loop {
        let (rows, open) = applied_rows(conn).await;
        if open == 0 || Instant::now() > deadline {
            break (rows, open);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(open, 0, "rows left pending or unknown");
    assert_eq!(
        rows,
        applied_patches(sandbox),
        "history and the journal differ"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_sigkills_of_the_leader_mid_run_lose_nothing_and_a_standby_takes_over_in_time() {
    let _serial = SERIAL.lock().await;
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let sandbox = over_budget_sandbox().await;
    let site = Site::new(&db.url, &daemon::budget_rule("k-*", 10.0));
    let mut replicas: Vec<Daemon> = (0..3)
        .map(|_| site.replica(&sandbox, &db.password))
        .collect();
    let mut conn = connect(&db).await;
    let pids = |replicas: &[Daemon]| -> Vec<i64> {
        replicas.iter().map(|d| i64::from(d.child.id())).collect()
    };
    let (mut leader, _) = new_leader(&mut conn, &pids(&replicas), None)
        .await
        .expect("a replica leads");
    assert!(converged(&mut conn, &sandbox).await);

    let mut seed = Seeded(0x5eed_0017);
    let mut takeovers = Vec::new();
    for round in 0..20 {
        enable_all(&sandbox);
        // A kill point from before the next run's first PATCH to its end.
        tokio::time::sleep(Duration::from_millis(seed.below(1500))).await;
        let n = replicas
            .iter()
            .position(|d| i64::from(d.child.id()) == leader)
            .expect("the leader is one of ours");
        replicas[n].child.kill().unwrap();
        let killed = Instant::now();
        replicas[n].child.wait().unwrap();
        let live: Vec<i64> = pids(&replicas)
            .into_iter()
            .filter(|&p| p != leader)
            .collect();
        let (next, at) = new_leader(&mut conn, &live, Some(leader))
            .await
            .unwrap_or_else(|| panic!("round {round}: no standby took over"));
        let took = at - killed;
        takeovers.push(took);
        assert!(
            took <= STANDBY_POLL + Duration::from_secs(2),
            "round {round}: the takeover took {took:?}"
        );
        replicas[n] = site.replica(&sandbox, &db.password);
        leader = next;
        assert!(
            converged(&mut conn, &sandbox).await,
            "round {round}: the keys did not converge"
        );
    }
    // The last leader's settling run: every open row resolved.
    assert!(eventually(PATIENCE, || all_disabled(&sandbox)).await);
    history_matches_the_journal(&mut conn, &sandbox).await;
    let claimed: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM claims WHERE field = 'disabled' AND value = 'true'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(claimed, KEYS as i64, "a claim was lost");
    let ms: Vec<u128> = takeovers.iter().map(Duration::as_millis).collect();
    println!("takeover times over 20 SIGKILLs of the leader (ms): {ms:?}");
}

/// A loopback TCP proxy the test controls: forwards each connection to
/// `target` until [`Proxy::cut`] closes both sides of every one (and
/// refuses new ones), and remembers when a client last sent anything.
struct Proxy {
    addr: std::net::SocketAddr,
    state: std::sync::Arc<ProxyState>,
}

#[derive(Default)]
struct ProxyState {
    cut: std::sync::atomic::AtomicBool,
    last_sent: std::sync::Mutex<Option<Instant>>,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Proxy {
    async fn start(target: std::net::SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = std::sync::Arc::new(ProxyState::default());
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if shared.cut.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let Ok(server) = tokio::net::TcpStream::connect(target).await else {
                    continue;
                };
                let state = shared.clone();
                let task = tokio::spawn(async move {
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    let up = async {
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
                            match client_read.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    *state.last_sent.lock().unwrap() = Some(Instant::now());
                                    if server_write.write_all(&buf[..n]).await.is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                    };
                    let down = tokio::io::copy(&mut server_read, &mut client_write);
                    tokio::select! { _ = up => {}, _ = down => {} }
                });
                shared.tasks.lock().unwrap().push(task);
            }
        });
        Proxy { addr, state }
    }

    /// Closes every connection, both sides, and refuses new ones.
    fn cut(&self) {
        self.state
            .cut
            .store(true, std::sync::atomic::Ordering::SeqCst);
        for task in self.state.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    /// When a client last sent something through.
    fn last_sent(&self) -> Option<Instant> {
        *self.state.last_sent.lock().unwrap()
    }
}

/// `url` with its host and port replaced by `addr`.
fn via(url: &str, addr: std::net::SocketAddr) -> String {
    let mut url = url::Url::parse(url).unwrap();
    url.set_port(Some(addr.port())).unwrap();
    url.to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leader_cut_from_the_database_stops_sending_within_a_second_and_a_standby_takes_over() {
    let _serial = SERIAL.lock().await;
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let sandbox = over_budget_sandbox().await;
    let database: std::net::SocketAddr = {
        let url = url::Url::parse(&db.url).unwrap();
        format!("127.0.0.1:{}", url.port().unwrap())
            .parse()
            .unwrap()
    };
    let sandbox_addr: std::net::SocketAddr = url::Url::parse(&sandbox.base_url())
        .unwrap()
        .socket_addrs(|| None)
        .unwrap()[0];
    // The first replica reaches the database and the API through proxies.
    let db_proxy = Proxy::start(database).await;
    let api_proxy = Proxy::start(sandbox_addr).await;
    let rules = daemon::budget_rule("k-*", 10.0);
    let cut_site = Site::new(&via(&db.url, db_proxy.addr), &rules);
    let site = cut_site.beside(&db.url);
    let mut through_proxy = cut_site.keywarden(&sandbox, &db.password, &["run"]);
    let api = format!(
        "http://{}{}",
        api_proxy.addr,
        url::Url::parse(&sandbox.base_url()).unwrap().path()
    );
    through_proxy
        .env("KEYWARDEN_BASE_URL", api)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let first = Daemon::wrap(through_proxy.spawn().unwrap(), None);
    let mut conn = connect(&db).await;
    let first_pid = i64::from(first.child.id());
    assert!(
        new_leader(&mut conn, &[first_pid], None).await.is_some(),
        "{}",
        first.stderr()
    );
    assert!(converged(&mut conn, &sandbox).await);
    let second = site.replica(&sandbox, &db.password);
    let second_pid = i64::from(second.child.id());

    enable_all(&sandbox);
    assert!(
        eventually(PATIENCE, || sandbox
            .account()
            .requests()
            .iter()
            .filter(|r| r.method == "PATCH")
            .count()
            >= KEYS + 2)
        .await
    );
    // Two PATCHes into the run that disables the keys again: cut it there.
    db_proxy.cut();
    let cut = Instant::now();
    let Some((leader, at)) = new_leader(&mut conn, &[second_pid], Some(first_pid)).await else {
        let locks: Vec<(i32, Option<String>)> = sqlx::query_as(
            "SELECT l.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid) \
             WHERE l.locktype = 'advisory'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        panic!(
            "the standby did not take over; advisory locks {locks:?}\nfirst:\n{}\nsecond:\n{}",
            first.stderr(),
            second.stderr()
        );
    };
    assert_eq!(leader, second_pid);
    assert!(
        at - cut <= STANDBY_POLL + Duration::from_secs(2),
        "{:?}",
        at - cut
    );
    assert!(eventually(PATIENCE, || all_disabled(&sandbox)).await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let last = api_proxy
        .last_sent()
        .expect("the first replica sent requests");
    assert!(
        last <= cut + Duration::from_secs(1),
        "the cut-off leader sent {:?} after the cut:\n{}",
        last - cut,
        first.stderr()
    );
    let (_, open) = applied_rows(&mut conn).await;
    assert_eq!(open, 0, "rows left open");
}

/// A PostgreSQL cluster of one test's own (`.ci/postgres`), removed when
/// dropped: a test that restarts PostgreSQL never touches the shared one.
struct PrivateCluster {
    dir: String,
    url: String,
    password: String,
}

impl PrivateCluster {
    /// Starts one on a free port, with a `keywarden` database.
    async fn start() -> PrivateCluster {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/postgres");
        let out = Command::new(script)
            .arg("start")
            .env("KEYWARDEN_TEST_PG_PORT", free_port().to_string())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let env: BTreeMap<String, String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
            .collect();
        let admin = env["KEYWARDEN_TEST_POSTGRES_URL"].clone();
        let cluster = PrivateCluster {
            dir: env["KEYWARDEN_TEST_PG_DIR"].clone(),
            url: admin.replace("/postgres", "/keywarden"),
            password: env["KEYWARDEN_TEST_POSTGRES_PASSWORD"].clone(),
        };
        let mut conn = connect_to(&admin, &cluster.password).await;
        sqlx::query("CREATE DATABASE keywarden")
            .execute(&mut conn)
            .await
            .unwrap();
        cluster
    }

    /// `pg_ctl restart -m fast -w`: every session ends.
    fn restart(&self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/postgres");
        let out = Command::new(script)
            .args(["pg_ctl", &self.dir, "restart", "-m", "fast", "-w"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/postgres");
        let _ = Command::new(script).args(["stop", &self.dir]).status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_postgresql_restart_under_a_running_service_loses_nothing() {
    let _serial = SERIAL.lock().await;
    if backends::cluster().is_none() {
        return;
    }
    let cluster = PrivateCluster::start().await;
    let sandbox = over_budget_sandbox().await;
    let site = Site::new(&cluster.url, &daemon::budget_rule("k-*", 10.0));
    let service = site.replica(&sandbox, &cluster.password);
    let pid = i64::from(service.child.id());
    let mut conn = connect_to(&cluster.url, &cluster.password).await;
    assert!(
        new_leader(&mut conn, &[pid], None).await.is_some(),
        "{}",
        service.stderr()
    );
    assert!(converged(&mut conn, &sandbox).await);

    enable_all(&sandbox);
    cluster.restart();
    let mut conn = connect_to(&cluster.url, &cluster.password).await;
    assert!(
        eventually(PATIENCE, || all_disabled(&sandbox)).await,
        "{}",
        service.stderr()
    );
    history_matches_the_journal(&mut conn, &sandbox).await;
    assert_eq!(
        leader_pid(&mut conn).await,
        Some(pid),
        "{}",
        service.stderr()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manual_apply_while_another_leads_exits_1_naming_it_or_waits_with_wait() {
    let _serial = SERIAL.lock().await;
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let store = db.store().await;
    let holder = keywarden::store::leader::Leader {
        host: "host-x".to_string(),
        pid: 4242,
        since: "2026-12-01T10:00:00Z".parse().unwrap(),
    };
    let leading = keywarden::store::leader::Leading::not_yet();
    let keywarden::store::leader::Attempt::Led { lock, .. } =
        store.try_lead(&holder, &leading).await.unwrap()
    else {
        panic!("the test could not take the lead");
    };
    let sandbox = over_budget_sandbox().await;
    let site = Site::new(&db.url, &daemon::budget_rule("k-*", 10.0));
    let import = site
        .output(&sandbox, &db.password, &["rules", "import", "rules.toml"])
        .await;
    assert!(import.status.success(), "{}", stderr(&import));

    let out = site.output(&sandbox, &db.password, &["apply"]).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("keywarden on host-x pid 4242 leads on this database"),
        "{err}"
    );
    assert!(err.contains("--wait"), "{err}");
    assert!(
        sandbox.account().requests().is_empty(),
        "a request was sent"
    );

    let mut waiting = site.keywarden(&sandbox, &db.password, &["apply", "--wait"]);
    waiting.stdout(Stdio::null()).stderr(Stdio::piped());
    let waiting = Daemon::wrap(waiting.spawn().unwrap(), None);
    assert!(
        eventually(PATIENCE, || waiting.stderr().contains(
            "waiting for the lead, held by keywarden on host-x pid 4242"
        ))
        .await,
        "{}",
        waiting.stderr()
    );
    assert!(
        sandbox.account().requests().is_empty(),
        "a request was sent"
    );
    lock.release().await;
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Starts `keywarden run` on `url` with `password` and checks that it
/// exits 2 at once, saying what `says`, never the password, having sent
/// nothing.
async fn refused_at_start(url: &str, password: &str, says: &[&str]) {
    let sandbox = daemon::sandbox(None).await;
    let site = Site::new(url, &daemon::budget_rule("team-*", 10.0));
    let out = site.output(&sandbox, password, &["run"]).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for text in says {
        assert!(err.contains(text), "{err}");
    }
    assert!(!err.contains(password), "{err}");
    assert!(
        sandbox.account().requests().is_empty(),
        "a request was sent"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_database_exits_2_at_start_without_the_password() {
    let _serial = SERIAL.lock().await;
    if backends::cluster().is_none() {
        return;
    }
    let url = format!("postgres://keywarden@127.0.0.1:{}/keywarden", free_port());
    refused_at_start(
        &url,
        SECRET,
        &["cannot connect to the database", "127.0.0.1"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_exits_2_at_start_without_the_password() {
    let _serial = SERIAL.lock().await;
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let says = [
        "cannot connect to the database",
        "password authentication failed",
    ];
    refused_at_start(&db.url, SECRET, &says).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schema_newer_than_the_binary_is_refused_and_nothing_touched() {
    let _serial = SERIAL.lock().await;
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    db.store().await.close().await;
    let mut admin = connect(&db).await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', true, '\\x00'::bytea, 0)",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    let before = tables_and_rows(&mut admin).await;

    let says = [
        "schema version 9999, newer than this keywarden",
        "nothing was changed",
    ];
    refused_at_start(&db.url, &db.password, &says).await;
    assert_eq!(tables_and_rows(&mut admin).await, before);
}

/// A connection of the test's own to `db`.
async fn connect(db: &TestDatabase) -> sqlx::PgConnection {
    connect_to(&db.url, &db.password).await
}

/// A connection of the test's own to `url`.
async fn connect_to(url: &str, password: &str) -> sqlx::PgConnection {
    use sqlx::Connection as _;
    use std::str::FromStr as _;
    let options = sqlx::postgres::PgConnectOptions::from_str(url)
        .unwrap()
        .password(password);
    sqlx::PgConnection::connect_with(&options).await.unwrap()
}

/// Every table of the public schema and its row count.
async fn tables_and_rows(conn: &mut sqlx::PgConnection) -> Vec<(String, i64)> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let mut out = Vec::new();
    for table in tables {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM \"{table}\""))
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        out.push((table, n));
    }
    out
}
