//! `keywarden plan`.
use super::Context;
use std::process::ExitCode;

/// Runs `plan`.
pub async fn run(_ctx: &Context, _args: crate::cli::PlanArgs) -> anyhow::Result<ExitCode> {
    Err(super::not_yet("plan"))
}
