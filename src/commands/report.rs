//! `keywarden report`.
use super::Context;
use std::process::ExitCode;

/// Runs `report`.
pub async fn run(_ctx: &Context, _args: crate::cli::ReportArgs) -> anyhow::Result<ExitCode> {
    Err(super::not_yet("report"))
}
