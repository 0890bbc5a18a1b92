//! `keywarden rules`.
use super::Context;
use std::process::ExitCode;

/// Runs `rules`.
pub async fn run(_ctx: &Context, _args: crate::cli::RulesCommand) -> anyhow::Result<ExitCode> {
    Err(super::not_yet("rules"))
}
