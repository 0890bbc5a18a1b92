//! Webhook notifications from the service: in order, at least once, and
//! nothing lost while the receiver is down.

use crate::daemon;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use daemon::{Daemon, PATIENCE, Setup, budget_rule, eventually, hash_of, sandbox};
use keywarden::store::Store;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SECOND: Duration = Duration::from_secs(1);

/// A webhook receiver: records what it accepts; answers 503 while down.
#[derive(Clone, Default)]
pub(crate) struct Receiver {
    pub(crate) received: Arc<Mutex<Vec<Value>>>,
    down: Arc<AtomicBool>,
}

impl Receiver {
    /// Serves on a free loopback port; the webhook URL.
    pub(crate) async fn start(&self) -> String {
        async fn hook(State(r): State<Receiver>, Json(body): Json<Value>) -> StatusCode {
            if r.down.load(Ordering::SeqCst) {
                return StatusCode::SERVICE_UNAVAILABLE;
            }
            r.received.lock().unwrap().push(body);
            StatusCode::OK
        }
        let app = axum::Router::new()
            .route("/hook/secret-token", axum::routing::post(hook))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/hook/secret-token")
    }

    /// (event, key_name) of each key event received, in order.
    fn key_events(&self) -> Vec<(String, String)> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|b| b["event"] == "key_disabled" || b["event"] == "key_enabled")
            .map(|b| {
                (
                    b["event"].as_str().unwrap().to_string(),
                    b["key_name"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn key_events_reach_the_webhook_in_order_even_after_it_was_down() {
    let start = "2026-11-30T12:00:00Z".parse().unwrap();
    let sandbox = sandbox(Some(start)).await;
    let receiver = Receiver::default();
    let url = receiver.start().await;
    let setup = Setup::new(
        &budget_rule("team-a-*", 10.0),
        &format!(
            "[[notify]]\nurl = {url:?}\nformat = \"json\"\nevents = [\"key_disabled\", \"key_enabled\", \"budget_warning\"]\n"
        ),
    );
    let mut service = Daemon::start(&setup, &sandbox, "notify");
    service.wait_for("READY=1", PATIENCE).await;
    let a = hash_of(&sandbox, "team-a-01");

    sandbox.account().spend(&a, 12.0, false).unwrap();
    let disabled = pairs(&[("key_disabled", "team-a-01")]);
    assert!(
        eventually(PATIENCE, || receiver.key_events() == disabled).await,
        "{:?}; stderr:\n{}",
        receiver.key_events(),
        service.stderr()
    );
    // The sandbox's month rolls over: the key is given back.
    sandbox.account().advance(chrono::Duration::days(1));
    let cycle = pairs(&[("key_disabled", "team-a-01"), ("key_enabled", "team-a-01")]);
    assert!(
        eventually(PATIENCE, || receiver.key_events() == cycle).await,
        "{:?}",
        receiver.key_events()
    );
    let budget_warnings = receiver
        .received
        .lock()
        .unwrap()
        .iter()
        .filter(|b| b["event"] == "budget_warning")
        .count();
    assert_eq!(budget_warnings, 1, "one warning at 50% for the window");

    // The receiver goes down for a while; a whole cycle happens meanwhile.
    receiver.down.store(true, Ordering::SeqCst);
    sandbox.account().spend(&a, 12.0, false).unwrap();
    assert!(eventually(PATIENCE, || daemon::disabled(&sandbox, "team-a-01")).await);
    sandbox.account().advance(chrono::Duration::days(31));
    assert!(eventually(PATIENCE, || !daemon::disabled(&sandbox, "team-a-01")).await);
    tokio::time::sleep(2 * SECOND).await;
    assert_eq!(
        receiver.key_events(),
        cycle,
        "nothing is accepted while down"
    );

    receiver.down.store(false, Ordering::SeqCst);
    let both = pairs(&[
        ("key_disabled", "team-a-01"),
        ("key_enabled", "team-a-01"),
        ("key_disabled", "team-a-01"),
        ("key_enabled", "team-a-01"),
    ]);
    assert!(
        eventually(PATIENCE, || receiver.key_events() == both).await,
        "{:?}",
        receiver.key_events()
    );
    service.signal("TERM");
    assert_eq!(service.exit(PATIENCE).await.code(), Some(0));

    // Every attempt is recorded, the failed ones with the 503.
    let store = Store::open(&setup.database).await.unwrap();
    let attempts = store.delivery_attempts().await.unwrap();
    assert!(
        attempts
            .iter()
            .any(|a| a.status == "failed" && a.http_status == Some(503))
    );
    let delivered = attempts.iter().filter(|a| a.status == "delivered").count();
    assert_eq!(delivered, receiver.received.lock().unwrap().len());
    // The webhook URL's secret path never reaches the log.
    assert!(
        !service.stderr().contains("secret-token"),
        "{}",
        service.stderr()
    );
}
