//! A local fake of OpenRouter's management API (SPEC §8, §12): `/api/v1` as
//! in `openapi-keys.yaml` (plus the newer fields of `NOTES.md`) and
//! `openapi-management.yaml` over a simulated [`Account`], and the
//! `/_sandbox` control API that moves its clock, spends on its keys and
//! injects faults.
//!
//! | `/api/v1` route | what it serves |
//! | --- | --- |
//! | `GET`/`POST /keys`, `GET`/`PATCH`/`DELETE /keys/{hash}`, `GET /key`, `GET /credits` | keys and credits |
//! | `GET`/`POST /workspaces`, `GET`/`DELETE /workspaces/{id}` | workspaces, by id or slug (see `workspace_routes`) |
//! | `GET`/`POST /guardrails`, `GET`/`PATCH`/`DELETE /guardrails/{id}` | guardrails (see `guardrail_routes`) |
//! | `POST /guardrails/{id}/assignments/keys[/remove]`, `GET /guardrails/{id}/assignments/keys`, `GET /guardrails/assignments/keys` | which key holds which guardrail: at most one each, assigning replaces |
//!
//! Every route wants the management key (401 without a known key, 403 for
//! another key; `GET /key` answers any key), and every one goes through the
//! same faults, latency, `drop_rate` and journal. Listings of workspaces,
//! guardrails and assignments are paged by `offset` and `limit` (1–100,
//! default 50) and answer `{"data", "total_count"}`.
//!
//! The account starts with three workspaces, `default` (where every key goes
//! unless told otherwise), `research` and `support`, and two guardrails in
//! the default workspace: `cheap-models-only` (allows only
//! [`guardrail::CHEAP_MODELS`]) and `no-training`. A key's guardrail decides
//! which models `POST /_sandbox/spend` with a `"model"` may spend on (403
//! otherwise). A seed key may name the guardrail it holds at start
//! (`guardrail_id`); [`seed::spread_over_workspaces`] spreads `--keys N` over the
//! three workspaces and the two guardrails.
//!
//! It shares the model types with the client and nothing else.

pub mod account;
mod control;
pub mod current_key;
pub mod error;
pub mod faults;
pub mod guardrail;
mod guardrail_routes;
pub mod ids;
pub mod journal;
pub mod paging;
pub mod seed;
mod server;
pub mod traffic;
pub mod window;
pub mod workspace;
mod workspace_routes;

pub use account::{Account, AccountError, NewKey, Spend};
pub use faults::Faults;
pub use journal::JournalEntry;
pub use seed::SeedKey;

use anyhow::Context;
use axum::Router;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long [`Sandbox::shutdown`] lets open requests finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What a sandbox starts with.
#[derive(Clone, Default)]
pub struct SandboxOptions {
    /// Create this many deterministic keys (see [`seed::generated`]), first,
    /// spread over the three workspaces and two guardrails (see
    /// [`seed::spread_over_workspaces`]).
    pub keys: usize,
    /// Then these keys (e.g. from a `--seed` file).
    pub seed_keys: Vec<SeedKey>,
    /// The management key to accept; default a random `sk-or-v1-` + 64 hex.
    pub management_key: Option<String>,
    /// Start the clock at this instant, standing still until moved (tests,
    /// the demo); default: real now, following real time.
    pub start: Option<DateTime<Utc>>,
}

impl fmt::Debug for SandboxOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxOptions")
            .field("keys", &self.keys)
            .field("seed_keys", &self.seed_keys.len())
            .field(
                "management_key",
                &self.management_key.as_ref().map(|_| "[redacted]"),
            )
            .field("start", &self.start)
            .finish()
    }
}

/// A running sandbox server.
#[derive(Debug)]
pub struct Sandbox {
    addr: SocketAddr,
    account: Account,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

/// A random management key: `sk-or-v1-` and 64 hex digits.
pub fn random_management_key() -> String {
    let bytes: [u8; 32] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sk-or-v1-{hex}")
}

impl Sandbox {
    /// Starts serving on `listen` (e.g. `127.0.0.1:0` for a free port).
    pub async fn start(listen: &str, opts: SandboxOptions) -> anyhow::Result<Sandbox> {
        let key = SecretString::from(opts.management_key.unwrap_or_else(random_management_key));
        let mut seeds = seed::generated(opts.keys);
        seed::spread_over_workspaces(&mut seeds);
        seeds.extend(opts.seed_keys);
        let account =
            Account::new(seeds, key, opts.start).context("cannot create the sandbox's keys")?;
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .nest(
                server::API_PREFIX,
                server::router(
                    account.clone(),
                    workspace_routes::router().merge(guardrail_routes::router()),
                ),
            )
            .nest("/_sandbox", control::router(account.clone()))
            .fallback(server::not_found);
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
        });
        Ok(Sandbox {
            addr,
            account,
            shutdown,
            task,
        })
    }

    /// The address it listens on; an unspecified address reads as loopback.
    fn reachable_addr(&self) -> SocketAddr {
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        SocketAddr::new(ip, self.addr.port())
    }

    /// `http://127.0.0.1:PORT/api/v1`: the base URL to give keywarden.
    pub fn base_url(&self) -> String {
        format!("http://{}{}", self.reachable_addr(), server::API_PREFIX)
    }

    /// `http://127.0.0.1:PORT/_sandbox`: the control API.
    pub fn control_url(&self) -> String {
        format!("http://{}/_sandbox", self.reachable_addr())
    }

    /// The management key it accepts.
    pub fn management_key(&self) -> &str {
        self.account.management_key().expose_secret()
    }

    /// The simulated account, for direct in-process control.
    pub fn account(&self) -> &Account {
        &self.account
    }

    /// Stops serving, letting open requests finish for a few seconds.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(());
        let mut task = self.task;
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}
