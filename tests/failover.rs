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
use daemon::Daemon;
use keywarden::sandbox::Sandbox;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

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
        let config = dir.path().join("keywarden.toml");
        std::fs::write(
            &config,
            format!(
                "[openrouter]\nrequests_per_second = 100\nmax_retries = 1\n\n\
                 [daemon]\nrules_files = [{:?}]\nstandby_poll = \"1s\"\n\n\
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

/// A port nothing listens on.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_database_exits_2_at_start_without_the_password() {
    let _serial = SERIAL.lock().await;
    if backends::cluster().is_none() {
        return;
    }
    let sandbox = daemon::sandbox(None).await;
    let url = format!("postgres://keywarden@127.0.0.1:{}/keywarden", free_port());
    let site = Site::new(&url, &daemon::budget_rule("team-*", 10.0));
    let out = site.output(&sandbox, SECRET, &["run"]).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot connect to the database"), "{err}");
    assert!(err.contains("127.0.0.1"), "{err}");
    assert!(!err.contains(SECRET), "{err}");
    assert!(
        sandbox.account().requests().is_empty(),
        "a request was sent"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_exits_2_at_start_without_the_password() {
    let _serial = SERIAL.lock().await;
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let sandbox = daemon::sandbox(None).await;
    let site = Site::new(&db.url, &daemon::budget_rule("team-*", 10.0));
    let out = site.output(&sandbox, SECRET, &["run"]).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot connect to the database"), "{err}");
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(!err.contains(SECRET), "{err}");
    assert!(
        sandbox.account().requests().is_empty(),
        "a request was sent"
    );
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

    let sandbox = daemon::sandbox(None).await;
    let site = Site::new(&db.url, &daemon::budget_rule("team-*", 10.0));
    let out = site.output(&sandbox, &db.password, &["run"]).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("schema version 9999, newer than this keywarden"),
        "{err}"
    );
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(tables_and_rows(&mut admin).await, before);
    assert!(
        sandbox.account().requests().is_empty(),
        "a request was sent"
    );
}

/// A connection of the test's own to `db`.
async fn connect(db: &TestDatabase) -> sqlx::PgConnection {
    use sqlx::Connection as _;
    use std::str::FromStr as _;
    let options = sqlx::postgres::PgConnectOptions::from_str(&db.url)
        .unwrap()
        .password(&db.password);
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
