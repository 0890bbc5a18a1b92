//! The live dashboard (SPEC §13): five server-rendered pages (Overview,
//! Budgets, Keys, History, Rules), their data as JSON under `/api/…` in the
//! CLI's `--format json` shapes, and `/api/events` telling open pages that
//! a run finished. Served by `keywarden run` when `[ui] listen` is set, and
//! by `keywarden ui`; read-only, every asset embedded.

mod api;
mod assets;
mod auth;
mod error;
mod filters;
mod live;
mod pages;
mod paging;
mod role;
mod state;
mod status;
mod table;

pub use live::{run_ended, watch_runs};
pub use role::{Role, RoleSource, replica_role, role};
pub use state::{AfterRun, Dashboard, Feed, ForecastCache, NextRun, View};

use crate::config::process_env;
use crate::context::Shell;
use axum::Router;
use axum::routing::get;
use std::sync::Arc;

/// Where the dashboard listens when neither `--listen` nor `[ui] listen` says.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9718";

/// Binds `listen`; a failure is a usage error naming the address (exit 2).
pub async fn bind(listen: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| crate::exit::UsageError::new(format!("[ui].listen {listen}: {e}")))
}

/// Serves the dashboard of `shell` on `listen` in background tasks, with
/// its own API client, its view fed as `feed` says: the token is checked
/// (exit 2 on a non-loopback address without one) and the address bound
/// before this returns.
pub async fn serve(
    shell: &Shell,
    listen: &str,
    role: RoleSource,
    next_run: NextRun,
    feed: Feed,
) -> anyhow::Result<Served> {
    let token = shell.config.ui_access(listen, &process_env)?;
    let runner = shell.runner(shell.client()?);
    let listener = bind(listen).await?;
    let addr = listener.local_addr()?;
    tracing::info!("serving the dashboard on http://{addr}");
    let dashboard =
        Arc::new(Dashboard::new(shell.clone(), runner, role, next_run, token).fed_by(feed));
    start(listener, dashboard.clone());
    Ok(Served { addr, dashboard })
}

/// A dashboard being served.
pub struct Served {
    /// The address it listens on.
    pub addr: std::net::SocketAddr,
    /// The dashboard (to hand it what the runs saw: [`run_ended`]).
    pub dashboard: Arc<Dashboard>,
}

/// Serves the dashboard on `listener` and watches for finished runs, in
/// background tasks.
pub fn start(listener: tokio::net::TcpListener, dashboard: Arc<Dashboard>) {
    tokio::spawn(watch_runs(dashboard.clone()));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router(dashboard)).await {
            tracing::error!("the dashboard stopped: {e}");
        }
    });
}

/// Every page, JSON answer and asset, behind the token check and the
/// security headers. Only `GET` is routed (and the login form's `POST`):
/// any other method is answered 405.
pub fn router(dashboard: Arc<Dashboard>) -> Router {
    let guarded = Router::new()
        .route("/", get(pages::overview::show))
        .route("/budgets", get(pages::budgets::show))
        .route("/keys", get(pages::keys::show))
        .route("/history", get(pages::history::show))
        .route("/rules", get(pages::rules::show))
        .route("/api/status", get(api::status))
        .route("/api/keys", get(api::keys))
        .route("/api/budgets", get(api::budgets))
        .route("/api/forecasts", get(api::forecasts))
        .route("/api/history", get(api::history))
        .route("/api/rules", get(api::rules))
        .route("/api/events", get(live::events))
        .route("/assets/live.js", get(assets::script))
        .layer(axum::middleware::from_fn_with_state(
            dashboard.clone(),
            auth::require_token,
        ));
    Router::new()
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/assets/style.css", get(assets::stylesheet))
        .merge(guarded)
        .layer(axum::middleware::from_fn(assets::security_headers))
        .with_state(dashboard)
}
