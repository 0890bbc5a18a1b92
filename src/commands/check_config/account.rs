//! `check-config`'s one look at the account: a client made from the
//! configuration and a read that must answer within [`PATIENCE`]. No
//! credential, a client that cannot be made, a failure or a late answer all
//! mean "not reachable", and the checks that need the account stay silent.

use crate::config::Config;
use crate::openrouter::{ApiError, Client, ClientSettings};
use std::future::Future;
use std::time::Duration;

/// How long the account may take to answer a check's read.
const PATIENCE: Duration = Duration::from_secs(10);

/// What `read` returns from the account `config` names, or `None` when the
/// account is not reachable (see the module documentation).
pub(super) async fn ask<T, F, Fut>(config: &Config, read: F) -> Option<T>
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let client = ClientSettings::from_config(config)
        .and_then(Client::new)
        .ok()?;
    tokio::time::timeout(PATIENCE, read(client))
        .await
        .ok()?
        .ok()
}
