//! `keywarden run`: the service (see [`crate::service`]).
use super::Context;
use crate::notify::Backoff;
use crate::service::{self, ServiceOptions};
use std::process::ExitCode;
use std::time::Duration;

/// Internal: the first webhook retry delay in milliseconds (tests use a
/// short one). Not a user setting.
const NOTIFY_BACKOFF_ENV: &str = "KEYWARDEN_NOTIFY_BACKOFF_MS";

/// Runs the service until `SIGTERM`/`SIGINT`; exit 0 then.
pub async fn run(ctx: &Context) -> anyhow::Result<ExitCode> {
    let mut notify_backoff = Backoff::default();
    if let Some(ms) = std::env::var(NOTIFY_BACKOFF_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
    {
        notify_backoff.base = Duration::from_millis(ms);
        notify_backoff.max = notify_backoff
            .max
            .min(Duration::from_millis(ms.saturating_mul(8)));
    }
    service::run(ServiceOptions {
        context: ctx.clone(),
        notify_backoff,
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}
