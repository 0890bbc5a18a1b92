//! `keywarden apply`: one run now.
use super::Context;
use crate::cli::ApplyArgs;
use std::process::ExitCode;

/// Runs `apply`.
pub async fn run(_ctx: &Context, _args: ApplyArgs) -> anyhow::Result<ExitCode> {
    Err(super::not_yet("apply"))
}
