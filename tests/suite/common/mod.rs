//! A test harness shared by the integration tests: an in-process sandbox on
//! a random loopback port, a fresh database, and a runner whose clock is the
//! sandbox's clock, so moving the sandbox clock moves keywarden's "now".

pub mod backends;

use backends::{Backend, TestDatabase};
use chrono::{DateTime, TimeZone, Utc};
use keywarden::config::{Config, ManagementKey};
use keywarden::domain::{Field, FieldValue};
use keywarden::engine::ChangeKind;
use keywarden::engine::plan::{Change, FieldChange};
use keywarden::openrouter::Client;
use keywarden::openrouter::client::ClientSettings;
use keywarden::rules::model::Origin;
use keywarden::run::{RunReport, RunRequest, Runner, Trigger};
use keywarden::sandbox::{JournalEntry, Sandbox, SandboxOptions, SeedKey};
use keywarden::store::Store;
use keywarden::store::runs::{ChangeRow, HistoryFilter};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A change that disables the key `key_hash` (named `key_name`) for
/// `rule`, "over budget", not held.
pub fn disable_change(key_hash: &str, key_name: &str, rule: &str, kind: ChangeKind) -> Change {
    Change {
        key_hash: key_hash.into(),
        key_name: key_name.into(),
        rule: rule.into(),
        kind,
        fields: BTreeMap::from([(
            Field::Disabled,
            FieldChange {
                from: FieldValue::Disabled(false),
                to: FieldValue::Disabled(true),
            },
        )]),
        reason: "over budget".into(),
        held: None,
    }
}

/// The sandbox, a database and a runner wired together.
pub struct Harness {
    pub sandbox: Sandbox,
    pub store: Store,
    pub runner: Runner,
    pub config: Arc<Config>,
    pub dir: tempfile::TempDir,
    /// The PostgreSQL database of a harness on PostgreSQL (dropped with it).
    pub postgres: Option<TestDatabase>,
}

/// A direct connection to a test's database, past the store's API, as an
/// operator's `sqlite3` or `psql` reads it.
pub enum RawDatabase {
    /// The SQLite file.
    Sqlite(sqlx::SqlitePool),
    /// The PostgreSQL database.
    Postgres(sqlx::PgPool),
}

impl RawDatabase {
    /// Connects to `postgres` when given, else to the SQLite file `path`.
    pub async fn connect(path: &std::path::Path, postgres: Option<&TestDatabase>) -> RawDatabase {
        match postgres {
            None => RawDatabase::Sqlite(raw(path).await),
            Some(db) => {
                use std::str::FromStr as _;
                let options = sqlx::postgres::PgConnectOptions::from_str(&db.url)
                    .unwrap()
                    .password(&db.password);
                RawDatabase::Postgres(sqlx::PgPool::connect_with(options).await.unwrap())
            }
        }
    }

    /// The rows of `sql`, its placeholders `$1…` bound to `binds`.
    pub async fn rows<T>(&self, sql: &str, binds: &[i64]) -> Vec<T>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
            + Send
            + Unpin,
    {
        match self {
            RawDatabase::Sqlite(pool) => {
                let mut query = sqlx::query_as(sql);
                for bind in binds {
                    query = query.bind(*bind);
                }
                query.fetch_all(pool).await.unwrap()
            }
            RawDatabase::Postgres(pool) => {
                let mut query = sqlx::query_as(sql);
                for bind in binds {
                    query = query.bind(*bind);
                }
                query.fetch_all(pool).await.unwrap()
            }
        }
    }

    /// Runs `sql` (one or more statements), which binds nothing.
    pub async fn execute(&self, sql: &str) {
        match self {
            RawDatabase::Sqlite(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop),
            RawDatabase::Postgres(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Closes the connections.
    pub async fn close(self) {
        match self {
            RawDatabase::Sqlite(pool) => pool.close().await,
            RawDatabase::Postgres(pool) => pool.close().await,
        }
    }
}

/// Client settings from `config`, with the sandbox's management key.
pub fn settings(config: &Config, key: &str) -> ClientSettings {
    ClientSettings::with_key(config, ManagementKey::from_text(key.to_string()).unwrap())
}

/// A seed key with a name, a limit and a reset.
pub fn seed(name: &str) -> SeedKey {
    SeedKey {
        name: name.into(),
        ..SeedKey::default()
    }
}

/// A sandbox on a free loopback port with `keys` generated keys
/// (`team-a-01`, `team-b-01`, …), following real time.
pub async fn sandbox_with_keys(keys: usize) -> Sandbox {
    Sandbox::start(
        "127.0.0.1:0",
        SandboxOptions {
            keys,
            ..SandboxOptions::default()
        },
    )
    .await
    .expect("sandbox starts")
}

/// Steady sandbox traffic of `usd_per_hour` on every key whose name
/// matches `glob`, spent as the sandbox clock moves.
pub fn steady_traffic(sandbox: &Sandbox, glob: &str, usd_per_hour: f64) {
    sandbox
        .account()
        .add_traffic(keywarden::sandbox::traffic::TrafficSpec {
            names: Some(vec![glob.into()]),
            hashes: None,
            usd_per_hour,
            pattern: keywarden::sandbox::traffic::Pattern::Steady,
            seed: 7,
            byok: false,
        })
        .unwrap();
}

/// 10:00 UTC on a day of November 2026.
pub fn nov(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, 10, 0, 0).unwrap()
}

impl Harness {
    /// Starts everything at `start`, with `keys` and the rules in `rules_toml`,
    /// on a SQLite file. `tweak` adjusts the configuration (guard limits,
    /// dry run…).
    pub async fn new(
        start: DateTime<Utc>,
        keys: Vec<SeedKey>,
        rules_toml: &str,
        tweak: impl FnOnce(&mut Config),
    ) -> Harness {
        Harness::new_on(Backend::Sqlite, start, keys, rules_toml, tweak).await
    }

    /// [`Harness::new`] on `backend`: a SQLite file, or a fresh database on
    /// the PostgreSQL test cluster (which must be there: see
    /// `crate::on_both_backends!`).
    pub async fn new_on(
        backend: Backend,
        start: DateTime<Utc>,
        keys: Vec<SeedKey>,
        rules_toml: &str,
        tweak: impl FnOnce(&mut Config),
    ) -> Harness {
        let sandbox = Sandbox::start(
            "127.0.0.1:0",
            SandboxOptions {
                seed_keys: keys,
                start: Some(start),
                ..SandboxOptions::default()
            },
        )
        .await
        .expect("sandbox starts");
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.openrouter.base_url = sandbox.base_url();
        config.openrouter.requests_per_second = 1000;
        config.database.path = Some(dir.path().join("keywarden.db"));
        config.daemon.max_disable_fraction = 1.0;
        tweak(&mut config);
        let postgres = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(TestDatabase::create().await.expect("a test cluster")),
        };
        let store = match &postgres {
            None => Store::open(&config.database_path()).await.unwrap(),
            Some(db) => {
                config.database.path = None;
                config.database.url = Some(db.url.clone());
                db.store().await
            }
        };
        let client = Client::new(settings(&config, sandbox.management_key())).unwrap();
        let config = Arc::new(config);
        let runner = Runner::new(
            store.clone(),
            client,
            config.clone(),
            Arc::new(sandbox.account().clone()),
        );
        let h = Harness {
            sandbox,
            store,
            runner,
            config,
            dir,
            postgres,
        };
        h.load_rules(rules_toml).await;
        h
    }

    /// Replaces the rules with those of `text` (as `rules import --prune` would).
    pub async fn load_rules(&self, text: &str) {
        let file = keywarden::rules::parse_rules("rules.toml", text)
            .unwrap_or_else(|d| panic!("rules parse: {d:?}"));
        self.store
            .sync_rules(
                &Origin::File("rules.toml".into()),
                &file.rules,
                true,
                self.now(),
            )
            .await
            .unwrap();
    }

    /// The sandbox's (and keywarden's) now.
    pub fn now(&self) -> DateTime<Utc> {
        self.sandbox.account().now()
    }

    /// One manual run.
    pub async fn apply(&self) -> RunReport {
        self.run(false, false).await
    }

    /// One manual run with the given flags.
    pub async fn run(&self, dry_run: bool, force: bool) -> RunReport {
        self.runner
            .run(&RunRequest {
                trigger: Trigger::Manual,
                due: None,
                dry_run,
                force,
            })
            .await
            .expect("run completes")
    }

    /// The hash of the key named `name`.
    pub fn hash(&self, name: &str) -> String {
        crate::daemon::hash_of(&self.sandbox, name)
    }

    /// The key named `name`, as the sandbox has it now.
    pub fn key(&self, name: &str) -> keywarden::domain::Key {
        let hash = self.hash(name);
        self.sandbox.account().key(&hash).unwrap()
    }

    /// Spend on a key by name.
    pub fn spend(&self, name: &str, usd: f64) {
        self.sandbox
            .account()
            .spend(&self.hash(name), usd, false)
            .unwrap_or_else(|e| panic!("spend on {name}: {e:?}"));
    }

    /// The PATCH requests the sandbox received, and forgets them.
    pub fn take_patches(&self) -> Vec<JournalEntry> {
        let patches = self
            .sandbox
            .account()
            .requests()
            .into_iter()
            .filter(|r| r.method == "PATCH")
            .collect();
        self.sandbox.account().clear_requests();
        patches
    }

    /// A direct connection to the harness's database.
    pub async fn raw(&self) -> RawDatabase {
        RawDatabase::connect(&self.config.database_path(), self.postgres.as_ref()).await
    }

    /// Every change row, newest first.
    pub async fn history(&self) -> Vec<ChangeRow> {
        self.store.changes(&HistoryFilter::default()).await.unwrap()
    }
}

/// Runs the binary on the database `dir/kw.db` with the (empty) config
/// `dir/empty.toml` and no credential at all, so an unknown key name is
/// never looked up on a real account.
pub fn offline(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    without_credential(&dir.join("empty.toml"), &dir.join("kw.db"), args)
}

/// Runs the binary with `config` and `database` and no credential or
/// keywarden variable from the environment.
pub fn without_credential(
    config: &std::path::Path,
    database: &std::path::Path,
    args: &[&str],
) -> std::process::Output {
    keywarden()
        .arg("--config")
        .arg(config)
        .arg("--database")
        .arg(database)
        .args(args)
        .output()
        .unwrap()
}

/// The built binary, as a newcomer's shell would start it: an environment
/// holding `PATH` only (no credential, no `KEYWARDEN_*`, no budget variable
/// of the test's own environment) and no standard input. Each test adds the
/// arguments, variables and directory it needs; an async test runs it
/// through `tokio::process::Command::from`.
pub fn keywarden() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_keywarden"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(std::process::Stdio::null());
    cmd
}

/// `keywarden --config keywarden.toml check-config` in `dir`, with the
/// management key `key` in the environment when given.
pub async fn check_config(dir: &std::path::Path, key: Option<&str>) -> std::process::Output {
    let mut cmd = keywarden();
    cmd.current_dir(dir)
        .args(["--config", "keywarden.toml", "check-config"]);
    if let Some(key) = key {
        cmd.env("OPENROUTER_MANAGEMENT_KEY", key);
    }
    tokio::process::Command::from(cmd).output().await.unwrap()
}

/// What a command printed, as text (invalid UTF-8 shown as `�`).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The standard output of a command that must have succeeded.
pub fn stdout(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// A direct connection to the database at `path`, to look at what the
/// store wrote (or to write rows as an older version would have).
pub async fn raw(path: &std::path::Path) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap()
}

/// A new database `dir/kw.db` at the migration before `version` (its
/// migrations from `version` on not applied), and a direct connection to it.
pub async fn migrated_before(
    dir: &std::path::Path,
    version: i64,
) -> (std::path::PathBuf, sqlx::SqlitePool) {
    let path = dir.join("kw.db");
    std::fs::File::create(&path).unwrap();
    let pool = raw(&path).await;
    let mut before = sqlx::migrate::Migrator::new(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/migrations/sqlite"
    )))
    .await
    .unwrap();
    before.migrations = before
        .migrations
        .iter()
        .filter(|m| m.version < version)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    before.run(&pool).await.unwrap();
    (path, pool)
}

/// Debian's Chromium, which `.ci/run` installs.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Headless Chromium, quiet and offline, with its profile in `profile`
/// (the caller adds the window size and what to do).
pub fn chromium(profile: &std::path::Path) -> std::process::Command {
    assert!(
        std::path::Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium), as .ci/run does"
    );
    let mut cmd = std::process::Command::new(CHROMIUM);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .stdin(std::process::Stdio::null());
    cmd
}
