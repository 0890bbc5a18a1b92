//! `keywarden db`.
use super::Context;
use std::process::ExitCode;

/// Runs `db`.
pub async fn run(_ctx: &Context, _args: crate::cli::DbCommand) -> anyhow::Result<ExitCode> {
    Err(super::not_yet("db"))
}
