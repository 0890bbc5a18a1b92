//! `keywarden revert`.
use super::Context;
use std::process::ExitCode;

/// Runs `revert`.
pub async fn run(_ctx: &Context, _args: crate::cli::RevertArgs) -> anyhow::Result<ExitCode> {
    Err(super::not_yet("revert"))
}
