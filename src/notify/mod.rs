//! Webhook notifications (SPEC §7): a worker that drains the durable outbox
//! (`store::outbox`) to every enabled `[[notify]]` that names each event, in
//! order per webhook, at least once, retrying with exponential backoff, and
//! recording every attempt; what is enqueued, and its wording, is
//! [`events`]. URLs may carry secrets: only `scheme://host` is
//! ever logged or stored.

pub mod events;

use crate::clock::Clock;
use crate::config::{NotifyConfig, NotifyFormat};
use crate::domain::event::EventKind;
use crate::store::Store;
use crate::store::outbox::{Attempt, OutboxItem};
use chrono::{DateTime, Utc};
use events::body;
pub use events::enqueue;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// Retry timing of a failed delivery.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The first delay; each failure doubles it.
    pub base: Duration,
    /// The longest delay.
    pub max: Duration,
    /// An item failing for this long is given up (recorded `gave_up`).
    pub give_up_after: Duration,
}

impl Default for Backoff {
    /// 5 s doubling up to 10 min, given up after 24 h.
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(5),
            max: Duration::from_secs(600),
            give_up_after: Duration::from_secs(24 * 3600),
        }
    }
}

impl Backoff {
    /// The delay after the `failures`-th failure (1-based).
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(20));
        self.base.saturating_mul(factor).min(self.max)
    }
}

/// One configured webhook.
#[derive(Clone)]
pub struct Webhook {
    /// A digest of the URL: the webhook's stored identity.
    pub id: String,
    /// `scheme://host[:port]`, for logs.
    pub target: String,
    url: String,
    format: NotifyFormat,
    events: Vec<EventKind>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("target", &self.target)
            .field("format", &self.format)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// The enabled webhooks of the configuration.
    pub fn from_config(notify: &[NotifyConfig]) -> Vec<Webhook> {
        notify
            .iter()
            .filter(|n| n.enabled)
            .map(|n| Webhook {
                id: hex(&Sha256::digest(n.url.as_bytes())[..8]),
                target: target(&n.url),
                url: n.url.clone(),
                format: n.format,
                events: n.events.clone(),
            })
            .collect()
    }

    /// Whether this webhook wants `event` (no `events` = every event).
    pub fn wants(&self, event: EventKind) -> bool {
        self.events.is_empty() || self.events.contains(&event)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `scheme://host[:port]` of a URL, never its path, query or credentials.
pub fn target(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{}://{h}:{p}", u.scheme()),
            (Some(h), None) => format!("{}://{h}", u.scheme()),
            _ => format!("{}:", u.scheme()),
        },
        Err(_) => "(invalid URL)".into(),
    }
}

/// The delivery worker.
pub struct Notifier {
    store: Store,
    webhooks: Vec<Webhook>,
    http: reqwest::Client,
    backoff: Backoff,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
}

impl Notifier {
    /// A worker for `webhooks`; the handle of [`Notifier::waker`] makes it look at once.
    pub fn new(
        store: Store,
        webhooks: Vec<Webhook>,
        backoff: Backoff,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Notifier> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("keywarden/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Notifier {
            store,
            webhooks,
            http,
            backoff,
            clock,
            wake: Arc::new(Notify::new()),
        })
    }

    /// A handle that makes the worker look at the outbox now.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Registers every webhook (a new one starts after the current outbox).
    pub async fn register(&self) -> anyhow::Result<()> {
        for w in &self.webhooks {
            self.store.register_webhook(&w.id, &w.target).await?;
        }
        Ok(())
    }

    /// Delivers what is due to every webhook; returns how long until the
    /// next retry, if one is waiting.
    pub async fn deliver_due(&self) -> anyhow::Result<Option<Duration>> {
        let mut next: Option<Duration> = None;
        for w in &self.webhooks {
            if let Some(wait) = self.deliver_to(w).await? {
                next = Some(next.map_or(wait, |n| n.min(wait)));
            }
        }
        Ok(next)
    }

    async fn deliver_to(&self, w: &Webhook) -> anyhow::Result<Option<Duration>> {
        loop {
            let state = self.store.delivery_state(&w.id).await?;
            let now = self.clock.now();
            if let Some(at) = state.next_attempt_at.filter(|at| *at > now) {
                return Ok(Some((at - now).to_std().unwrap_or_default()));
            }
            let items = self.store.outbox_after(state.last_outbox_id, 100).await?;
            if items.is_empty() {
                return Ok(None);
            }
            for item in items {
                if !w.wants(item.event) {
                    self.store.skip_delivery(&w.id, item.id).await?;
                    continue;
                }
                let (status, error) = self.post(w, &item).await;
                let now = self.clock.now();
                let attempt = match &error {
                    None => Attempt::Delivered,
                    Some(_) => self.after_failure(
                        state.failing_since.unwrap_or(now),
                        state.attempts + 1,
                        now,
                    ),
                };
                self.store
                    .record_attempt(&w.id, item.id, now, status, error.as_deref(), &attempt)
                    .await?;
                match attempt {
                    Attempt::Delivered => {
                        tracing::debug!(webhook = %w.target, event = %item.event, "notification delivered");
                    }
                    Attempt::GaveUp => tracing::error!(
                        webhook = %w.target, event = %item.event, item = item.id,
                        "notification given up after failing for {}", humantime::format_duration(self.backoff.give_up_after)
                    ),
                    Attempt::Failed { retry_at } => {
                        tracing::warn!(
                            webhook = %w.target, event = %item.event,
                            "notification not delivered ({}); retrying at {retry_at}",
                            error.unwrap_or_default()
                        );
                        return Ok(Some((retry_at - now).to_std().unwrap_or_default()));
                    }
                }
                // Delivered or given up: the state moved on; reread it.
                break;
            }
        }
    }

    fn after_failure(
        &self,
        failing_since: DateTime<Utc>,
        failures: u32,
        now: DateTime<Utc>,
    ) -> Attempt {
        let give_up =
            chrono::Duration::from_std(self.backoff.give_up_after).unwrap_or(chrono::Duration::MAX);
        if now - failing_since >= give_up {
            return Attempt::GaveUp;
        }
        let delay = chrono::Duration::from_std(self.backoff.delay(failures))
            .unwrap_or(chrono::Duration::MAX);
        Attempt::Failed {
            retry_at: now + delay,
        }
    }

    /// POSTs one item: the HTTP status, and an error unless it was 2xx.
    async fn post(&self, w: &Webhook, item: &OutboxItem) -> (Option<u16>, Option<String>) {
        match self
            .http
            .post(&w.url)
            .json(&body(w.format, item))
            .send()
            .await
        {
            Ok(resp) if resp.status().is_success() => (Some(resp.status().as_u16()), None),
            Ok(resp) => (
                Some(resp.status().as_u16()),
                Some(format!("HTTP {}", resp.status())),
            ),
            // reqwest errors name the URL: say what failed without it.
            Err(e) => (None, Some(describe(&e))),
        }
    }

    /// Delivers until `stop` turns true: at once when woken, at the next
    /// retry, and every 30 s anyway.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        if let Err(e) = self.register().await {
            tracing::error!("notifications: cannot register the webhooks: {e:#}");
        }
        loop {
            let wait = match self.deliver_due().await {
                Ok(wait) => wait.unwrap_or(Duration::from_secs(30)),
                Err(e) => {
                    tracing::error!("notifications: {e:#}");
                    Duration::from_secs(5)
                }
            };
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
        }
    }
}

/// A reqwest error without its URL.
fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_request() {
        "request failed"
    } else {
        "failed"
    };
    let source = std::error::Error::source(e)
        .map(|s| format!(": {s}"))
        .unwrap_or_default();
    format!("{what}{source}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn item(event: EventKind, payload: Value) -> OutboxItem {
        OutboxItem {
            id: 1,
            event,
            at: "2026-11-27T10:00:00Z".parse().unwrap(),
            payload,
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_ceiling() {
        let b = Backoff::default();
        assert_eq!(b.delay(1), Duration::from_secs(5));
        assert_eq!(b.delay(2), Duration::from_secs(10));
        assert_eq!(b.delay(4), Duration::from_secs(40));
        assert_eq!(b.delay(30), Duration::from_secs(600));
    }

    #[test]
    fn slack_text_names_the_event_key_and_reason() {
        let p = json!({"event": "key_disabled", "key_name": "team-a-ci", "rule": "team-a-monthly",
                       "reason": "group monthly spend 52.10 USD >= budget 50.00 USD"});
        assert_eq!(
            body(
                NotifyFormat::Slack,
                &item(EventKind::KeyDisabled, p.clone())
            ),
            json!({"text": "keywarden: key_disabled · key team-a-ci · rule team-a-monthly: group monthly spend 52.10 USD >= budget 50.00 USD"})
        );
        assert_eq!(
            body(NotifyFormat::Json, &item(EventKind::KeyDisabled, p.clone())),
            p
        );
    }

    #[test]
    fn webhooks_are_known_by_host_only() {
        let hooks = Webhook::from_config(&[NotifyConfig {
            url: "https://hooks.slack.com/services/T000/B000/SECRET".into(),
            format: NotifyFormat::Slack,
            events: vec![EventKind::KeyDisabled],
            enabled: true,
        }]);
        assert_eq!(hooks[0].target, "https://hooks.slack.com");
        assert!(!format!("{:?}", hooks[0]).contains("SECRET"));
        assert!(hooks[0].wants(EventKind::KeyDisabled));
        assert!(!hooks[0].wants(EventKind::KeyEnabled));
        assert_eq!(hooks[0].id.len(), 16);
    }
}
