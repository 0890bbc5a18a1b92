//! `keywarden check-config`.
use super::Context;
use std::process::ExitCode;

/// Runs `check-config`.
pub async fn run(_ctx: &Context) -> anyhow::Result<ExitCode> {
    Err(super::not_yet("check-config"))
}
