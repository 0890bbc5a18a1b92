//! `keywarden keys`.
use super::Context;
use std::process::ExitCode;

/// Runs `keys`.
pub async fn run(_ctx: &Context, _args: crate::cli::KeysCommand) -> anyhow::Result<ExitCode> {
    Err(super::not_yet("keys"))
}
