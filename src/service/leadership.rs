//! One leader among the replicas of a PostgreSQL database (SPEC §14): a
//! campaign task tries to take the leadership lock every `standby_poll`,
//! and while it holds it, confirms it every [`WATCH_EVERY`], so that a lost
//! connection stops the sending within a second. The service hears of each
//! change of role through a channel. On SQLite the service always leads
//! and no campaign runs.

use crate::clock::Clock;
use crate::store::Store;
use crate::store::leader::{Attempt, Leader, LeaderLock, Leading};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How often the leader confirms its lock.
pub const WATCH_EVERY: Duration = Duration::from_millis(250);

/// How long a confirmation may take before the lock counts as lost: with
/// [`WATCH_EVERY`], a lost connection is noticed within a second.
pub const WATCH_TIMEOUT: Duration = Duration::from_millis(600);

/// What this process is among the replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// It runs the rules; `before` led until now, if known.
    Leads {
        /// This process, as written down.
        me: Leader,
        /// The leader the database named before.
        before: Option<Leader>,
    },
    /// Another process leads (named, when it wrote itself down).
    Standby {
        /// The leader, if known.
        leader: Option<Leader>,
    },
    /// It led and lost the lock (its connection, the database): why.
    Lost {
        /// Why the lock is lost.
        why: String,
    },
}

impl std::fmt::Display for Role {
    /// `leader`, `standby (leader: host pid 42)`, `standby (lost the lead)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Role::Leads { .. } => f.write_str("leader"),
            Role::Standby { leader: Some(l) } => write!(f, "standby (leader: {l})"),
            Role::Standby { leader: None } => f.write_str("standby"),
            Role::Lost { .. } => f.write_str("standby (lost the lead)"),
        }
    }
}

/// The detail of a `leader_changed` event: who leads now (`host`, `pid`,
/// `since`) and who led before (`before`: `host`, `pid`, or null).
pub fn leader_changed(me: &Leader, before: Option<&Leader>) -> serde_json::Value {
    serde_json::json!({
        "host": me.host,
        "pid": me.pid,
        "since": crate::domain::timestamp::rfc3339(me.since),
        "before": before.map(|b| serde_json::json!({ "host": b.host, "pid": b.pid })),
    })
}

/// The campaign: tries, leads, loses, tries again, until dropped.
pub struct Campaign {
    task: JoinHandle<()>,
}

impl Campaign {
    /// Starts campaigning for this process on `store`, trying every `poll`;
    /// roles come on the returned channel, the first at the first attempt.
    /// Call it inside a [`LocalSet`](tokio::task::LocalSet).
    pub fn start(
        store: Store,
        clock: Arc<dyn Clock>,
        poll: Duration,
        leading: Leading,
    ) -> (Campaign, mpsc::UnboundedReceiver<Role>) {
        let (tx, rx) = mpsc::unbounded_channel();
        // A local task of the service's set: sqlx's PostgreSQL futures are
        // not `Send` for every lifetime.
        let task = tokio::task::spawn_local(campaign(store, clock, poll, leading, tx));
        (Campaign { task }, rx)
    }
}

impl Drop for Campaign {
    /// Ends the campaign; a held lock goes with its connection.
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn campaign(
    store: Store,
    clock: Arc<dyn Clock>,
    poll: Duration,
    leading: Leading,
    roles: mpsc::UnboundedSender<Role>,
) {
    let mut last: Option<Role> = None;
    loop {
        let me = Leader::this_process(clock.now());
        let role = match store.try_lead(&me, &leading).await {
            Ok(Attempt::Led { lock, before }) => {
                if roles.send(Role::Leads { me, before }).is_err() {
                    return;
                }
                Role::Lost {
                    why: format!("{:#}", watch(lock).await),
                }
            }
            Ok(Attempt::Held(leader)) => Role::Standby { leader },
            Err(e) => {
                tracing::warn!("cannot try to take the lead: {e:#}");
                Role::Standby { leader: None }
            }
        };
        if last.as_ref() != Some(&role) {
            if roles.send(role.clone()).is_err() {
                return;
            }
            last = Some(role);
        }
        tokio::time::sleep(poll).await;
    }
}

/// Confirms the lock every [`WATCH_EVERY`] until it is lost; why it is.
async fn watch(mut lock: LeaderLock) -> anyhow::Error {
    let mut tick = tokio::time::interval(WATCH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = lock.confirm(WATCH_TIMEOUT).await {
            return e;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leader(host: &str, pid: i64) -> Leader {
        Leader {
            host: host.to_string(),
            pid,
            since: "2026-12-01T10:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn the_status_says_leader_or_standby_and_who_leads() {
        let a = leader("host-a", 42);
        let leads = Role::Leads {
            me: a.clone(),
            before: None,
        };
        assert_eq!(leads.to_string(), "leader");
        let standby = Role::Standby { leader: Some(a) };
        assert_eq!(standby.to_string(), "standby (leader: host-a pid 42)");
        let lost = Role::Lost { why: "gone".into() };
        assert_eq!(lost.to_string(), "standby (lost the lead)");
    }

    #[test]
    fn a_leader_changed_event_names_who_leads_and_who_led() {
        let detail = leader_changed(&leader("host-b", 7), Some(&leader("host-a", 42)));
        assert_eq!(
            detail,
            serde_json::json!({
                "host": "host-b", "pid": 7, "since": "2026-12-01T10:00:00Z",
                "before": { "host": "host-a", "pid": 42 },
            })
        );
        assert_eq!(
            leader_changed(&leader("host-b", 7), None)["before"],
            serde_json::Value::Null
        );
    }
}
