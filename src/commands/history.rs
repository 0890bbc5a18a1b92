//! `keywarden history`.
use super::Context;
use std::process::ExitCode;

/// Runs `history`.
pub async fn run(_ctx: &Context, _args: crate::cli::HistoryArgs) -> anyhow::Result<ExitCode> {
    Err(super::not_yet("history"))
}
