//! Which events are notified, and what they say (SPEC §7): a final change
//! row becomes `key_disabled`, `key_enabled` or `change_failed`; an outage
//! (`source_error`, `auth_failed`) is notified when it begins and again when
//! it ends (`source_recovered`, `auth_recovered`); warnings (`budget_warning`,
//! `budget_forecast`) say where spend is and is heading; a conflict is
//! recorded only. The outbox's tables are `store::outbox`.

use crate::config::NotifyFormat;
use crate::domain::event::EventKind;
use crate::domain::timestamp::{rfc3339, rfc3339_minutes};
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
        EventKind::BudgetForecast => forecast_reason(e),
        EventKind::ReloadFailed => format!(
            "reload failed, the previous rules stay in force: {}",
            text("error")
        ),
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

/// What a `budget_forecast` says, for a person to act on: who (the group
/// or key, named beside the text), how much (spend of budget), how fast
/// (USD/h), when (the crossing, and how long until it from the event).
fn forecast_reason(e: &EventRow) -> String {
    let d = &e.detail;
    let usd = |k: &str| d[k].as_f64().unwrap_or(0.0);
    let who = if d["scope"] == "group" {
        "group"
    } else {
        "key"
    };
    let budget = usd("budget_usd");
    let fraction = d["at_fraction"].as_f64().unwrap_or(1.0);
    let target = if (fraction - 1.0).abs() < 1e-9 {
        "the budget".to_string()
    } else {
        format!(
            "{:.0}% of it ({:.2} USD)",
            fraction * 100.0,
            fraction * budget
        )
    };
    let crossing = d["crossing_at"]
        .as_str()
        .and_then(|s| s.parse::<DateTime<Utc>>().ok());
    let when = match crossing {
        Some(at) => format!("{} (in {})", rfc3339_minutes(at), span(at - e.at)),
        None => "an unknown time".into(),
    };
    let mut text = format!(
        "{who} {} spend {:.2} of {budget:.2} USD at {:.2} USD/h reaches {target} at {when}",
        d["window"].as_str().unwrap_or(""),
        usd("spend_usd"),
        usd("rate_usd_per_hour"),
    );
    if let Some(projected) = d["projected_usd"].as_f64() {
        text.push_str(&format!(
            "; {projected:.2} USD projected by the window's end"
        ));
    }
    if let Some(horizon) = d["horizon_secs"].as_i64() {
        text.push_str(&format!(
            " (warn_before {})",
            span(chrono::Duration::seconds(horizon))
        ));
    }
    text
}

/// A lead time as people say it: `2d 5h`, `17h`, `17h 30m`, `45m`.
fn span(d: chrono::Duration) -> String {
    let minutes = d.num_minutes().max(0);
    let (days, hours, mins) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    let parts = [
        (days, "d"),
        (hours, "h"),
        (if days > 0 { 0 } else { mins }, "m"),
    ];
    let text: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if text.is_empty() {
        "0m".into()
    } else {
        text.join(" ")
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
    fn a_budget_forecast_says_who_how_much_how_fast_and_when() {
        let at: DateTime<Utc> = "2026-12-16T16:00:00Z".parse().unwrap();
        let event = EventRow {
            id: 3,
            run_id: Some(2),
            at,
            kind: EventKind::BudgetForecast,
            rule: Some("team-a-monthly".into()),
            key_hash: None,
            detail: json!({
                "scope": "group", "group": "team-a-monthly", "key_name": null,
                "window": "monthly", "budget_usd": 50.0, "at_fraction": 1.0,
                "spend_usd": 31.3, "rate_usd_per_hour": 0.35, "projected_usd": 89.95,
                "crossing_at": "2026-12-18T21:30:00Z", "horizon_secs": 259200,
            }),
        };
        assert_eq!(
            forecast_reason(&event),
            "group monthly spend 31.30 of 50.00 USD at 0.35 USD/h reaches the budget at \
             2026-12-18T21:30Z (in 2d 5h); 89.95 USD projected by the window's end (warn_before 3d)"
        );
        assert_eq!(span(chrono::Duration::minutes(17 * 60 + 30)), "17h 30m");
        assert_eq!(span(chrono::Duration::seconds(20)), "0m");
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
