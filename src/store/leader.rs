//! Leadership on PostgreSQL (SPEC §14): the replicas of one database take
//! turns through a session advisory lock, held on a connection of its own
//! (not the pool's), so that it lasts as long as that connection and goes
//! the moment the holder dies or its connection is lost. The holder writes
//! itself into `leaders`, so that others can name it. SQLite needs none of
//! this: one service per database (`service::lock`), runs in turn
//! (`run_turn`).

use super::{Store, parse_ts, postgres_options, ts, unreachable_database};
use crate::config::{Database, PostgresTarget};
use chrono::{DateTime, Utc};
use sqlx::{ConnectOptions as _, Connection as _, PgConnection};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The key of the leadership advisory lock ("kwlead" in ASCII).
const LEADER_LOCK: i64 = 0x6b77_6c65_6164;

/// How the server notices a lock connection whose other end is gone
/// without a word (a partition): TCP keepalives after 1 s idle, every 1 s,
/// 2 unanswered. The lock is then released within a few seconds.
const KEEPALIVES: &str =
    "SET tcp_keepalives_idle = 1; SET tcp_keepalives_interval = 1; SET tcp_keepalives_count = 2";

/// A process that leads, or led: where it runs and since when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Leader {
    /// Its host name.
    pub host: String,
    /// Its process id.
    pub pid: i64,
    /// When it took the lead.
    pub since: DateTime<Utc>,
}

impl Leader {
    /// This process, leading from `since`.
    pub fn this_process(since: DateTime<Utc>) -> Leader {
        Leader {
            host: host_name(),
            pid: i64::from(std::process::id()),
            since,
        }
    }
}

impl std::fmt::Display for Leader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} pid {}", self.host, self.pid)
    }
}

/// The name of this host (`gethostname`), or `unknown`.
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; the name is NUL-terminated
    // when it fits, and the last byte stays 0 otherwise.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(0);
    match rc {
        0 if end > 0 => String::from_utf8_lossy(&buf[..end]).into_owned(),
        _ => "unknown".to_string(),
    }
}

/// Whether this process leads now: set by the lock, read by the runner
/// before each batch of requests. Clones share one flag.
#[derive(Debug, Clone)]
pub struct Leading(Arc<AtomicBool>);

impl Leading {
    /// A flag that says "leading" until a lock says otherwise; what a
    /// SQLite service, alone on its database, always is.
    pub fn always() -> Leading {
        Leading(Arc::new(AtomicBool::new(true)))
    }

    /// A flag that says "not leading" until a lock is taken.
    pub fn not_yet() -> Leading {
        Leading(Arc::new(AtomicBool::new(false)))
    }

    /// Whether the lock is held (as last confirmed).
    pub fn is_held(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    fn set(&self, held: bool) {
        self.0.store(held, Ordering::SeqCst);
    }
}

/// The error of a run stopped because its process lost the lead: its open
/// rows are left to the next leader (SPEC §4.5).
#[derive(Debug, thiserror::Error)]
#[error(
    "this process lost the lead (its database connection is gone); the next leader resolves the open changes"
)]
pub struct LeadershipLost;

/// The leadership lock, held: the connection it lives on. Dropping it
/// closes the connection, which releases the lock.
#[derive(Debug)]
pub struct LeaderLock {
    conn: PgConnection,
    leading: Leading,
}

/// What one attempt to take the lead came to.
#[derive(Debug)]
pub enum Attempt {
    /// The lock is ours; `before` is the leader the database last named.
    Led {
        /// The held lock.
        lock: LeaderLock,
        /// Who led before, if anyone ever did.
        before: Option<Leader>,
    },
    /// Another process holds it (named when it wrote itself down).
    Held(Option<Leader>),
}

impl Store {
    /// Tries once to take the lead for `me`, on a new connection of its
    /// own; `leading` is set while the returned lock holds. On SQLite, a
    /// [`UsageError`](crate::exit::UsageError): leadership is PostgreSQL's.
    pub async fn try_lead(&self, me: &Leader, leading: &Leading) -> anyhow::Result<Attempt> {
        let Database::Postgres(target) = self.database() else {
            return Err(crate::exit::UsageError::new(
                "leadership needs a PostgreSQL database ([database].url)",
            ));
        };
        let mut conn = lock_connection(target).await?;
        let took: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(LEADER_LOCK)
            .fetch_one(&mut conn)
            .await?;
        let named = named_leader(&mut conn).await?;
        if !took {
            conn.close().await.ok();
            return Ok(Attempt::Held(named));
        }
        sqlx::query(
            "INSERT INTO leaders (id, host, pid, since) VALUES (1, $1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, \
             since = excluded.since",
        )
        .bind(&me.host)
        .bind(me.pid)
        .bind(ts(me.since))
        .execute(&mut conn)
        .await?;
        leading.set(true);
        Ok(Attempt::Led {
            lock: LeaderLock {
                conn,
                leading: leading.clone(),
            },
            before: named,
        })
    }
}

impl LeaderLock {
    /// Confirms the lock is still held: a cheap query on its connection
    /// within `timeout`. When it fails the flag says "not leading" at once
    /// and the error says why.
    pub async fn confirm(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let answer = tokio::time::timeout(timeout, sqlx::query("SELECT 1").execute(&mut self.conn));
        let why = match answer.await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => anyhow::Error::new(e),
            Err(_) => anyhow::anyhow!(
                "the database did not answer within {} ms",
                timeout.as_millis()
            ),
        };
        self.leading.set(false);
        Err(why.context("the leadership lock's connection is lost"))
    }

    /// Gives the lead up (`pg_advisory_unlock`); the connection closes as
    /// the lock is dropped.
    pub async fn release(mut self) {
        self.leading.set(false);
        let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(LEADER_LOCK)
            .execute(&mut self.conn)
            .await;
    }
}

impl Drop for LeaderLock {
    fn drop(&mut self) {
        self.leading.set(false);
    }
}

/// A connection of its own for the lock, with keepalives that let the
/// server notice a silent partition.
async fn lock_connection(target: &PostgresTarget) -> anyhow::Result<PgConnection> {
    let mut conn = postgres_options(target)?
        .connect()
        .await
        .map_err(|e| unreachable_database(target, &e))?;
    sqlx::raw_sql(KEEPALIVES).execute(&mut conn).await?;
    Ok(conn)
}

/// The leader `leaders` names, if any.
async fn named_leader(conn: &mut PgConnection) -> anyhow::Result<Option<Leader>> {
    let row: Option<(String, i64, String)> =
        sqlx::query_as("SELECT host, pid, since FROM leaders WHERE id = 1")
            .fetch_optional(&mut *conn)
            .await?;
    row.map(|(host, pid, since)| {
        Ok(Leader {
            host,
            pid,
            since: parse_ts(&since)?,
        })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_is_named_by_host_and_pid() {
        let me = Leader::this_process("2026-12-01T10:00:00Z".parse().unwrap());
        assert_eq!(me.pid, i64::from(std::process::id()));
        assert!(!me.host.is_empty());
        assert_eq!(me.to_string(), format!("{} pid {}", me.host, me.pid));
    }

    #[test]
    fn the_flag_is_shared_by_its_clones() {
        let leading = Leading::not_yet();
        let runner_side = leading.clone();
        assert!(!runner_side.is_held());
        leading.set(true);
        assert!(runner_side.is_held());
        assert!(Leading::always().is_held());
    }
}
