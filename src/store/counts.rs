//! Aggregate counts of the history, for `/metrics` (SPEC §7): they are
//! read from the database, so the exported counters equal what `history`
//! and `report` show, whoever made the rows (the service or `apply`).

use super::backend::on_pool;
use super::{Store, parse_ts};
use crate::domain::event::EventKind;
use chrono::{DateTime, Utc};

/// Counts of the recorded history.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryCounts {
    /// Finished runs by (trigger, status).
    pub runs: Vec<(String, String, u64)>,
    /// Change rows by (kind, outcome), `pending` rows left out (they are not done).
    pub changes: Vec<(String, String, u64)>,
    /// PATCH responses by HTTP status (`none` when no response came), one per request.
    pub patches: Vec<(String, u64)>,
    /// Recorded `source_error` events.
    pub source_errors: u64,
    /// Keys by state (`enabled`/`disabled`) in their latest snapshot.
    pub keys: Vec<(String, u64)>,
    /// When the last run with status `ok` finished.
    pub last_success: Option<DateTime<Utc>>,
}

impl Store {
    /// Reads [`HistoryCounts`].
    pub async fn history_counts(&self) -> anyhow::Result<HistoryCounts> {
        let runs: Vec<(String, String, i64)> = on_pool!(self, |db| {
            sqlx::query_as(
                "SELECT trigger, status, COUNT(*) FROM runs WHERE finished_at IS NOT NULL
                 GROUP BY trigger, status ORDER BY trigger, status",
            )
            .fetch_all(db)
            .await?
        });
        let changes: Vec<(String, String, i64)> = on_pool!(self, |db| {
            // The settled rows' tallies, and the `unknown` rows (through
            // `changes_open`): not a scan of every change.
            sqlx::query_as(
                "SELECT kind, outcome, CAST(SUM(n) AS BIGINT) FROM (
                     SELECT kind, outcome, n FROM change_tallies
                     UNION ALL
                     SELECT kind, outcome, COUNT(*) FROM changes
                     WHERE outcome IN ('pending', 'unknown') AND outcome = 'unknown'
                     GROUP BY kind, outcome
                 ) AS counted GROUP BY kind, outcome ORDER BY kind, outcome",
            )
            .fetch_all(db)
            .await?
        });
        // `none` (no response) first on both backends.
        let patches: Vec<(String, i64)> = on_pool!(self, |db| {
            sqlx::query_as(
                "SELECT COALESCE(CAST(status AS TEXT), 'none'), COUNT(*) FROM (
                     SELECT MAX(http_status) AS status FROM changes
                     WHERE attempts > 0 GROUP BY COALESCE(request_id, 'row-' || id)
                 ) AS requests GROUP BY status ORDER BY status NULLS FIRST",
            )
            .fetch_all(db)
            .await?
        });
        let source_errors: i64 = on_pool!(self, |db| {
            sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE kind = $1")
                .bind(EventKind::SourceError.as_str())
                .fetch_one(db)
                .await?
        });
        let keys: Vec<(String, i64)> = on_pool!(self, |db| {
            // Key by key through `snapshots_key_at` (a seek a key, not a
            // scan of every snapshot): each key's latest snapshot.
            sqlx::query_as(
                "WITH RECURSIVE keys(h) AS (
                     SELECT MIN(key_hash) FROM snapshots
                     UNION ALL
                     SELECT (SELECT MIN(key_hash) FROM snapshots WHERE key_hash > h)
                     FROM keys WHERE h IS NOT NULL)
                 SELECT CASE s.disabled WHEN 0 THEN 'enabled' ELSE 'disabled' END AS state,
                        COUNT(*)
                 FROM keys JOIN snapshots s
                   ON s.id = (SELECT id FROM snapshots WHERE key_hash = keys.h
                              ORDER BY at DESC, id DESC LIMIT 1)
                 GROUP BY state ORDER BY state",
            )
            .fetch_all(db)
            .await?
        });
        let last_success: Option<String> = on_pool!(self, |db| {
            sqlx::query_scalar("SELECT MAX(finished_at) FROM runs WHERE status = 'ok'")
                .fetch_one(db)
                .await?
        });
        let n = |v: i64| v.max(0) as u64;
        Ok(HistoryCounts {
            runs: runs.into_iter().map(|(a, b, c)| (a, b, n(c))).collect(),
            changes: changes.into_iter().map(|(a, b, c)| (a, b, n(c))).collect(),
            patches: patches.into_iter().map(|(a, c)| (a, n(c))).collect(),
            source_errors: n(source_errors),
            keys: keys.into_iter().map(|(a, c)| (a, n(c))).collect(),
            last_success: last_success.map(|s| parse_ts(&s)).transpose()?,
        })
    }
}
