//! The account's workspaces and the keys of the watched ones (SPEC §12).
//!
//! `[openrouter] workspaces = "all"` (the default) lists the workspaces
//! (`GET /workspaces`, pages of [`WORKSPACE_PAGE`] by `offset`) and then
//! every workspace's keys, side by side within `max_concurrency`; a list of
//! ids or slugs restricts the listing to those, resolved through the
//! workspaces listed; `[]` lists the default workspace only. When
//! `GET /workspaces` is refused (403 or 404: an account or key without the
//! feature) the default workspace is listed as before (or the ids of a list
//! as given), with one warning per process.

use super::client::Client;
use super::error::ApiError;
use crate::config::Workspaces;
use crate::domain::{Key, Workspace};
use futures::StreamExt;
use reqwest::Method;
use serde::Serialize;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

/// `GET /workspaces` is asked for this many workspaces a page (its maximum).
pub const WORKSPACE_PAGE: usize = 100;

/// Whether the fallback has been logged in this process.
static FALLBACK_WARNED: AtomicBool = AtomicBool::new(false);

/// The keys of the watched workspaces, and what listing them learned.
#[derive(Debug, Clone, Default)]
pub struct KeyListing {
    /// Every key of the watched workspaces, disabled ones included, without
    /// duplicates; each knows its `workspace_id`.
    pub keys: Vec<Key>,
    /// Every workspace of the account (watched or not), in the API's order;
    /// empty when they were not listed (`workspaces = []`, or the fallback).
    pub workspaces: Vec<Workspace>,
    /// Set when `GET /workspaces` was refused and only the default
    /// workspace (or the configured ids, as given) was listed.
    pub fallback: Option<Fallback>,
}

impl KeyListing {
    /// The slug of the workspace with id `id`, when it was listed.
    pub fn slug_of(&self, id: &str) -> Option<&str> {
        self.workspaces
            .iter()
            .find(|w| w.id == id)
            .map(|w| w.slug.as_str())
    }
}

/// `GET /workspaces` was refused: keywarden listed without it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fallback {
    /// The refusal's HTTP status (403 or 404).
    pub status: u16,
    /// What keywarden did instead, for people.
    pub note: String,
}

impl Fallback {
    fn new(status: u16, scope: &Workspaces) -> Fallback {
        let listed = match scope {
            Workspaces::Only(ids) if !ids.is_empty() => {
                format!(
                    "the keys of the configured workspaces as written ({})",
                    ids.join(", ")
                )
            }
            _ => "the default workspace's keys only".to_string(),
        };
        Fallback {
            status,
            note: format!(
                "the API refused to list workspaces (HTTP {status}: this account or key \
                 cannot use workspaces), so keywarden listed {listed}"
            ),
        }
    }
}

/// Which workspaces to list keys of: `None` = the default one, unnamed.
struct Scope {
    ids: Vec<Option<String>>,
    workspaces: Vec<Workspace>,
    fallback: Option<Fallback>,
}

impl Client {
    /// Every workspace of the account (`GET /workspaces`, every page).
    pub async fn list_workspaces(&self) -> Result<Vec<Workspace>, ApiError> {
        let mut workspaces: Vec<Workspace> = Vec::new();
        let mut seen = HashSet::new();
        loop {
            let mut url = self.endpoint(&["workspaces"]);
            url.query_pairs_mut()
                .append_pair("offset", &workspaces.len().to_string())
                .append_pair("limit", &WORKSPACE_PAGE.to_string());
            let page: Vec<Workspace> = self.call(Method::GET, url, None, None).await.result?;
            let full = page.len() >= WORKSPACE_PAGE;
            let before = workspaces.len();
            workspaces.extend(page.into_iter().filter(|w| seen.insert(w.id.clone())));
            // A short page is the last; a page of nothing new (an API that
            // ignores `offset`) ends the listing rather than looping.
            if !full || workspaces.len() == before {
                return Ok(workspaces);
            }
        }
    }

    /// Every key of the watched workspaces (see the module documentation).
    pub async fn list(&self) -> Result<KeyListing, ApiError> {
        let (scope, default_page) = self.scope_and_default_page().await?;
        let mut default_page = match default_page {
            // The default workspace is listed unnamed: the page is the
            // first of its listing, and its failure the listing's.
            Some(page) if scope.ids.contains(&None) => Some(DefaultPage { keys: page? }),
            // Listed by id: the page is its first when its keys say so;
            // else the listing asks by id, as without it.
            Some(Ok(keys)) => Some(DefaultPage { keys }).filter(|page| page.covers(&scope.ids)),
            _ => None,
        };
        let listings = scope.ids.into_iter().map(|id| {
            let first = default_page.take_if(|page| page.is_of(id.as_deref()));
            // The default workspace's listing goes on as it began: without
            // `workspace_id`.
            let listed_as = if first.is_some() { None } else { id.clone() };
            (id, listed_as, first.map(|page| page.keys))
        });
        let mut listings = futures::stream::iter(listings)
            .map(|(id, listed_as, first)| async move {
                let mut keys = self.list_workspace(listed_as.as_deref(), first).await?;
                if let Some(id) = id {
                    for key in &mut keys {
                        key.workspace_id.get_or_insert_with(|| id.clone());
                    }
                }
                Ok::<_, ApiError>(keys)
            })
            .buffered(self.max_concurrency());
        let mut seen = HashSet::new();
        let mut keys = Vec::new();
        while let Some(listed) = listings.next().await {
            keys.extend(listed?.into_iter().filter(|k| seen.insert(k.hash.clone())));
        }
        Ok(KeyListing {
            keys,
            workspaces: scope.workspaces,
            fallback: scope.fallback,
        })
    }

    /// The scope, and the default workspace's first page (`GET /keys`
    /// without `workspace_id`) asked for beside `GET /workspaces` when
    /// every workspace is watched (the default one is then listed whatever
    /// the workspaces are): the listing does not wait a round trip for the
    /// workspaces before its first page. `None` when not asked for.
    async fn scope_and_default_page(
        &self,
    ) -> Result<(Scope, Option<Result<Vec<Key>, ApiError>>), ApiError> {
        if *self.workspaces() != Workspaces::All {
            return Ok((self.scope().await?, None));
        }
        let (scope, page) = tokio::join!(self.scope(), self.page(None, 0));
        Ok((scope?, Some(page)))
    }

    /// Every key of the watched workspaces, in the API's order, without
    /// duplicates ([`Client::list`] without what it learned on the way).
    pub async fn list_keys(&self) -> Result<Vec<Key>, ApiError> {
        Ok(self.list().await?.keys)
    }

    /// Lists the workspaces when the configuration asks for them and
    /// resolves the configured ids and slugs.
    async fn scope(&self) -> Result<Scope, ApiError> {
        let configured = self.workspaces();
        if *configured == Workspaces::Only(Vec::new()) {
            return Ok(Scope {
                ids: vec![None],
                workspaces: Vec::new(),
                fallback: None,
            });
        }
        let workspaces = match self.list_workspaces().await {
            Ok(w) => w,
            Err(ApiError::AuthFailed { status: 403, .. }) => return Ok(fall_back(403, configured)),
            Err(ApiError::Refused { status: 404, .. }) => return Ok(fall_back(404, configured)),
            Err(e) => return Err(e),
        };
        let ids = match configured {
            Workspaces::All if workspaces.is_empty() => vec![None],
            Workspaces::All => workspaces.iter().map(|w| Some(w.id.clone())).collect(),
            Workspaces::Only(names) => names
                .iter()
                .map(|name| resolve(name, &workspaces).map(Some))
                .collect::<Result<_, _>>()?,
        };
        Ok(Scope {
            ids,
            workspaces,
            fallback: None,
        })
    }
}

/// The first page of `GET /keys` without `workspace_id`: the default
/// workspace's keys.
struct DefaultPage {
    keys: Vec<Key>,
}

impl DefaultPage {
    /// The default workspace's id, as its keys carry it.
    fn workspace(&self) -> Option<&str> {
        self.keys.first()?.workspace_id.as_deref()
    }

    /// Whether this is the first page of the listing of `id` (`None`: the
    /// default workspace, unnamed).
    fn is_of(&self, id: Option<&str>) -> bool {
        id.is_none() || id == self.workspace()
    }

    /// Whether one of the listings of `ids` begins with this page.
    fn covers(&self, ids: &[Option<String>]) -> bool {
        ids.iter().any(|id| self.is_of(id.as_deref()))
    }
}

/// The scope when `GET /workspaces` was refused with `status`: the default
/// workspace, or the configured names as given; warned once per process.
fn fall_back(status: u16, configured: &Workspaces) -> Scope {
    let fallback = Fallback::new(status, configured);
    if !FALLBACK_WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!("{}", fallback.note);
    }
    let ids = match configured {
        Workspaces::Only(names) if !names.is_empty() => names.iter().cloned().map(Some).collect(),
        _ => vec![None],
    };
    Scope {
        ids,
        workspaces: Vec::new(),
        fallback: Some(fallback),
    }
}

/// The id of the workspace `name` (an id or a slug) names.
fn resolve(name: &str, workspaces: &[Workspace]) -> Result<String, ApiError> {
    match workspaces.iter().find(|w| w.is(name)) {
        Some(w) => Ok(w.id.clone()),
        None => Err(ApiError::UnknownWorkspace {
            name: name.to_string(),
            known: workspaces.iter().map(|w| w.slug.clone()).collect(),
        }),
    }
}
