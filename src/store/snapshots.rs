//! The `snapshots` table: key usage over time, for reports (SPEC §5) and
//! forecasts (§11): at most one per key per `snapshot_interval`, and only
//! when usage moved — except for the keys a forecast needs, which are
//! recorded even when it did not (a key that stopped is seen to stop).

use super::backend::{on_conn, on_pool};
use super::batch::in_chunks;
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
        let mut tx = self.write().await?;
        let last: HashMap<String, (DateTime<Utc>, Usage)> = on_conn!(tx.conn(), |c| {
            let rows = sqlx::query(
                "SELECT s.key_hash, s.at, s.usage, s.usage_daily, s.usage_weekly, s.usage_monthly,
                        s.byok_usage, s.byok_usage_daily, s.byok_usage_weekly, s.byok_usage_monthly
                 FROM snapshots s
                 JOIN (SELECT key_hash, MAX(at) AS at FROM snapshots GROUP BY key_hash) last
                   ON s.key_hash = last.key_hash AND s.at = last.at",
            )
            .fetch_all(&mut *c)
            .await?;
            rows.iter()
                .map(|row| {
                    let counters: Usage = std::array::from_fn(|i| row.get(i + 2));
                    Ok((row.get("key_hash"), (parse_ts(row.get("at"))?, counters)))
                })
                .collect::<anyhow::Result<_>>()?
        });
        let interval = chrono::Duration::from_std(interval)?;
        let due: Vec<(&Key, Usage)> = keys
            .iter()
            .map(|key| (key, usage(key)))
            .filter(|(key, now)| match last.get(&key.hash) {
                Some((then, before)) => {
                    at >= *then + interval && (before != now || forecast.contains(&key.hash))
                }
                None => true,
            })
            .collect();
        let stamp = ts(at);
        on_conn!(tx.conn(), |c| {
            in_chunks(
                c,
                "INSERT INTO snapshots (at, key_hash, disabled, limit_usd, limit_remaining, usage,
                     usage_daily, usage_weekly, usage_monthly, byok_usage, byok_usage_daily,
                     byok_usage_weekly, byok_usage_monthly) ",
                "",
                13,
                &due,
                |mut values, (key, now)| {
                    values
                        .push_bind(&stamp)
                        .push_bind(&key.hash)
                        .push_bind(i64::from(key.disabled))
                        .push_bind(key.limit)
                        .push_bind(key.limit_remaining);
                    for &counter in now {
                        values.push_bind(counter);
                    }
                },
            )
            .await?
        });
        tx.commit().await?;
        Ok(due.len())
    }

    /// The lifetime usage of every key snapshotted in `[since, before)`,
    /// by key hash, oldest first: the series forecasts read.
    pub async fn usage_series(
        &self,
        since: DateTime<Utc>,
        before: DateTime<Utc>,
    ) -> anyhow::Result<Series> {
        let rows: Vec<(String, String, Option<f64>, Option<f64>)> = on_pool!(self, |db| {
            sqlx::query_as(
                "SELECT key_hash, at, usage, byok_usage FROM snapshots
                 WHERE at >= $1 AND at < $2 ORDER BY at",
            )
            .bind(ts(since))
            .bind(ts(before))
            .fetch_all(db)
            .await?
        });
        let mut series = Series::new();
        for (key_hash, at, usage, byok_usage) in rows {
            series.entry(key_hash).or_default().push(UsageReading {
                at: parse_ts(&at)?,
                usage,
                byok_usage,
            });
        }
        Ok(series)
    }

    /// Sets each key's usage counters to those of its last snapshot taken
    /// at or before `at` — unknown when it has none — so that figures for
    /// a past instant see only what was known then.
    pub async fn rewind_usage(&self, keys: &mut [Key], at: DateTime<Utc>) -> anyhow::Result<()> {
        let then: HashMap<String, Usage> = on_pool!(self, |db| {
            let rows = sqlx::query(
                "SELECT s.key_hash, s.usage, s.usage_daily, s.usage_weekly, s.usage_monthly,
                        s.byok_usage, s.byok_usage_daily, s.byok_usage_weekly, s.byok_usage_monthly
                 FROM snapshots s
                 JOIN (SELECT key_hash, MAX(at) AS at FROM snapshots WHERE at <= $1
                       GROUP BY key_hash) last
                   ON s.key_hash = last.key_hash AND s.at = last.at",
            )
            .bind(ts(at))
            .fetch_all(db)
            .await?;
            rows.iter()
                .map(|row| (row.get("key_hash"), std::array::from_fn(|i| row.get(i + 1))))
                .collect()
        });
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
        let pruned = on_pool!(self, |db| {
            sqlx::query("DELETE FROM snapshots WHERE at < $1")
                .bind(ts(older_than))
                .execute(db)
                .await?
                .rows_affected()
        });
        Ok(pruned)
    }
}
