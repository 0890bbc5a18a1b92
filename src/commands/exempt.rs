//! `keywarden exempt`.
use super::Context;
use std::process::ExitCode;

/// Runs `exempt`.
pub async fn run(_ctx: &Context, _args: crate::cli::ExemptCommand) -> anyhow::Result<ExitCode> {
    Err(super::not_yet("exempt"))
}
