//! `keywarden ui`: the dashboard served from the database and the API,
//! running no rules (SPEC §13), until `SIGTERM`/`SIGINT`.

use super::Context;
use crate::cli::UiArgs;
use crate::service::schedule::next_run;
use crate::ui::{DEFAULT_LISTEN, Feed, role};
use std::process::ExitCode;
use tokio::signal::unix::{SignalKind, signal};

/// Runs `ui`.
pub async fn run(ctx: &Context, args: UiArgs) -> anyhow::Result<ExitCode> {
    let config = ctx.config()?;
    let listen = args
        .listen
        .or_else(|| config.ui.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    config.ui_access(&listen, &crate::config::process_env)?;
    crate::context::client(&config)?;
    let mut terminate = signal(SignalKind::terminate())?;
    let shell = ctx.open().await?;
    let addr = crate::ui::serve(&shell, &listen, role(false), next_run, Feed::Observed)
        .await?
        .addr;
    eprintln!("keywarden dashboard on http://{addr} (Ctrl-C stops it)");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    Ok(ExitCode::SUCCESS)
}
