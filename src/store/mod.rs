//! SQLite storage (sqlx): one module per table family. SQL lives here and
//! in `migrations/` only.

use crate::domain::event::EventKind;
use anyhow::Context as _;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

pub mod backup;
mod batch;
pub mod budgets;
pub mod claims;
pub mod conflicts;
pub mod counts;
pub mod dashboard;
pub mod outbox;
pub mod report;
pub mod rules;
pub mod run_turn;
pub mod runs;
pub mod snapshots;
pub mod sources;
pub mod state;

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

/// The database: a pool of connections to one SQLite file.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: SqlitePool,
    path: PathBuf,
}

impl Store {
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
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .with_context(|| format!("cannot migrate the database {}", path.display()))?;
        Ok(Store {
            pool,
            path: path.to_path_buf(),
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
    pub(crate) async fn write(&self) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The version of the newest migration applied.
    pub async fn schema_version(&self) -> anyhow::Result<i64> {
        let version: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await?;
        Ok(version.unwrap_or(0))
    }

    /// Closes every connection (checkpointing the WAL).
    pub async fn close(self) {
        self.pool.close().await;
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
