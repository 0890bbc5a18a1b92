//! Storage (sqlx): SQLite or PostgreSQL behind one API (`backend`), one
//! module per table family. SQL lives here and in `migrations/` only.

use crate::config::{Database, PostgresTarget};
use crate::domain::event::EventKind;
use anyhow::Context as _;
use backend::{Pool, Tx, on_pool};
use chrono::{DateTime, Utc};
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

pub(crate) mod backend;
pub mod backup;
mod batch;
pub mod budgets;
pub mod claims;
pub mod conflicts;
pub mod copy;
pub mod counts;
pub mod dashboard;
pub mod leader;
pub mod outbox;
pub mod report;
pub mod rules;
pub mod run_turn;
pub mod runs;
pub mod snapshots;
pub mod sources;
pub mod state;
mod tallies;

pub use backend::Dialect;
pub use rules::{Revision, StoredRule, SyncSummary};
pub use runs::{ChangeRow, EventRow, HistoryFilter, RunSummary};

/// SQLite's page cache per connection, in KiB when negative (SQLite's
/// default is 2,000 KiB): the pages a run reads stay in the kernel's cache.
const PAGE_CACHE: &str = "-512";

/// Prepared statements kept per connection (sqlx's default is 100): batch
/// inserts of different sizes are different statements, some large.
const STATEMENT_CACHE: usize = 16;

/// How long a writer waits for another process's write transaction to
/// end before it gives up with "database is locked". Every write
/// transaction is short (a run's intent, its outcomes, a rules sync), so
/// this is only reached when another process hangs while holding the lock.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a pooled connection may stay idle before it is closed (with
/// its caches); the next use opens it again.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Connections a PostgreSQL pool keeps at most: a run's writes, the
/// dashboard's reads and the notifier side by side.
const POSTGRES_CONNECTIONS: u32 = 8;

/// How long connecting to PostgreSQL may take before it is an error.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The key of the transaction-level advisory lock every PostgreSQL write
/// transaction takes first (`pg_advisory_xact_lock`): writers follow one
/// another as SQLite's `BEGIN IMMEDIATE` makes them, so a transaction that
/// reads and then writes (the next change id, a claim) sees no other
/// writer's half. ("kwwrite" in ASCII.)
const WRITE_LOCK: i64 = 0x006b_7777_7269_7465;

/// The database: a pool of connections to one SQLite file or one
/// PostgreSQL database.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: Pool,
    database: Database,
}

impl Store {
    /// Opens (and migrates) the database `database` names.
    pub async fn connect(database: &Database) -> anyhow::Result<Store> {
        match database {
            Database::Sqlite(path) => Store::open(path).await,
            Database::Postgres(target) => Store::open_postgres(target).await,
        }
    }

    /// Connects to (and migrates) a PostgreSQL database.
    pub async fn open_postgres(target: &PostgresTarget) -> anyhow::Result<Store> {
        let options = postgres_options(target)?;
        // One connection first, so that an unreachable server or a refused
        // password is said at once and precisely (the pool would retry
        // until its timeout and then say only that it timed out).
        let probe = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
            .await
            .map_err(|_| {
                crate::exit::UsageError::new(format!(
                    "cannot connect to the database {}: no answer within {} s",
                    target.display(),
                    CONNECT_TIMEOUT.as_secs()
                ))
            })?
            .map_err(|e| unreachable_database(target, &e))?;
        probe.close().await?;
        let pool = PgPoolOptions::new()
            .max_connections(POSTGRES_CONNECTIONS)
            .min_connections(0)
            .idle_timeout(IDLE_TIMEOUT)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| unreachable_database(target, &e))?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| migration_error(&Database::Postgres(target.clone()), e))?;
        Ok(Store {
            pool: Pool::Postgres(pool),
            database: Database::Postgres(target.clone()),
        })
    }

    /// Opens (creating it mode 0600 if needed) and migrates the database at `path`.
    pub async fn open(path: &Path) -> anyhow::Result<Store> {
        create_private(path)?;
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .pragma("cache_size", PAGE_CACHE)
            .statement_cache_capacity(STATEMENT_CACHE);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(0)
            .idle_timeout(IDLE_TIMEOUT)
            .connect_with(options)
            .await
            .with_context(|| format!("cannot open the database {}", path.display()))?;
        let database = Database::Sqlite(path.to_path_buf());
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| migration_error(&database, e))?;
        Ok(Store {
            pool: Pool::Sqlite(pool),
            database,
        })
    }

    /// Opens a write transaction with `BEGIN IMMEDIATE`: it takes the
    /// write lock at once, waiting up to [`BUSY_TIMEOUT`] for another
    /// connection's write to end. A plain `BEGIN` that reads and then writes
    /// fails at once with `SQLITE_BUSY_SNAPSHOT` ("database is locked",
    /// code 517), whatever the busy timeout says, when another connection
    /// commits in between — as a running service does all the time. Every
    /// transaction of the store that writes starts here (clippy refuses
    /// `Pool::begin`, see `clippy.toml`).
    ///
    /// On PostgreSQL the transaction takes the store's write lock first
    /// ([`WRITE_LOCK`]), for the same one-writer-at-a-time order.
    pub(crate) async fn write(&self) -> sqlx::Result<Tx> {
        match &self.pool {
            Pool::Sqlite(pool) => Ok(Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?)),
            Pool::Postgres(pool) => {
                let mut tx = pool.begin_with("BEGIN").await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(WRITE_LOCK)
                    .execute(&mut *tx)
                    .await?;
                Ok(Tx::Postgres(tx))
            }
        }
    }

    /// Opens a read-only snapshot: a transaction whose reads all see the
    /// database as it was at its first read (SQLite's deferred `BEGIN` in
    /// WAL mode, PostgreSQL's `REPEATABLE READ`).
    pub(crate) async fn snapshot(&self) -> sqlx::Result<Tx> {
        match &self.pool {
            Pool::Sqlite(pool) => Ok(Tx::Sqlite(pool.begin_with("BEGIN").await?)),
            Pool::Postgres(pool) => Ok(Tx::Postgres(
                pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?,
            )),
        }
    }

    /// The database this store is: a SQLite file or a PostgreSQL database.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// The SQL dialect of the backend.
    pub fn dialect(&self) -> Dialect {
        self.pool.dialect()
    }

    /// The SQLite file, or `None` on PostgreSQL.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.database {
            Database::Sqlite(path) => Some(path),
            Database::Postgres(_) => None,
        }
    }

    /// The version of the newest migration applied.
    pub async fn schema_version(&self) -> anyhow::Result<i64> {
        let version: Option<i64> = on_pool!(self, |db| {
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(db)
                .await?
        });
        Ok(version.unwrap_or(0))
    }

    /// Closes every connection (checkpointing the WAL).
    pub async fn close(self) {
        on_pool!(self, |db| db.close().await);
    }
}

/// The connect options of `target`: its URL (`sslmode` and all), its
/// password, and keywarden's name in `pg_stat_activity`.
pub(crate) fn postgres_options(target: &PostgresTarget) -> anyhow::Result<PgConnectOptions> {
    use secrecy::ExposeSecret as _;
    let mut options = PgConnectOptions::from_str(&target.url)
        .map_err(|e| crate::exit::UsageError::new(format!("[database].url: {e}")))?
        .application_name("keywarden");
    if let Some(password) = &target.password {
        options = options.password(password.expose_secret());
    }
    Ok(options)
}

/// The error of a database that cannot be reached or refuses us (exit 2):
/// where it is and why, never the password.
pub(crate) fn unreachable_database(target: &PostgresTarget, e: &sqlx::Error) -> anyhow::Error {
    let why = match e {
        sqlx::Error::Database(db) => db.message().to_string(),
        other => other.to_string(),
    };
    crate::exit::UsageError::new(format!(
        "cannot connect to the database {}: {why}",
        target.display()
    ))
}

/// The error of a migration that cannot run. A database whose schema is
/// newer than this binary is refused before anything is touched (exit 2).
fn migration_error(database: &Database, e: sqlx::migrate::MigrateError) -> anyhow::Error {
    use sqlx::migrate::MigrateError;
    match e {
        MigrateError::VersionMissing(version) => crate::exit::UsageError::new(format!(
            "the database {database} has schema version {version}, newer than this keywarden \
             knows; nothing was changed: upgrade keywarden (or restore a backup made for this version)"
        )),
        other => {
            anyhow::Error::new(other).context(format!("cannot migrate the database {database}"))
        }
    }
}

/// Creates `path` empty with mode 0600 if it does not exist yet, so that the
/// database is never readable by others, not even for a moment.
pub(crate) fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// The stored form of an instant: RFC 3339 UTC with seconds and `Z`, so
/// that text order is time order.
pub(crate) use crate::domain::timestamp::rfc3339 as ts;

/// Reads an event kind as stored.
pub(crate) fn parse_event_kind(s: &str) -> anyhow::Result<EventKind> {
    s.parse()
        .map_err(|_| anyhow::anyhow!("unknown event kind {s:?} in the database"))
}

/// Reads an instant written by [`ts`].
pub(crate) fn parse_ts(s: &str) -> anyhow::Result<DateTime<Utc>> {
    Ok(DateTime::parse_from_rfc3339(s)
        .with_context(|| format!("bad time {s:?} in the database"))?
        .with_timezone(&Utc))
}
