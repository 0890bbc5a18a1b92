//! The `source_values` table: the last good value of every external budget
//! source, and the outage it is in, if any (SPEC §3.2).

use super::backend::{on_conn, on_pool};
use super::{Store, parse_ts, ts};
use chrono::{DateTime, Utc};

impl Store {
    /// The last good value of a source, and when it was read.
    pub async fn source_value(
        &self,
        source_id: &str,
    ) -> anyhow::Result<Option<(f64, DateTime<Utc>)>> {
        let row: Option<(f64, String)> = on_pool!(self, |db| {
            sqlx::query_as(
                "SELECT value, fetched_at FROM source_values
                 WHERE source_id = $1 AND value IS NOT NULL AND fetched_at IS NOT NULL",
            )
            .bind(source_id)
            .fetch_optional(db)
            .await?
        });
        row.map(|(v, at)| Ok((v, parse_ts(&at)?))).transpose()
    }

    /// Stores a good value read at `at`; this ends any outage of the source.
    pub async fn save_source_value(
        &self,
        source_id: &str,
        value: f64,
        at: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        on_pool!(self, |db| {
            sqlx::query(
                "INSERT INTO source_values (source_id, value, fetched_at, error, error_since)
                 VALUES ($1, $2, $3, NULL, NULL)
                 ON CONFLICT (source_id) DO UPDATE SET value = excluded.value,
                     fetched_at = excluded.fetched_at, error = NULL, error_since = NULL",
            )
            .bind(source_id)
            .bind(value)
            .bind(ts(at))
            .execute(db)
            .await?;
        });
        Ok(())
    }

    /// Records a failed read. `true` when this starts a new outage (the
    /// source was good, or never read), so that it is notified once per outage.
    pub async fn save_source_error(
        &self,
        source_id: &str,
        error: &str,
        at: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let mut tx = self.write().await?;
        let in_outage: Option<Option<String>> = on_conn!(tx.conn(), |c| {
            let in_outage =
                sqlx::query_scalar("SELECT error_since FROM source_values WHERE source_id = $1")
                    .bind(source_id)
                    .fetch_optional(&mut *c)
                    .await?;
            sqlx::query(
                "INSERT INTO source_values (source_id, error, error_since) VALUES ($1, $2, $3)
                 ON CONFLICT (source_id) DO UPDATE SET error = excluded.error,
                     error_since = COALESCE(source_values.error_since, excluded.error_since)",
            )
            .bind(source_id)
            .bind(error)
            .bind(ts(at))
            .execute(&mut *c)
            .await?;
            in_outage
        });
        tx.commit().await?;
        Ok(in_outage.flatten().is_none())
    }
}
