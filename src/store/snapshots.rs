//! The `snapshots` table: key usage over time, for reports (SPEC §5) and
//! forecasts (§11): at most one per key per `snapshot_interval`, and only
//! when usage moved — except for the keys a forecast needs, which are
//! recorded even when it did not (a key that stopped is seen to stop).

use super::{Store, parse_ts, ts};
use crate::domain::Key;
use crate::engine::inputs::{Series, UsageReading};
use chrono::{DateTime, Utc};
use sqlx::Row as _;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// The usage counters of a key, in column order.
type Usage = [Option<f64>; 8];

fn usage(key: &Key) -> Usage {
    [
        key.usage,
        key.usage_daily,
        key.usage_weekly,
        key.usage_monthly,
        key.byok_usage,
        key.byok_usage_daily,
        key.byok_usage_weekly,
        key.byok_usage_monthly,
    ]
}

impl Store {
    /// Records a usage snapshot of each key whose usage moved since its last
    /// snapshot, if that is at least `interval` old; one transaction.
    /// Returns how many were written.
    pub async fn record_snapshots(
        &self,
        at: DateTime<Utc>,
        keys: &[Key],
        interval: Duration,
    ) -> anyhow::Result<usize> {
        self.record_snapshots_for(at, keys, interval, &HashSet::new())
            .await
    }

    /// [`Store::record_snapshots`], and the keys in `forecast` (by hash)
    /// also when their usage did not move.
    pub async fn record_snapshots_for(
        &self,
        at: DateTime<Utc>,
        keys: &[Key],
        interval: Duration,
        forecast: &HashSet<String>,
    ) -> anyhow::Result<usize> {
        let mut tx = self.write_sqlite().await?;
        let rows = sqlx::query(
            "SELECT s.key_hash, s.at, s.usage, s.usage_daily, s.usage_weekly, s.usage_monthly,
                    s.byok_usage, s.byok_usage_daily, s.byok_usage_weekly, s.byok_usage_monthly
             FROM snapshots s
             JOIN (SELECT key_hash, MAX(at) AS at FROM snapshots GROUP BY key_hash) last
               ON s.key_hash = last.key_hash AND s.at = last.at",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut last: HashMap<String, (DateTime<Utc>, Usage)> = HashMap::with_capacity(rows.len());
        for row in &rows {
            let counters: Usage = std::array::from_fn(|i| row.get(i + 2));
            last.insert(row.get("key_hash"), (parse_ts(row.get("at"))?, counters));
        }
        let interval = chrono::Duration::from_std(interval)?;
        let stamp = ts(at);
        let mut written = 0;
        for key in keys {
            let now = usage(key);
            if let Some((then, before)) = last.get(&key.hash)
                && (at < *then + interval || (*before == now && !forecast.contains(&key.hash)))
            {
                continue;
            }
            let mut insert = sqlx::query(
                "INSERT INTO snapshots (at, key_hash, disabled, limit_usd, limit_remaining, usage,
                     usage_daily, usage_weekly, usage_monthly, byok_usage, byok_usage_daily,
                     byok_usage_weekly, byok_usage_monthly)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&stamp)
            .bind(&key.hash)
            .bind(key.disabled)
            .bind(key.limit)
            .bind(key.limit_remaining);
            for counter in now {
                insert = insert.bind(counter);
            }
            insert.execute(&mut *tx).await?;
            written += 1;
        }
        tx.commit().await?;
        Ok(written)
    }

    /// The lifetime usage of every key snapshotted in `[since, before)`,
    /// by key hash, oldest first: the series forecasts read.
    pub async fn usage_series(
        &self,
        since: DateTime<Utc>,
        before: DateTime<Utc>,
    ) -> anyhow::Result<Series> {
        let rows = sqlx::query(
            "SELECT key_hash, at, usage, byok_usage FROM snapshots
             WHERE at >= ? AND at < ? ORDER BY at",
        )
        .bind(ts(since))
        .bind(ts(before))
        .fetch_all(self.sqlite())
        .await?;
        let mut series = Series::new();
        for row in &rows {
            series
                .entry(row.get("key_hash"))
                .or_default()
                .push(UsageReading {
                    at: parse_ts(row.get("at"))?,
                    usage: row.get("usage"),
                    byok_usage: row.get("byok_usage"),
                });
        }
        Ok(series)
    }

    /// Sets each key's usage counters to those of its last snapshot taken
    /// at or before `at` — unknown when it has none — so that figures for
    /// a past instant see only what was known then.
    pub async fn rewind_usage(&self, keys: &mut [Key], at: DateTime<Utc>) -> anyhow::Result<()> {
        let rows = sqlx::query(
            "SELECT s.key_hash, s.usage, s.usage_daily, s.usage_weekly, s.usage_monthly,
                    s.byok_usage, s.byok_usage_daily, s.byok_usage_weekly, s.byok_usage_monthly
             FROM snapshots s
             JOIN (SELECT key_hash, MAX(at) AS at FROM snapshots WHERE at <= ? GROUP BY key_hash) last
               ON s.key_hash = last.key_hash AND s.at = last.at",
        )
        .bind(ts(at))
        .fetch_all(self.sqlite())
        .await?;
        let then: HashMap<String, Usage> = rows
            .iter()
            .map(|row| (row.get("key_hash"), std::array::from_fn(|i| row.get(i + 1))))
            .collect();
        for key in keys {
            let [u, ud, uw, um, b, bd, bw, bm] = then.get(&key.hash).copied().unwrap_or_default();
            (
                key.usage,
                key.usage_daily,
                key.usage_weekly,
                key.usage_monthly,
            ) = (u, ud, uw, um);
            (
                key.byok_usage,
                key.byok_usage_daily,
                key.byok_usage_weekly,
                key.byok_usage_monthly,
            ) = (b, bd, bw, bm);
        }
        Ok(())
    }

    /// Deletes the snapshots taken before `older_than`; returns how many.
    pub async fn prune_snapshots(&self, older_than: DateTime<Utc>) -> anyhow::Result<u64> {
        let done = sqlx::query("DELETE FROM snapshots WHERE at < ?")
            .bind(ts(older_than))
            .execute(self.sqlite())
            .await?;
        Ok(done.rows_affected())
    }
}
