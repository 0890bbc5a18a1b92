//! Keys keywarden holds claims on that a listing without workspaces did not
//! show (SPEC §12): when `GET /workspaces` is refused, only the default
//! workspace is listed, and a claimed key of another workspace is not gone.
//! Each is read by its hash (`GET /keys/{hash}`) and joins the run's keys,
//! so that its claims are neither dropped as `deleted` nor left unreleased;
//! one the API no longer has (404) stays out and is recorded `deleted`.

use super::{RunError, Runner};
use crate::openrouter::{ApiError, KeyListing};
use std::collections::{BTreeSet, HashSet};

impl Runner {
    /// Adds to `listing` the claimed keys it lacks, when it is a fallback
    /// listing; a failed read (other than 404) fails the run.
    pub(super) async fn add_claimed_unlisted(
        &self,
        listing: &mut KeyListing,
    ) -> Result<(), RunError> {
        if listing.fallback.is_none() {
            return Ok(());
        }
        let listed: HashSet<&str> = listing.keys.iter().map(|k| k.hash.as_str()).collect();
        let unlisted: BTreeSet<String> = self
            .store
            .claims()
            .await?
            .into_iter()
            .map(|c| c.key_hash)
            .filter(|h| !listed.contains(h.as_str()))
            .collect();
        let reads = unlisted.iter().map(|hash| self.client.get_key(hash));
        for read in futures::future::join_all(reads).await {
            match read {
                Ok(key) => listing.keys.push(key),
                Err(ApiError::KeyNotFound { .. }) => {}
                Err(e) if e.is_auth() => return Err(RunError::AuthFailed(e)),
                Err(e) => return Err(RunError::Api(e)),
            }
        }
        Ok(())
    }
}
