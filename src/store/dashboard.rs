//! What the dashboard reads besides the history (SPEC §13): the latest
//! run, the id that tells a watcher a run finished, and the open outages
//! (the credential, budget sources, webhooks).

use super::runs::{CHANGE_COLUMNS, change_row};
use super::{ChangeRow, Store, parse_ts};
use crate::domain::timestamp;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row as _;

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

impl Store {
    /// The newest run, finished or not.
    pub async fn latest_run(&self) -> anyhow::Result<Option<RunLine>> {
        let row = sqlx::query(
            "SELECT id, trigger, started_at, finished_at, status, keys_seen, changes, applied,
                    failed, held
             FROM runs ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(self.sqlite())
        .await?;
        row.map(|r| {
            Ok(RunLine {
                id: r.get("id"),
                trigger: r.get("trigger"),
                started_at: parse_ts(r.get("started_at"))?,
                finished_at: r
                    .get::<Option<&str>, _>("finished_at")
                    .map(parse_ts)
                    .transpose()?,
                status: r.get("status"),
                keys_seen: r.get("keys_seen"),
                changes: r.get("changes"),
                applied: r.get("applied"),
                failed: r.get("failed"),
                held: r.get("held"),
            })
        })
        .transpose()
    }

    /// The id of the newest finished run (0 when none): it moves when a run
    /// finishes, in this process or another.
    pub async fn last_finished_run_id(&self) -> anyhow::Result<i64> {
        let id: Option<i64> =
            sqlx::query_scalar("SELECT MAX(id) FROM runs WHERE finished_at IS NOT NULL")
                .fetch_one(self.sqlite())
                .await?;
        Ok(id.unwrap_or(0))
    }

    /// The newest `limit` changes held by the blast-radius guard, newest
    /// first (`migrations/sqlite/0009_dashboard_held_changes.sql` indexes them).
    pub async fn newest_held_changes(&self, limit: i64) -> anyhow::Result<Vec<ChangeRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {CHANGE_COLUMNS} FROM changes WHERE outcome = 'held' ORDER BY at DESC, id DESC LIMIT ?"
        ))
        .bind(limit)
        .fetch_all(self.sqlite())
        .await?;
        rows.iter().map(change_row).collect()
    }

    /// The outages open now: a refused credential, unreadable budget
    /// sources, and webhooks whose next delivery keeps failing; oldest first.
    pub async fn open_outages(&self) -> anyhow::Result<Vec<OpenOutage>> {
        let rows = sqlx::query(
            "SELECT CASE kind WHEN 'auth' THEN 'credential' ELSE 'budget_source' END AS kind,
                    subject, since
             FROM outages
             UNION ALL
             SELECT 'webhook', target, failing_since FROM deliveries
             WHERE failing_since IS NOT NULL
             ORDER BY since",
        )
        .fetch_all(self.sqlite())
        .await?;
        rows.iter()
            .map(|r| {
                let kind = match r.get::<&str, _>("kind") {
                    "credential" => "credential",
                    "budget_source" => "budget_source",
                    _ => "webhook",
                };
                Ok(OpenOutage {
                    kind,
                    subject: r.get("subject"),
                    since: parse_ts(r.get("since"))?,
                })
            })
            .collect()
    }
}
