//! The notification outbox's tables (SPEC §7): the cursor over change rows
//! and events, budget warnings once per fraction per window, early
//! warnings once per horizon per window, open outages,
//! the items, and each webhook's delivery position and attempts. Which
//! events are notified, and what they say, is `notify`'s business.

use super::backend::{Tx, on_conn, on_pool};
use super::runs::{
    CHANGE_COLUMNS, EVENT_COLUMNS, StoredChange, StoredEvent, insert_event, stored_change,
    stored_event,
};
use super::{ChangeRow, EventRow, Store, parse_event_kind, parse_ts, ts};
use crate::domain::event::EventKind;
use crate::engine::Outcome;
use crate::engine::warnings::ForecastWarning;
use crate::rules::model::Scope;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::FromRow;

/// One item of the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    /// Its id: the delivery order.
    pub id: i64,
    /// The event (`key_disabled`, `budget_warning`, …).
    pub event: EventKind,
    /// When the thing happened.
    pub at: DateTime<Utc>,
    /// The JSON object sent to a `format = "json"` webhook.
    pub payload: Value,
}

/// Where a webhook is in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryState {
    /// Every item up to this id is done with.
    pub last_outbox_id: i64,
    /// Failed attempts of the next item.
    pub attempts: u32,
    /// When the next item first failed.
    pub failing_since: Option<DateTime<Utc>>,
    /// Not before this instant.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// 2xx: the item is done.
    Delivered,
    /// Failed; try again at this instant.
    Failed {
        /// When to try again.
        retry_at: DateTime<Utc>,
    },
    /// Failed for too long: the item is given up.
    GaveUp,
}

/// One recorded delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRow {
    /// The outbox item.
    pub outbox_id: i64,
    /// The webhook's id.
    pub webhook: String,
    /// When.
    pub at: DateTime<Utc>,
    /// `delivered`, `failed` or `gave_up`.
    pub status: String,
    /// The HTTP status received, if any.
    pub http_status: Option<u16>,
    /// What went wrong.
    pub error: Option<String>,
}

/// A budget warning to record (once per fraction per window per key or group).
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetWarning<'a> {
    /// The rule.
    pub rule: &'a str,
    /// The key, or `None` for a group budget.
    pub key_hash: Option<&'a str>,
    /// The window's name.
    pub window: &'a str,
    /// When the window started.
    pub window_start: DateTime<Utc>,
    /// The `warn_at` fraction crossed.
    pub fraction: f64,
    /// Spend in the window.
    pub spend_usd: f64,
    /// The budget.
    pub budget_usd: f64,
}

impl Store {
    /// Records a `budget_warning` event unless this fraction of this window
    /// of this key or group was warned about already; `true` when recorded.
    pub async fn record_budget_warning(
        &self,
        run_id: Option<i64>,
        at: DateTime<Utc>,
        w: &BudgetWarning<'_>,
    ) -> anyhow::Result<bool> {
        let claim = OnceRow {
            table: "budget_warnings",
            rule: w.rule,
            subject: w.key_hash.unwrap_or(""),
            window: w.window,
            window_start: w.window_start,
            mark: Mark::Fraction(w.fraction),
            at,
        };
        let event = Warned {
            run_id,
            at,
            kind: EventKind::BudgetWarning,
            rule: w.rule,
            key_hash: w.key_hash,
        };
        self.warn_once(&claim, &event, || {
            json!({
                "window": w.window, "window_start": ts(w.window_start), "fraction": w.fraction,
                "spend_usd": w.spend_usd, "budget_usd": w.budget_usd,
                "scope": if w.key_hash.is_some() { "each" } else { "group" },
            })
        })
        .await
    }

    /// Records a `budget_forecast` event unless this horizon of this window
    /// of this key or group was warned about already; `true` when recorded.
    pub async fn record_forecast_warning(
        &self,
        run_id: Option<i64>,
        at: DateTime<Utc>,
        w: &ForecastWarning,
    ) -> anyhow::Result<bool> {
        let f = &w.forecast;
        let claim = OnceRow {
            table: "forecast_warnings",
            rule: &f.rule,
            subject: f.key_hash.as_deref().unwrap_or(""),
            window: f.window.as_str(),
            window_start: w.window_start,
            mark: Mark::Horizon(i64::try_from(w.horizon_secs).unwrap_or(i64::MAX)),
            at,
        };
        let event = Warned {
            run_id,
            at,
            kind: EventKind::BudgetForecast,
            rule: &f.rule,
            key_hash: f.key_hash.as_deref(),
        };
        self.warn_once(&claim, &event, || {
            json!({
                "scope": f.scope, "group": (f.scope == Scope::Group).then_some(&f.rule),
                "key_name": f.key_name, "window": f.window, "window_start": ts(w.window_start),
                "window_end": f.window_end.map(ts), "horizon": duration(w.horizon_secs),
                "horizon_secs": w.horizon_secs, "budget_usd": f.budget_usd,
                "at_fraction": f.at_fraction, "spend_usd": f.spend_usd,
                "rate_usd_per_hour": f.rate_usd_per_hour, "lookback_hours": f.lookback_hours,
                "projected_usd": f.projected_usd, "crossing_at": f.crossing_at.map(ts),
                "reason": w.reason(at),
            })
        })
        .await
    }

    /// Inserts `claim` (a warning's once-per-window row) unless it is there
    /// and, when it inserted the row, records `event` with `detail`, in one
    /// transaction; `true` when recorded.
    async fn warn_once(
        &self,
        claim: &OnceRow<'_>,
        event: &Warned<'_>,
        detail: impl FnOnce() -> Value,
    ) -> anyhow::Result<bool> {
        let mut tx = self.write().await?;
        let sql = format!(
            "INSERT INTO {} (rule, subject, \"window\", window_start, {}, at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            claim.table,
            claim.mark.column()
        );
        let inserted = on_conn!(tx.conn(), |c| {
            let query = sqlx::query(&sql)
                .bind(claim.rule)
                .bind(claim.subject)
                .bind(claim.window)
                .bind(ts(claim.window_start));
            let query = match claim.mark {
                Mark::Fraction(fraction) => query.bind(fraction),
                Mark::Horizon(secs) => query.bind(secs),
            };
            query
                .bind(ts(claim.at))
                .execute(&mut *c)
                .await?
                .rows_affected()
                == 1
        });
        if inserted {
            insert_event(
                tx.conn(),
                event.run_id,
                event.at,
                event.kind,
                Some(event.rule),
                event.key_hash,
                &detail(),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }

    /// Records an event that the service noticed itself (`reload_failed`).
    pub async fn record_service_event(
        &self,
        at: DateTime<Utc>,
        kind: EventKind,
        detail: &Value,
    ) -> anyhow::Result<i64> {
        self.record_event(None, at, kind, None, None, detail).await
    }

    /// Starts enqueueing notifications: one transaction, holding the write
    /// lock, that reads what is new since the outbox's cursor and moves the
    /// cursor past it on [`OutboxBatch::commit`].
    pub async fn outbox_batch(&self) -> anyhow::Result<OutboxBatch> {
        // The write lock first (`Store::write`), so nothing is inserted
        // behind the cursor.
        let mut tx = self.write().await?;
        let (last_change, last_event): (i64, i64) = on_conn!(tx.conn(), |c| {
            sqlx::query_as("SELECT last_change_id, last_event_id FROM notify_cursor")
                .fetch_one(&mut *c)
                .await?
        });
        Ok(OutboxBatch {
            tx,
            last_change,
            last_event,
        })
    }

    /// Outbox items after `after`, oldest first, at most `limit`.
    pub async fn outbox_after(&self, after: i64, limit: i64) -> anyhow::Result<Vec<OutboxItem>> {
        let rows: Vec<StoredItem> = on_pool!(self, |db| {
            sqlx::query_as(
                "SELECT id, event, at, payload FROM outbox WHERE id > $1 ORDER BY id LIMIT $2",
            )
            .bind(after)
            .bind(limit)
            .fetch_all(db)
            .await?
        });
        rows.into_iter()
            .map(|r| {
                Ok(OutboxItem {
                    id: r.id,
                    event: parse_event_kind(&r.event)?,
                    at: parse_ts(&r.at)?,
                    payload: serde_json::from_str(&r.payload)?,
                })
            })
            .collect()
    }

    /// Registers a webhook (by its id and `scheme://host`): a new one starts
    /// after the items already in the outbox. Returns its delivery state.
    pub async fn register_webhook(
        &self,
        webhook: &str,
        target: &str,
    ) -> anyhow::Result<DeliveryState> {
        on_pool!(self, |db| {
            sqlx::query(
                "INSERT INTO deliveries (webhook, target, last_outbox_id)
                 VALUES ($1, $2, (SELECT COALESCE(MAX(id), 0) FROM outbox))
                 ON CONFLICT DO NOTHING",
            )
            .bind(webhook)
            .bind(target)
            .execute(db)
            .await?;
        });
        self.delivery_state(webhook).await
    }

    /// Where a registered webhook is in the outbox.
    pub async fn delivery_state(&self, webhook: &str) -> anyhow::Result<DeliveryState> {
        let row: StoredDelivery = on_pool!(self, |db| {
            sqlx::query_as(
                "SELECT last_outbox_id, attempts, failing_since, next_attempt_at FROM deliveries
                 WHERE webhook = $1",
            )
            .bind(webhook)
            .fetch_one(db)
            .await?
        });
        let time = |t: Option<String>| t.as_deref().map(parse_ts).transpose();
        Ok(DeliveryState {
            last_outbox_id: row.last_outbox_id,
            attempts: row.attempts as u32,
            failing_since: time(row.failing_since)?,
            next_attempt_at: time(row.next_attempt_at)?,
        })
    }

    /// Moves a webhook past an item it does not want (no attempt is made).
    pub async fn skip_delivery(&self, webhook: &str, outbox_id: i64) -> anyhow::Result<()> {
        on_pool!(self, |db| {
            sqlx::query(
                "UPDATE deliveries SET last_outbox_id = $1, attempts = 0, failing_since = NULL,
                     next_attempt_at = NULL
                 WHERE webhook = $2 AND last_outbox_id < $1",
            )
            .bind(outbox_id)
            .bind(webhook)
            .execute(db)
            .await?;
        });
        Ok(())
    }

    /// Records one attempt to deliver `outbox_id` to `webhook` and moves the
    /// webhook on (delivered, given up) or schedules the retry, in one transaction.
    pub async fn record_attempt(
        &self,
        webhook: &str,
        outbox_id: i64,
        at: DateTime<Utc>,
        http_status: Option<u16>,
        error: Option<&str>,
        attempt: &Attempt,
    ) -> anyhow::Result<()> {
        let mut tx = self.write().await?;
        let status = match attempt {
            Attempt::Delivered => "delivered",
            Attempt::Failed { .. } => "failed",
            Attempt::GaveUp => "gave_up",
        };
        on_conn!(tx.conn(), |c| {
            sqlx::query(
                "INSERT INTO delivery_attempts (outbox_id, webhook, at, status, http_status, error)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(outbox_id)
            .bind(webhook)
            .bind(ts(at))
            .bind(status)
            .bind(http_status.map(i64::from))
            .bind(error)
            .execute(&mut *c)
            .await?;
            match attempt {
                Attempt::Delivered | Attempt::GaveUp => {
                    sqlx::query(
                        "UPDATE deliveries SET last_outbox_id = $1, attempts = 0,
                             failing_since = NULL, next_attempt_at = NULL
                         WHERE webhook = $2",
                    )
                    .bind(outbox_id)
                    .bind(webhook)
                    .execute(&mut *c)
                    .await?;
                }
                Attempt::Failed { retry_at } => {
                    sqlx::query(
                        "UPDATE deliveries SET attempts = attempts + 1,
                             failing_since = COALESCE(failing_since, $1), next_attempt_at = $2
                         WHERE webhook = $3",
                    )
                    .bind(ts(at))
                    .bind(ts(*retry_at))
                    .bind(webhook)
                    .execute(&mut *c)
                    .await?;
                }
            }
        });
        tx.commit().await?;
        Ok(())
    }

    /// Every delivery attempt, oldest first.
    pub async fn delivery_attempts(&self) -> anyhow::Result<Vec<AttemptRow>> {
        let rows: Vec<StoredAttempt> = on_pool!(self, |db| {
            sqlx::query_as(
                "SELECT outbox_id, webhook, at, status, http_status, error FROM delivery_attempts
                 ORDER BY id",
            )
            .fetch_all(db)
            .await?
        });
        rows.into_iter()
            .map(|r| {
                Ok(AttemptRow {
                    outbox_id: r.outbox_id,
                    at: parse_ts(&r.at)?,
                    http_status: r.http_status.map(|s| s as u16),
                    webhook: r.webhook,
                    status: r.status,
                    error: r.error,
                })
            })
            .collect()
    }
}

/// An outbox item as stored.
#[derive(FromRow)]
struct StoredItem {
    id: i64,
    event: String,
    at: String,
    payload: String,
}

/// A webhook's delivery position as stored.
#[derive(FromRow)]
struct StoredDelivery {
    last_outbox_id: i64,
    attempts: i64,
    failing_since: Option<String>,
    next_attempt_at: Option<String>,
}

/// A delivery attempt as stored.
#[derive(FromRow)]
struct StoredAttempt {
    outbox_id: i64,
    webhook: String,
    at: String,
    status: String,
    http_status: Option<i64>,
    error: Option<String>,
}

/// The row that makes a warning once per window: a `budget_warnings` or
/// `forecast_warnings` row.
struct OnceRow<'a> {
    table: &'static str,
    rule: &'a str,
    subject: &'a str,
    window: &'a str,
    window_start: DateTime<Utc>,
    mark: Mark,
    at: DateTime<Utc>,
}

/// What a warning is once per window for, besides its window.
#[derive(Clone, Copy)]
enum Mark {
    /// A budget's `warn_at` fraction.
    Fraction(f64),
    /// A forecast's horizon, in seconds.
    Horizon(i64),
}

impl Mark {
    /// Its column.
    fn column(self) -> &'static str {
        match self {
            Mark::Fraction(_) => "fraction",
            Mark::Horizon(_) => "horizon_secs",
        }
    }
}

/// The event of a warning recorded once per window.
struct Warned<'a> {
    run_id: Option<i64>,
    at: DateTime<Utc>,
    kind: EventKind,
    rule: &'a str,
    key_hash: Option<&'a str>,
}

/// An outage notified once when it begins and once when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outage {
    /// The API refuses the management key.
    Auth,
    /// A budget source (by its id) cannot be read.
    Source(String),
}

impl Outage {
    /// The stored `kind` and `subject`.
    fn columns(&self) -> (&'static str, &str) {
        match self {
            Outage::Auth => ("auth", ""),
            Outage::Source(id) => ("source", id),
        }
    }
}

/// Where an outbox item comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemOrigin {
    /// A change row, by id.
    Change(i64),
    /// An event row, by id.
    Event(i64),
}

/// Notifications being enqueued: one transaction with the outbox's cursor,
/// from [`Store::outbox_batch`]. Nothing is kept unless it is committed.
pub struct OutboxBatch {
    tx: Tx,
    last_change: i64,
    last_event: i64,
}

impl OutboxBatch {
    /// The change rows after the cursor that reached their final outcome,
    /// oldest first, stopping at the first still `pending`; the cursor moves
    /// past them.
    pub async fn final_changes(&mut self) -> anyhow::Result<Vec<ChangeRow>> {
        let sql = format!("SELECT {CHANGE_COLUMNS} FROM changes WHERE id > $1 ORDER BY id");
        let rows: Vec<StoredChange> = on_conn!(self.tx.conn(), |c| {
            sqlx::query_as(&sql)
                .bind(self.last_change)
                .fetch_all(&mut *c)
                .await?
        });
        let mut found = Vec::new();
        for row in rows {
            let change = stored_change(row)?;
            if change.outcome == Outcome::Pending {
                break;
            }
            self.last_change = change.id;
            found.push(change);
        }
        Ok(found)
    }

    /// The events after the cursor, oldest first; the cursor moves past them.
    pub async fn new_events(&mut self) -> anyhow::Result<Vec<EventRow>> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE id > $1 ORDER BY id");
        let rows: Vec<StoredEvent> = on_conn!(self.tx.conn(), |c| {
            sqlx::query_as(&sql)
                .bind(self.last_event)
                .fetch_all(&mut *c)
                .await?
        });
        let events = rows
            .into_iter()
            .map(stored_event)
            .collect::<anyhow::Result<Vec<_>>>()?;
        if let Some(last) = events.last() {
            self.last_event = last.id;
        }
        Ok(events)
    }

    /// Opens `outage`, begun at `since` in run `run_id`; `false` when it was
    /// open already.
    pub async fn open_outage(
        &mut self,
        outage: &Outage,
        since: DateTime<Utc>,
        run_id: Option<i64>,
    ) -> anyhow::Result<bool> {
        let (kind, subject) = outage.columns();
        let opened = on_conn!(self.tx.conn(), |c| {
            sqlx::query(
                "INSERT INTO outages (kind, subject, since, run_id) VALUES ($1, $2, $3, $4)
                 ON CONFLICT DO NOTHING",
            )
            .bind(kind)
            .bind(subject)
            .bind(ts(since))
            .bind(run_id)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        Ok(opened == 1)
    }

    /// Closes the outages that ended and returns them: the credential works
    /// again when a run after the outage's listed keys (status `ok` or
    /// `failed`); a source when its stored error is gone.
    pub async fn close_ended_outages(&mut self) -> anyhow::Result<Vec<Outage>> {
        on_conn!(self.tx.conn(), |conn| {
            let mut ended = Vec::new();
            let open: Vec<(String, String, Option<i64>)> = sqlx::query_as(
                "SELECT kind, subject, run_id FROM outages ORDER BY since, kind, subject",
            )
            .fetch_all(&mut *conn)
            .await?;
            for (kind, subject, run_id) in open {
                let over = if kind == "auth" {
                    let last: Option<(i64, String)> = sqlx::query_as(
                        "SELECT id, status FROM runs WHERE finished_at IS NOT NULL
                         ORDER BY id DESC LIMIT 1",
                    )
                    .fetch_optional(&mut *conn)
                    .await?;
                    last.is_some_and(|(id, status)| {
                        id > run_id.unwrap_or(0) && (status == "ok" || status == "failed")
                    })
                } else {
                    let error: Option<Option<String>> =
                        sqlx::query_scalar("SELECT error FROM source_values WHERE source_id = $1")
                            .bind(&subject)
                            .fetch_optional(&mut *conn)
                            .await?;
                    matches!(error, Some(None))
                };
                if !over {
                    continue;
                }
                sqlx::query("DELETE FROM outages WHERE kind = $1 AND subject = $2")
                    .bind(&kind)
                    .bind(&subject)
                    .execute(&mut *conn)
                    .await?;
                ended.push(if kind == "auth" {
                    Outage::Auth
                } else {
                    Outage::Source(subject)
                });
            }
            Ok(ended)
        })
    }

    /// Records an event of no run (a recovery) at `at`; the cursor moves
    /// past it. Returns its id.
    pub async fn record_event(
        &mut self,
        at: DateTime<Utc>,
        kind: EventKind,
        detail: &Value,
    ) -> anyhow::Result<i64> {
        let id = insert_event(self.tx.conn(), None, at, kind, None, None, detail).await?;
        self.last_event = id;
        Ok(id)
    }

    /// Adds an item to the outbox.
    pub async fn enqueue(
        &mut self,
        event: EventKind,
        at: DateTime<Utc>,
        payload: &Value,
        origin: ItemOrigin,
    ) -> anyhow::Result<()> {
        let (change_id, event_id) = match origin {
            ItemOrigin::Change(id) => (Some(id), None),
            ItemOrigin::Event(id) => (None, Some(id)),
        };
        on_conn!(self.tx.conn(), |c| {
            sqlx::query(
                "INSERT INTO outbox (event, at, payload, change_id, event_id)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(event.as_str())
            .bind(ts(at))
            .bind(payload.to_string())
            .bind(change_id)
            .bind(event_id)
            .execute(&mut *c)
            .await?;
        });
        Ok(())
    }

    /// Moves the cursor past everything read and keeps what was written.
    pub async fn commit(mut self) -> anyhow::Result<()> {
        on_conn!(self.tx.conn(), |c| {
            sqlx::query("UPDATE notify_cursor SET last_change_id = $1, last_event_id = $2")
                .bind(self.last_change)
                .bind(self.last_event)
                .execute(&mut *c)
                .await?;
        });
        self.tx.commit().await?;
        Ok(())
    }
}

/// A horizon as rules write it (`"3days"`, `"12h"`).
fn duration(secs: u64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
}
