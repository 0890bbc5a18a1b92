//! Which events are notified, and what they say (SPEC §7): a final change
//! row becomes `key_disabled`, `key_enabled` or `change_failed`; an outage
//! (`source_error`, `auth_failed`) is notified when it begins and again when
//! it ends (`source_recovered`, `auth_recovered`); warnings (`budget_warning`,
//! `budget_forecast`) say where spend is and is heading; a conflict is
//! recorded only. The outbox's tables are `store::outbox`.

use crate::config::NotifyFormat;
use crate::domain::event::EventKind;
use crate::domain::timestamp::rfc3339;
use crate::engine::Outcome;
use crate::store::outbox::{ItemOrigin, Outage, OutboxBatch, OutboxItem};
use crate::store::{ChangeRow, EventRow, Store};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// Enqueues every change row and event not enqueued yet, in one
/// transaction with the cursor: final change rows (stopping at the first
/// still `pending`), notifiable events (`source_error` and `auth_failed`
/// once per outage), and the recovery of outages that ended
/// (`auth_recovered` after a run that listed keys, `source_recovered` when
/// a source reads fine again), recorded at `at`. Returns how many items
/// were added.
pub async fn enqueue(store: &Store, at: DateTime<Utc>) -> anyhow::Result<usize> {
    let mut batch = store.outbox_batch().await?;
    let mut added = 0;
    for change in batch.final_changes().await? {
        let fields = serde_json::to_value(&change.fields)?;
        if let Some(event) = change_event(change.outcome, &fields) {
            let payload = change_payload(event, &change, fields);
            batch
                .enqueue(event, change.at, &payload, ItemOrigin::Change(change.id))
                .await?;
            added += 1;
        }
    }
    for event in batch.new_events().await? {
        if let Some(reason) = event_reason(&mut batch, &event).await? {
            let payload = event_payload(&event, reason);
            batch
                .enqueue(event.kind, event.at, &payload, ItemOrigin::Event(event.id))
                .await?;
            added += 1;
        }
    }
    for outage in batch.close_ended_outages().await? {
        let Recovery {
            kind,
            detail,
            reason,
        } = recovery(&outage);
        let id = batch.record_event(at, kind, &detail).await?;
        let event = EventRow {
            id,
            run_id: None,
            at,
            kind,
            rule: None,
            key_hash: None,
            detail,
        };
        let payload = event_payload(&event, reason);
        batch
            .enqueue(kind, at, &payload, ItemOrigin::Event(id))
            .await?;
        added += 1;
    }
    batch.commit().await?;
    Ok(added)
}

/// The event a final change row is notified as, if any, by its outcome
/// and its `fields` as stored.
fn change_event(outcome: Outcome, fields: &Value) -> Option<EventKind> {
    match outcome {
        Outcome::Failed | Outcome::Unknown => Some(EventKind::ChangeFailed),
        Outcome::Applied => match fields.pointer("/disabled/to") {
            Some(Value::Bool(true)) => Some(EventKind::KeyDisabled),
            Some(Value::Bool(false)) => Some(EventKind::KeyEnabled),
            _ => None,
        },
        _ => None,
    }
}

/// The JSON sent for a change row notified as `event`, with its `fields`.
fn change_payload(event: EventKind, c: &ChangeRow, fields: Value) -> Value {
    json!({
        "event": event, "at": rfc3339(c.at), "change_id": c.id, "run_id": c.run_id,
        "key_hash": c.key_hash, "key_name": c.key_name, "rule": c.rule, "reason": c.reason,
        "kind": c.kind, "fields": fields, "outcome": c.outcome,
        "error": c.error, "http_status": c.http_status,
    })
}

/// The reason an event is notified with, opening outages as it goes;
/// `None` for events that are not (conflicts, a repeat of an open outage).
async fn event_reason(batch: &mut OutboxBatch, e: &EventRow) -> anyhow::Result<Option<String>> {
    let text = |k: &str| {
        e.detail
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let reason = match e.kind {
        EventKind::GuardTripped => format!(
            "the blast-radius guard held {} changes back (max_changes_per_run {}, max_disable_fraction {})",
            e.detail["held_changes"],
            e.detail["max_changes_per_run"],
            e.detail["max_disable_fraction"]
        ),
        EventKind::BudgetWarning => format!(
            "{} spend {:.2} USD reached {:.0}% of the {:.2} USD budget",
            text("window"),
            e.detail["spend_usd"].as_f64().unwrap_or(0.0),
            e.detail["fraction"].as_f64().unwrap_or(0.0) * 100.0,
            e.detail["budget_usd"].as_f64().unwrap_or(0.0)
        ),
        EventKind::BudgetForecast => text("reason"),
        EventKind::ReloadFailed => format!(
            "reload failed, the previous rules stay in force: {}",
            text("error")
        ),
        EventKind::LeaderChanged => leader_changed_reason(&e.detail),
        EventKind::SourceError => {
            if e.detail.get("new_outage") != Some(&Value::Bool(true)) {
                return Ok(None);
            }
            let outage = Outage::Source(text("source"));
            batch.open_outage(&outage, e.at, e.run_id).await?;
            format!("budget source {} failed: {}", text("source"), text("error"))
        }
        EventKind::AuthFailed => {
            if !batch.open_outage(&Outage::Auth, e.at, e.run_id).await? {
                return Ok(None);
            }
            format!("the API refused the management key: {}", text("error"))
        }
        EventKind::KeyDisabled
        | EventKind::KeyEnabled
        | EventKind::ChangeFailed
        | EventKind::SourceRecovered
        | EventKind::AuthRecovered
        | EventKind::Conflict => return Ok(None),
    };
    Ok(Some(reason))
}

/// `host-b pid 7 leads now, after host-a pid 42`: the reason of a
/// `leader_changed` event with its `detail`.
fn leader_changed_reason(detail: &Value) -> String {
    let name = |v: &Value| {
        format!(
            "{} pid {}",
            v.get("host").and_then(Value::as_str).unwrap_or("?"),
            v.get("pid").unwrap_or(&Value::Null)
        )
    };
    match detail.get("before").filter(|b| b.is_object()) {
        Some(before) => format!("{} leads now, after {}", name(detail), name(before)),
        None => format!("{} leads now", name(detail)),
    }
}

/// The event recorded when an outage ends.
struct Recovery {
    /// `auth_recovered` or `source_recovered`.
    kind: EventKind,
    /// The event's detail.
    detail: Value,
    /// What the notification says.
    reason: String,
}

/// The event recorded when `outage` ends.
fn recovery(outage: &Outage) -> Recovery {
    match outage {
        Outage::Auth => Recovery {
            kind: EventKind::AuthRecovered,
            detail: json!({}),
            reason: "the API accepts the management key again".into(),
        },
        Outage::Source(source) => Recovery {
            kind: EventKind::SourceRecovered,
            detail: json!({ "source": source }),
            reason: format!("budget source {source} reads fine again"),
        },
    }
}

/// The JSON sent for an event notified with `reason`.
fn event_payload(e: &EventRow, reason: String) -> Value {
    json!({
        "event": e.kind, "at": rfc3339(e.at), "event_id": e.id, "run_id": e.run_id,
        "rule": e.rule, "key_hash": e.key_hash, "key_name": e.detail.get("key_name").unwrap_or(&Value::Null),
        "reason": reason, "detail": e.detail,
    })
}

/// The body sent for `item`: the payload as is (`json`), or a Slack
/// message whose text has the event name, the key name and the reason.
pub fn body(format: NotifyFormat, item: &OutboxItem) -> Value {
    match format {
        NotifyFormat::Json => item.payload.clone(),
        NotifyFormat::Slack => {
            let p = &item.payload;
            let s = |k: &str| p.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
            let mut text = format!("keywarden: {}", item.event);
            if let Some(key) = s("key_name").or(s("key_hash")) {
                text.push_str(&format!(" · key {key}"));
            }
            if let Some(rule) = s("rule") {
                text.push_str(&format!(" · rule {rule}"));
            }
            if let Some(reason) = s("reason") {
                text.push_str(&format!(": {reason}"));
            }
            json!({ "text": text })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_changes_are_notified_by_outcome_and_the_disabled_field() {
        let disabled = |to: bool| json!({ "disabled": { "from": !to, "to": to } });
        let limit = json!({ "limit": { "from": 10.0, "to": 20.0 } });
        let cases = [
            (
                Outcome::Applied,
                disabled(true),
                Some(EventKind::KeyDisabled),
            ),
            (
                Outcome::Applied,
                disabled(false),
                Some(EventKind::KeyEnabled),
            ),
            (Outcome::Applied, limit.clone(), None),
            (
                Outcome::Failed,
                limit.clone(),
                Some(EventKind::ChangeFailed),
            ),
            (
                Outcome::Unknown,
                disabled(true),
                Some(EventKind::ChangeFailed),
            ),
            (Outcome::Held, disabled(true), None),
            (Outcome::DryRun, disabled(true), None),
        ];
        for (outcome, fields, event) in cases {
            assert_eq!(change_event(outcome, &fields), event, "{outcome} {fields}");
        }
    }

    #[test]
    fn a_change_of_leader_names_who_leads_and_who_led() {
        let now = json!({ "host": "host-b", "pid": 7, "before": { "host": "host-a", "pid": 42 } });
        assert_eq!(
            leader_changed_reason(&now),
            "host-b pid 7 leads now, after host-a pid 42"
        );
        let first = json!({ "host": "host-b", "pid": 7, "before": null });
        assert_eq!(leader_changed_reason(&first), "host-b pid 7 leads now");
    }

    #[test]
    fn a_recovery_names_what_recovered() {
        let source = recovery(&Outage::Source("env:TEAM_B_BUDGET_USD".into()));
        assert_eq!(source.kind, EventKind::SourceRecovered);
        assert_eq!(source.detail, json!({ "source": "env:TEAM_B_BUDGET_USD" }));
        assert_eq!(
            source.reason,
            "budget source env:TEAM_B_BUDGET_USD reads fine again"
        );
        assert_eq!(recovery(&Outage::Auth).kind, EventKind::AuthRecovered);
    }
}
