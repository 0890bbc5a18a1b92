//! The notification outbox (SPEC §7): enqueueing change rows and events
//! exactly once, budget warnings once per fraction per window, outages once
//! with their recovery, and each webhook's delivery position and attempts.

use super::{Store, parse_ts, ts};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::{Row as _, SqliteConnection};

/// One item of the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    /// Its id: the delivery order.
    pub id: i64,
    /// The event name (`key_disabled`, `budget_warning`, …).
    pub event: String,
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
        let mut tx = self.write().await?;
        let inserted = sqlx::query(
            "INSERT OR IGNORE INTO budget_warnings (rule, subject, window, window_start, fraction, at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(w.rule)
        .bind(w.key_hash.unwrap_or(""))
        .bind(w.window)
        .bind(ts(w.window_start))
        .bind(w.fraction)
        .bind(ts(at))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            let detail = json!({
                "window": w.window, "window_start": ts(w.window_start), "fraction": w.fraction,
                "spend_usd": w.spend_usd, "budget_usd": w.budget_usd,
                "scope": if w.key_hash.is_some() { "each" } else { "group" },
            });
            insert_event(
                &mut tx,
                run_id,
                at,
                "budget_warning",
                Some(w.rule),
                w.key_hash,
                &detail,
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
        kind: &str,
        detail: &Value,
    ) -> anyhow::Result<i64> {
        let mut conn = self.pool.acquire().await?;
        insert_event(&mut conn, None, at, kind, None, None, detail).await
    }

    /// Enqueues every change row and event not enqueued yet, in one
    /// transaction with the cursor: final change rows (stopping at the first
    /// still `pending`), notifiable events (`source_error` and `auth_failed`
    /// once per outage), and the recovery of outages that ended
    /// (`auth_recovered` after a run that listed keys, `source_recovered`
    /// when a source reads fine again). Returns how many items were added.
    pub async fn enqueue_notifications(&self, at: DateTime<Utc>) -> anyhow::Result<usize> {
        let mut tx = self.write().await?;
        // Take the write lock first, so nothing is inserted behind the cursor.
        sqlx::query("UPDATE notify_cursor SET id = id")
            .execute(&mut *tx)
            .await?;
        let (mut last_change, mut last_event): (i64, i64) =
            sqlx::query_as("SELECT last_change_id, last_event_id FROM notify_cursor")
                .fetch_one(&mut *tx)
                .await?;
        let mut added = 0;
        let rows = sqlx::query(
            "SELECT id, run_id, at, rule, key_hash, key_name, kind, fields, reason, outcome, error, http_status
             FROM changes WHERE id > ? ORDER BY id",
        )
        .bind(last_change)
        .fetch_all(&mut *tx)
        .await?;
        for row in &rows {
            let outcome: String = row.get("outcome");
            if outcome == "pending" {
                break;
            }
            last_change = row.get("id");
            let fields: Value = serde_json::from_str(row.get("fields"))?;
            let Some(event) = change_event(&outcome, &fields) else {
                continue;
            };
            let change_at: String = row.get("at");
            let payload = json!({
                "event": event, "at": change_at, "change_id": last_change,
                "run_id": row.get::<Option<i64>, _>("run_id"),
                "key_hash": row.get::<String, _>("key_hash"), "key_name": row.get::<String, _>("key_name"),
                "rule": row.get::<String, _>("rule"), "reason": row.get::<String, _>("reason"),
                "kind": row.get::<String, _>("kind"), "fields": fields, "outcome": outcome,
                "error": row.get::<Option<String>, _>("error"),
                "http_status": row.get::<Option<i64>, _>("http_status"),
            });
            insert_item(
                &mut tx,
                event,
                &change_at,
                &payload,
                Some(last_change),
                None,
            )
            .await?;
            added += 1;
        }
        for row in events_after(&mut tx, last_event).await? {
            last_event = row.id;
            if let Some(payload) = event_payload(&mut tx, &row).await? {
                insert_item(
                    &mut tx,
                    &row.kind,
                    &ts(row.at),
                    &payload,
                    None,
                    Some(row.id),
                )
                .await?;
                added += 1;
            }
        }
        for (kind, detail) in recoveries(&mut tx).await? {
            let id = insert_event(&mut tx, None, at, kind, None, None, &detail).await?;
            let row = EventData {
                id,
                run_id: None,
                at,
                kind: kind.into(),
                rule: None,
                key_hash: None,
                detail,
            };
            let payload = event_json(&row, recovery_reason(&row));
            insert_item(&mut tx, kind, &ts(at), &payload, None, Some(id)).await?;
            last_event = id;
            added += 1;
        }
        sqlx::query("UPDATE notify_cursor SET last_change_id = ?, last_event_id = ?")
            .bind(last_change)
            .bind(last_event)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(added)
    }

    /// Outbox items after `after`, oldest first, at most `limit`.
    pub async fn outbox_after(&self, after: i64, limit: i64) -> anyhow::Result<Vec<OutboxItem>> {
        let rows = sqlx::query(
            "SELECT id, event, at, payload FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OutboxItem {
                    id: r.get("id"),
                    event: r.get("event"),
                    at: parse_ts(r.get("at"))?,
                    payload: serde_json::from_str(r.get("payload"))?,
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
        sqlx::query(
            "INSERT OR IGNORE INTO deliveries (webhook, target, last_outbox_id)
             VALUES (?, ?, (SELECT COALESCE(MAX(id), 0) FROM outbox))",
        )
        .bind(webhook)
        .bind(target)
        .execute(&self.pool)
        .await?;
        self.delivery_state(webhook).await
    }

    /// Where a registered webhook is in the outbox.
    pub async fn delivery_state(&self, webhook: &str) -> anyhow::Result<DeliveryState> {
        let row = sqlx::query(
            "SELECT last_outbox_id, attempts, failing_since, next_attempt_at FROM deliveries WHERE webhook = ?",
        )
        .bind(webhook)
        .fetch_one(&self.pool)
        .await?;
        let time = |c: &str| {
            row.get::<Option<String>, _>(c)
                .map(|s| parse_ts(&s))
                .transpose()
        };
        Ok(DeliveryState {
            last_outbox_id: row.get("last_outbox_id"),
            attempts: row.get::<i64, _>("attempts") as u32,
            failing_since: time("failing_since")?,
            next_attempt_at: time("next_attempt_at")?,
        })
    }

    /// Moves a webhook past an item it does not want (no attempt is made).
    pub async fn skip_delivery(&self, webhook: &str, outbox_id: i64) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE deliveries SET last_outbox_id = ?, attempts = 0, failing_since = NULL, next_attempt_at = NULL
             WHERE webhook = ? AND last_outbox_id < ?",
        )
        .bind(outbox_id)
        .bind(webhook)
        .bind(outbox_id)
        .execute(&self.pool)
        .await?;
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
        sqlx::query(
            "INSERT INTO delivery_attempts (outbox_id, webhook, at, status, http_status, error)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(outbox_id)
        .bind(webhook)
        .bind(ts(at))
        .bind(status)
        .bind(http_status.map(i64::from))
        .bind(error)
        .execute(&mut *tx)
        .await?;
        match attempt {
            Attempt::Delivered | Attempt::GaveUp => {
                sqlx::query(
                    "UPDATE deliveries SET last_outbox_id = ?, attempts = 0, failing_since = NULL,
                     next_attempt_at = NULL WHERE webhook = ?",
                )
                .bind(outbox_id)
                .bind(webhook)
                .execute(&mut *tx)
                .await?;
            }
            Attempt::Failed { retry_at } => {
                sqlx::query(
                    "UPDATE deliveries SET attempts = attempts + 1,
                     failing_since = COALESCE(failing_since, ?), next_attempt_at = ? WHERE webhook = ?",
                )
                .bind(ts(at))
                .bind(ts(*retry_at))
                .bind(webhook)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every delivery attempt, oldest first.
    pub async fn delivery_attempts(&self) -> anyhow::Result<Vec<AttemptRow>> {
        let rows = sqlx::query(
            "SELECT outbox_id, webhook, at, status, http_status, error FROM delivery_attempts ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AttemptRow {
                    outbox_id: r.get("outbox_id"),
                    webhook: r.get("webhook"),
                    at: parse_ts(r.get("at"))?,
                    status: r.get("status"),
                    http_status: r.get::<Option<i64>, _>("http_status").map(|s| s as u16),
                    error: r.get("error"),
                })
            })
            .collect()
    }
}

/// The event a final change row is notified as, if any.
fn change_event(outcome: &str, fields: &Value) -> Option<&'static str> {
    match outcome {
        "failed" | "unknown" => Some("change_failed"),
        "applied" => match fields.pointer("/disabled/to") {
            Some(Value::Bool(true)) => Some("key_disabled"),
            Some(Value::Bool(false)) => Some("key_enabled"),
            _ => None,
        },
        _ => None,
    }
}

/// An event row, as read inside a transaction.
struct EventData {
    id: i64,
    run_id: Option<i64>,
    at: DateTime<Utc>,
    kind: String,
    rule: Option<String>,
    key_hash: Option<String>,
    detail: Value,
}

async fn events_after(conn: &mut SqliteConnection, after: i64) -> anyhow::Result<Vec<EventData>> {
    let rows = sqlx::query(
        "SELECT id, run_id, at, kind, rule, key_hash, detail FROM events WHERE id > ? ORDER BY id",
    )
    .bind(after)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(EventData {
                id: r.get("id"),
                run_id: r.get("run_id"),
                at: parse_ts(r.get("at"))?,
                kind: r.get("kind"),
                rule: r.get("rule"),
                key_hash: r.get("key_hash"),
                detail: serde_json::from_str(r.get("detail"))?,
            })
        })
        .collect()
}

/// The payload of an event that is notified, opening outages as it goes;
/// `None` for events that are not (conflicts, a repeat of an open outage).
async fn event_payload(
    conn: &mut SqliteConnection,
    e: &EventData,
) -> anyhow::Result<Option<Value>> {
    let text = |k: &str| {
        e.detail
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let reason = match e.kind.as_str() {
        "guard_tripped" => format!(
            "the blast-radius guard held {} changes back (max_changes_per_run {}, max_disable_fraction {})",
            e.detail["held_changes"],
            e.detail["max_changes_per_run"],
            e.detail["max_disable_fraction"]
        ),
        "budget_warning" => format!(
            "{} spend {:.2} USD reached {:.0}% of the {:.2} USD budget",
            text("window"),
            e.detail["spend_usd"].as_f64().unwrap_or(0.0),
            e.detail["fraction"].as_f64().unwrap_or(0.0) * 100.0,
            e.detail["budget_usd"].as_f64().unwrap_or(0.0)
        ),
        "reload_failed" => format!(
            "reload failed, the previous rules stay in force: {}",
            text("error")
        ),
        "source_error" => {
            if e.detail.get("new_outage") != Some(&Value::Bool(true)) {
                return Ok(None);
            }
            open_outage(conn, "source", &text("source"), e).await?;
            format!("budget source {} failed: {}", text("source"), text("error"))
        }
        "auth_failed" => {
            if !open_outage(conn, "auth", "", e).await? {
                return Ok(None);
            }
            format!("the API refused the management key: {}", text("error"))
        }
        _ => return Ok(None),
    };
    Ok(Some(event_json(e, reason)))
}

fn event_json(e: &EventData, reason: String) -> Value {
    json!({
        "event": e.kind, "at": ts(e.at), "event_id": e.id, "run_id": e.run_id,
        "rule": e.rule, "key_hash": e.key_hash, "key_name": Value::Null,
        "reason": reason, "detail": e.detail,
    })
}

fn recovery_reason(e: &EventData) -> String {
    match e.kind.as_str() {
        "auth_recovered" => "the API accepts the management key again".into(),
        _ => format!(
            "budget source {} reads fine again",
            e.detail.get("source").and_then(Value::as_str).unwrap_or("")
        ),
    }
}

/// Opens an outage; `false` when it was open already.
async fn open_outage(
    conn: &mut SqliteConnection,
    kind: &str,
    subject: &str,
    e: &EventData,
) -> anyhow::Result<bool> {
    let r = sqlx::query(
        "INSERT OR IGNORE INTO outages (kind, subject, since, run_id) VALUES (?, ?, ?, ?)",
    )
    .bind(kind)
    .bind(subject)
    .bind(ts(e.at))
    .bind(e.run_id)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Closes the outages that ended and returns their recovery events: the
/// credential works again when a run after the outage's listed keys
/// (status `ok` or `failed`); a source when its stored error is gone.
async fn recoveries(conn: &mut SqliteConnection) -> anyhow::Result<Vec<(&'static str, Value)>> {
    let mut found = Vec::new();
    let open: Vec<(String, String, Option<i64>)> =
        sqlx::query_as("SELECT kind, subject, run_id FROM outages ORDER BY since, kind, subject")
            .fetch_all(&mut *conn)
            .await?;
    for (kind, subject, run_id) in open {
        let ended = if kind == "auth" {
            let last: Option<(i64, String)> = sqlx::query_as(
                "SELECT id, status FROM runs WHERE finished_at IS NOT NULL ORDER BY id DESC LIMIT 1",
            )
            .fetch_optional(&mut *conn)
            .await?;
            last.is_some_and(|(id, status)| {
                id > run_id.unwrap_or(0) && (status == "ok" || status == "failed")
            })
        } else {
            let error: Option<Option<String>> =
                sqlx::query_scalar("SELECT error FROM source_values WHERE source_id = ?")
                    .bind(&subject)
                    .fetch_optional(&mut *conn)
                    .await?;
            matches!(error, Some(None))
        };
        if !ended {
            continue;
        }
        sqlx::query("DELETE FROM outages WHERE kind = ? AND subject = ?")
            .bind(&kind)
            .bind(&subject)
            .execute(&mut *conn)
            .await?;
        found.push(if kind == "auth" {
            ("auth_recovered", json!({}))
        } else {
            ("source_recovered", json!({ "source": subject }))
        });
    }
    Ok(found)
}

async fn insert_event(
    conn: &mut SqliteConnection,
    run_id: Option<i64>,
    at: DateTime<Utc>,
    kind: &str,
    rule: Option<&str>,
    key_hash: Option<&str>,
    detail: &Value,
) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO events (run_id, at, kind, rule, key_hash, detail) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(run_id)
    .bind(ts(at))
    .bind(kind)
    .bind(rule)
    .bind(key_hash)
    .bind(detail.to_string())
    .fetch_one(&mut *conn)
    .await?)
}

async fn insert_item(
    conn: &mut SqliteConnection,
    event: &str,
    at: &str,
    payload: &Value,
    change_id: Option<i64>,
    event_id: Option<i64>,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO outbox (event, at, payload, change_id, event_id) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(event)
    .bind(at)
    .bind(payload.to_string())
    .bind(change_id)
    .bind(event_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
