//! What the dashboard reads besides the history (SPEC §13): the latest
//! run, the id that tells a watcher a run finished, and the open outages
//! (the credential, budget sources, webhooks).

use super::backend::on_pool;
use super::runs::{CHANGE_COLUMNS, change_row};
use super::{ChangeRow, Store, parse_ts};
use crate::domain::timestamp;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// A run as the Overview shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunLine {
    /// Its id.
    pub id: i64,
    /// `schedule`, `startup`, `reload` or `manual`.
    pub trigger: String,
    /// When it started.
    #[serde(serialize_with = "timestamp::serialize")]
    pub started_at: DateTime<Utc>,
    /// When it finished; `null` while it runs.
    #[serde(serialize_with = "timestamp::serialize_opt")]
    pub finished_at: Option<DateTime<Utc>>,
    /// `running`, `ok`, `failed`, `auth_failed` or `error`.
    pub status: String,
    /// Keys listed.
    pub keys_seen: i64,
    /// Change rows recorded.
    pub changes: i64,
    /// Of those, applied.
    pub applied: i64,
    /// Of those, failed.
    pub failed: i64,
    /// Of those, held by the blast-radius guard.
    pub held: i64,
}

/// Something that is failing now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenOutage {
    /// `credential`, `budget_source` or `webhook`.
    pub kind: &'static str,
    /// The source's id, or the webhook's `scheme://host` (never its path);
    /// empty for the credential.
    pub subject: String,
    /// Since when.
    #[serde(serialize_with = "timestamp::serialize")]
    pub since: DateTime<Utc>,
}

/// A `runs` row as [`Store::latest_run`] selects it.
#[derive(sqlx::FromRow)]
struct RunColumns {
    id: i64,
    trigger: String,
    started_at: String,
    finished_at: Option<String>,
    status: String,
    keys_seen: i64,
    changes: i64,
    applied: i64,
    failed: i64,
    held: i64,
}

impl Store {
    /// The newest run, finished or not.
    pub async fn latest_run(&self) -> anyhow::Result<Option<RunLine>> {
        let row: Option<RunColumns> = on_pool!(self, |db| {
            sqlx::query_as(
                "SELECT id, trigger, started_at, finished_at, status, keys_seen, changes, applied,
                        failed, held
                 FROM runs ORDER BY id DESC LIMIT 1",
            )
            .fetch_optional(db)
            .await?
        });
        row.map(|r| {
            Ok(RunLine {
                id: r.id,
                trigger: r.trigger,
                started_at: parse_ts(&r.started_at)?,
                finished_at: r.finished_at.as_deref().map(parse_ts).transpose()?,
                status: r.status,
                keys_seen: r.keys_seen,
                changes: r.changes,
                applied: r.applied,
                failed: r.failed,
                held: r.held,
            })
        })
        .transpose()
    }

    /// The id of the newest finished run (0 when none): it moves when a run
    /// finishes, in this process or another.
    pub async fn last_finished_run_id(&self) -> anyhow::Result<i64> {
        let id: Option<i64> = on_pool!(self, |db| {
            sqlx::query_scalar("SELECT MAX(id) FROM runs WHERE finished_at IS NOT NULL")
                .fetch_one(db)
                .await?
        });
        Ok(id.unwrap_or(0))
    }

    /// The newest `limit` changes held by the blast-radius guard, newest
    /// first (`migrations/sqlite/0009_dashboard_held_changes.sql` indexes them).
    pub async fn newest_held_changes(&self, limit: i64) -> anyhow::Result<Vec<ChangeRow>> {
        let sql = format!(
            "SELECT {CHANGE_COLUMNS} FROM changes WHERE outcome = 'held'
             ORDER BY at DESC, id DESC LIMIT $1"
        );
        on_pool!(self, |db| {
            let rows = sqlx::query(&sql).bind(limit).fetch_all(db).await?;
            rows.iter().map(change_row).collect()
        })
    }

    /// The outages open now: a refused credential, unreadable budget
    /// sources, and webhooks whose next delivery keeps failing; oldest first.
    pub async fn open_outages(&self) -> anyhow::Result<Vec<OpenOutage>> {
        let rows: Vec<(String, String, String)> = on_pool!(self, |db| {
            sqlx::query_as(
                "SELECT CASE kind WHEN 'auth' THEN 'credential' ELSE 'budget_source' END AS kind,
                        subject, since
                 FROM outages
                 UNION ALL
                 SELECT 'webhook', target, failing_since FROM deliveries
                 WHERE failing_since IS NOT NULL
                 ORDER BY since",
            )
            .fetch_all(db)
            .await?
        });
        rows.into_iter()
            .map(|(kind, subject, since)| {
                let kind = match kind.as_str() {
                    "credential" => "credential",
                    "budget_source" => "budget_source",
                    _ => "webhook",
                };
                Ok(OpenOutage {
                    kind,
                    subject,
                    since: parse_ts(&since)?,
                })
            })
            .collect()
    }
}
