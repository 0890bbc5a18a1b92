//! Exit codes (SPEC §6) and the error type that carries code 2.

use std::process::ExitCode;

/// A usage or configuration error: exit code 2. Its message is printed as is.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl UsageError {
    /// Wraps a message as an `anyhow::Error` that exits 2 (what every caller
    /// wants to return, hence not `Self`).
    #[allow(clippy::new_ret_no_self)]
    pub fn new(msg: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(UsageError(msg.into()))
    }
}

/// A runtime failure whose details were already printed: exit code 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Failure(pub String);

/// Exit code 0: success.
pub const OK: u8 = 0;
/// Exit code 1: runtime failure (a change failed, the API unreachable, the guard tripped).
pub const FAILURE: u8 = 1;
/// Exit code 2: usage or configuration error.
pub const USAGE: u8 = 2;

/// The exit code for an error that reached `main`.
pub fn code_for(err: &anyhow::Error) -> ExitCode {
    if err.downcast_ref::<UsageError>().is_some() || err.downcast_ref::<clap::Error>().is_some() {
        ExitCode::from(USAGE)
    } else {
        ExitCode::from(FAILURE)
    }
}
