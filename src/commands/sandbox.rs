//! `keywarden sandbox`.
use crate::cli::SandboxArgs;
use std::process::ExitCode;

/// Runs the sandbox in the foreground.
pub async fn run(_args: SandboxArgs) -> anyhow::Result<ExitCode> {
    Err(super::not_yet("sandbox"))
}
