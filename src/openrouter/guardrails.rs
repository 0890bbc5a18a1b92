//! The guardrail calls of the management API (SPEC §12): the account's
//! guardrails (`GET /guardrails`), every key's assignment
//! (`GET /guardrails/assignments/keys`), both paged by `offset` and read
//! whole or not at all, and the bulk assignment calls
//! (`POST /guardrails/{id}/assignments/keys` and `…/remove`).

use super::client::{Attempted, Client};
use super::error::ApiError;
use crate::domain::{Guardrail, GuardrailId};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// The most rows asked for in one page, and the most key hashes sent in
/// one bulk call.
pub const GUARDRAIL_PAGE: usize = 100;

/// A guardrail as listed (only what keywarden reads).
#[derive(Debug, Deserialize)]
struct ListedGuardrail {
    id: String,
    name: String,
}

/// An assignment as listed (only what keywarden reads).
#[derive(Debug, Deserialize)]
struct ListedAssignment {
    key_hash: String,
    guardrail_id: String,
}

/// One page of a listing: `{"data": [..], "total_count": n}`.
#[derive(Debug, Deserialize)]
struct Listing<T> {
    data: Vec<T>,
    total_count: usize,
}

/// The body of both bulk calls.
#[derive(Debug, Serialize)]
struct KeyHashes<'a> {
    key_hashes: &'a [String],
}

/// The answer to a bulk call (`{"assigned_count"}` or `{"unassigned_count"}`):
/// read for its shape only, the assignments of the next run being the truth.
#[derive(Debug, Deserialize)]
pub struct BulkAnswer {}

/// Every key's guardrail, by key hash; a key not in it holds none.
pub type Assignments = BTreeMap<String, GuardrailId>;

impl Client {
    /// The guardrails of the default workspace and of the workspaces of
    /// `workspace_ids`, each once.
    pub async fn list_guardrails(
        &self,
        workspace_ids: &[&str],
    ) -> Result<Vec<Guardrail>, ApiError> {
        let mut workspaces: Vec<Option<&str>> = vec![None];
        workspaces.extend(workspace_ids.iter().map(|&w| Some(w)));
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for workspace in workspaces {
            let query: Vec<(&str, &str)> =
                workspace.map(|w| ("workspace_id", w)).into_iter().collect();
            let listed: Vec<ListedGuardrail> = self.list_all(&["guardrails"], &query).await?;
            for g in listed {
                let id = parse_id(&g.id, "GET /guardrails")?;
                if seen.insert(id) {
                    out.push(Guardrail { id, name: g.name });
                }
            }
        }
        Ok(out)
    }

    /// Every key's guardrail (`GET /guardrails/assignments/keys`).
    pub async fn list_assignments(&self) -> Result<Assignments, ApiError> {
        let listed: Vec<ListedAssignment> = self
            .list_all(&["guardrails", "assignments", "keys"], &[])
            .await?;
        listed
            .into_iter()
            .map(|a| {
                let id = parse_id(&a.guardrail_id, "GET /guardrails/assignments/keys")?;
                Ok((a.key_hash, id))
            })
            .collect()
    }

    /// `POST /guardrails/{id}/assignments/keys`: the keys of `key_hashes`
    /// (at most [`GUARDRAIL_PAGE`]) hold guardrail `id` after.
    pub async fn assign_keys(
        &self,
        id: GuardrailId,
        key_hashes: &[String],
    ) -> Attempted<BulkAnswer> {
        self.bulk(id, &["keys"], key_hashes).await
    }

    /// `POST /guardrails/{id}/assignments/keys/remove`: the keys of
    /// `key_hashes` (at most [`GUARDRAIL_PAGE`]) hold no guardrail after.
    pub async fn unassign_keys(
        &self,
        id: GuardrailId,
        key_hashes: &[String],
    ) -> Attempted<BulkAnswer> {
        self.bulk(id, &["keys", "remove"], key_hashes).await
    }

    async fn bulk(
        &self,
        id: GuardrailId,
        tail: &[&str],
        key_hashes: &[String],
    ) -> Attempted<BulkAnswer> {
        let id = id.to_string();
        let mut segments = vec!["guardrails", id.as_str(), "assignments"];
        segments.extend_from_slice(tail);
        let body =
            serde_json::to_vec(&KeyHashes { key_hashes }).expect("a list of strings encodes");
        self.call_whole(Method::POST, self.endpoint(&segments), Some(body))
            .await
    }

    /// Every row of a listing, page after page of [`GUARDRAIL_PAGE`] by
    /// `offset`; fewer rows than its `total_count` is an error, never a
    /// shorter listing.
    async fn list_all<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<Vec<T>, ApiError> {
        let mut rows: Vec<T> = Vec::new();
        loop {
            let mut url = self.endpoint(segments);
            url.query_pairs_mut()
                .extend_pairs(query)
                .append_pair("offset", &rows.len().to_string())
                .append_pair("limit", &GUARDRAIL_PAGE.to_string());
            let page: Listing<T> = self.call_whole(Method::GET, url, None).await.result?;
            let got = page.data.len();
            rows.extend(page.data);
            if rows.len() >= page.total_count {
                return Ok(rows);
            }
            if got == 0 {
                return Err(ApiError::InvalidResponse {
                    message: format!(
                        "GET /{} ended after {} of its {} rows",
                        segments.join("/"),
                        rows.len(),
                        page.total_count
                    ),
                });
            }
        }
    }
}

/// A guardrail id from a listing; anything but a UUID is a malformed answer.
fn parse_id(id: &str, listing: &str) -> Result<GuardrailId, ApiError> {
    id.parse().map_err(|_| ApiError::InvalidResponse {
        message: format!("{listing}: {id:?} is not a guardrail id"),
    })
}
