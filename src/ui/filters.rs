//! The query parameters of the Keys and History pages (and their JSON),
//! read into filters: `?name=team-a-*&workspace=research&state=disabled&rule=…`,
//! and `history`'s flags as `?since=7d&key=…&rule=…&kind=…&outcome=…&page=2`.

use super::error::UiError;
use super::paging::Page;
use crate::domain::Key;
use crate::engine::{ChangeKind, Outcome};
use crate::listing::keys::{Holdings, KeyHoldings};
use crate::openrouter::KeyListing;
use crate::store::{HistoryFilter, Store};
use crate::timearg::{parse_time, parse_until};
use chrono::{DateTime, Utc};
use globset::{Glob, GlobMatcher};
use serde::Deserialize;

/// Rows of history on one page.
pub const PAGE_SIZE: i64 = 100;

/// `?name=GLOB&workspace=SLUG|ID&state=enabled|disabled|held&rule=NAME`; empty
/// parameters are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct KeyQuery {
    /// A glob over key names.
    #[serde(default)]
    pub name: String,
    /// A workspace's slug or id.
    #[serde(default)]
    pub workspace: String,
    /// `enabled`, `disabled` or `held` (disabled by keywarden).
    #[serde(default)]
    pub state: String,
    /// A rule whose selector holds the key.
    #[serde(default)]
    pub rule: String,
    /// The page of the Keys page and of `/api/keys`, from 1 ([`Page`]).
    pub page: Option<usize>,
}

/// The states a key can be filtered by.
pub const KEY_STATES: [&str; 3] = ["enabled", "disabled", "held"];

impl KeyQuery {
    /// The keys of `listing` that pass. Only the `rule` filter matches
    /// selectors, and only that rule's; what keywarden holds on a key
    /// (its rules, claims, forecasts) is read for the keys of the page
    /// shown, by [`KeyQuery::held_on_page`].
    pub fn select<'a>(
        &self,
        listing: &'a KeyListing,
        holdings: &Holdings,
    ) -> Result<Vec<&'a Key>, UiError> {
        let name = self.name_glob()?;
        if !self.state.is_empty() && !KEY_STATES.contains(&self.state.as_str()) {
            return Err(UiError::BadRequest(format!(
                "state: `{}` is not one of {}",
                self.state,
                KEY_STATES.join(", ")
            )));
        }
        // `None`: no rule filter; `Some(None)`: no enabled rule so named.
        let rule = (!self.rule.is_empty()).then(|| holdings.selector_of(&self.rule));
        Ok(listing
            .keys
            .iter()
            .filter(|k| name.as_ref().is_none_or(|g| g.is_match(&k.name)))
            .filter(|k| self.workspace_matches(k, listing))
            .filter(|k| self.state_matches(k, holdings))
            .filter(|k| {
                rule.as_ref().is_none_or(|selector| {
                    selector
                        .as_ref()
                        .is_some_and(|s| s.matches(k, &listing.workspaces))
                })
            })
            .collect())
    }

    /// The `selected` keys on the page asked for, each with what keywarden
    /// holds on it.
    pub fn held_on_page<'a, 'f>(
        &self,
        selected: &[&'a Key],
        listing: &KeyListing,
        holdings: &Holdings<'f>,
    ) -> Vec<(&'a Key, KeyHoldings<'f>)> {
        let page = self.page(selected.len()).of(selected);
        let keys: Vec<Key> = page.iter().map(|&k| k.clone()).collect();
        page.iter()
            .copied()
            .zip(holdings.of_each(&keys, listing))
            .collect()
    }

    /// The page asked for, of `total` keys that pass.
    pub fn page(&self, total: usize) -> Page {
        Page::new(self.page, total)
    }

    /// The filters as query parameters, for the links to other pages.
    pub fn params(&self) -> [(&str, &str); 4] {
        [
            ("name", &self.name),
            ("workspace", &self.workspace),
            ("state", &self.state),
            ("rule", &self.rule),
        ]
    }

    fn name_glob(&self) -> Result<Option<GlobMatcher>, UiError> {
        if self.name.is_empty() {
            return Ok(None);
        }
        Glob::new(&self.name)
            .map(|g| Some(g.compile_matcher()))
            .map_err(|e| UiError::BadRequest(format!("name: {e}")))
    }

    /// The key's workspace is the one asked for, by slug or id.
    fn workspace_matches(&self, key: &Key, listing: &KeyListing) -> bool {
        let Some(id) = key.workspace_id.as_deref() else {
            return self.workspace.is_empty();
        };
        self.workspace.is_empty()
            || id == self.workspace
            || listing.slug_of(id) == Some(self.workspace.as_str())
    }

    fn state_matches(&self, key: &Key, holdings: &Holdings) -> bool {
        match self.state.as_str() {
            "enabled" => !key.disabled,
            "disabled" => key.disabled,
            "held" => holdings.holds_disabled(key),
            _ => true,
        }
    }
}

/// `history`'s flags as query parameters, and the page.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HistoryQuery {
    /// `--since`.
    #[serde(default)]
    pub since: String,
    /// `--until`.
    #[serde(default)]
    pub until: String,
    /// `--key`: a key's name or hash.
    #[serde(default)]
    pub key: String,
    /// `--rule`.
    #[serde(default)]
    pub rule: String,
    /// `--kind`.
    #[serde(default)]
    pub kind: String,
    /// `--outcome`.
    #[serde(default)]
    pub outcome: String,
    /// The page, from 1.
    pub page: Option<i64>,
}

impl HistoryQuery {
    /// The page asked for (1 when none or less).
    pub fn page(&self) -> i64 {
        self.page.unwrap_or(1).max(1)
    }

    /// The store's filter for this page; a bad parameter is a 400 naming it.
    pub async fn filter(
        &self,
        store: &Store,
        now: DateTime<Utc>,
    ) -> Result<HistoryFilter, UiError> {
        let time = |name: &str, value: &str, parse: TimeParser| {
            (!value.is_empty())
                .then(|| parse(value, now).map_err(|e| bad(name, e)))
                .transpose()
        };
        let kind = named("kind", &self.kind, ChangeKind::parse)?;
        let outcome = named("outcome", &self.outcome, Outcome::parse)?;
        let key_hash = if self.key.is_empty() {
            None
        } else {
            let named = store.key_hashes_named(&self.key).await?;
            Some(named.into_iter().next().unwrap_or_else(|| self.key.clone()))
        };
        Ok(HistoryFilter {
            since: time("since", &self.since, parse_time)?,
            until: time("until", &self.until, parse_until)?,
            key_hash,
            rule: (!self.rule.is_empty()).then(|| self.rule.clone()),
            kind,
            outcome,
            limit: Some(PAGE_SIZE),
            offset: Some((self.page() - 1) * PAGE_SIZE),
        })
    }
}

/// How `--since` and `--until` are read.
type TimeParser = fn(&str, DateTime<Utc>) -> Result<DateTime<Utc>, String>;

/// A 400 naming the parameter.
fn bad(name: &str, e: String) -> UiError {
    UiError::BadRequest(format!("{name}: {e}"))
}

/// A parameter naming one of a set (`kind`, `outcome`); empty is none.
fn named<T>(name: &str, value: &str, parse: fn(&str) -> Option<T>) -> Result<Option<T>, UiError> {
    (!value.is_empty())
        .then(|| parse(value).ok_or_else(|| bad(name, format!("`{value}` is unknown"))))
        .transpose()
}
