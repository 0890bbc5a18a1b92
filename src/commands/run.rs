//! `keywarden run`: the service.
use super::Context;
use std::process::ExitCode;

/// Runs the service.
pub async fn run(_ctx: &Context) -> anyhow::Result<ExitCode> {
    Err(super::not_yet("run"))
}
