//! `keywarden demo`.
use super::Context;
use std::process::ExitCode;

/// Runs `demo`.
pub async fn run(_ctx: &Context, _args: crate::cli::DemoArgs) -> anyhow::Result<ExitCode> {
    Err(super::not_yet("demo"))
}
