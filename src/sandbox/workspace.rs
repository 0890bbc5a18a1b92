//! The account's workspaces: the `Workspace` object of
//! `openapi-management.yaml`, the body of `POST /workspaces`, and the three
//! workspaces every sandbox starts with (`default`, `research`, `support`).

use super::error::AccountError;
use super::ids::{CREATOR, DEFAULT_WORKSPACE, uuid_of};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// The `research` workspace every sandbox starts with.
pub const RESEARCH_WORKSPACE: &str = "00000000-0000-4000-8000-0000000000b2";
/// The `support` workspace every sandbox starts with.
pub const SUPPORT_WORKSPACE: &str = "00000000-0000-4000-8000-0000000000c3";

/// A workspace, serialized exactly as the API answers it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workspace {
    /// Its UUID.
    pub id: String,
    /// The id of its default guardrail (derived from its id; not configured).
    pub default_guardrail_id: String,
    /// Its name.
    pub name: String,
    /// Its URL-friendly slug, unique in the account.
    pub slug: String,
    /// Its description.
    pub description: Option<String>,
    /// Default text model.
    pub default_text_model: Option<String>,
    /// Default image model.
    pub default_image_model: Option<String>,
    /// Default provider sort (`price`, `throughput`, …).
    pub default_provider_sort: Option<String>,
    /// Whether BYOK spend counts toward its budgets.
    pub include_byok_in_budgets: bool,
    /// Private logging.
    pub is_observability_io_logging_enabled: bool,
    /// Broadcast.
    pub is_observability_broadcast_enabled: bool,
    /// Data discount logging.
    pub is_data_discount_logging_enabled: bool,
    /// Sampling rate of I/O logging.
    pub io_logging_sampling_rate: f64,
    /// Keys whose I/O is logged; `null` = all.
    pub io_logging_api_key_ids: Option<Vec<i64>>,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last update (RFC 3339), `null` if never.
    pub updated_at: Option<String>,
    /// Creating user.
    pub created_by: Option<String>,
}

/// The body of `POST /workspaces` (`CreateWorkspaceRequest`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWorkspace {
    /// Name, 1 to 100 characters.
    pub name: String,
    /// Slug: lowercase alphanumeric segments joined by single hyphens, ≤ 50.
    pub slug: String,
    /// Description, ≤ 500 characters.
    #[serde(default)]
    pub description: Option<String>,
    /// Default text model.
    #[serde(default)]
    pub default_text_model: Option<String>,
    /// Default image model.
    #[serde(default)]
    pub default_image_model: Option<String>,
    /// Default provider sort.
    #[serde(default)]
    pub default_provider_sort: Option<String>,
    /// Keys whose I/O is logged.
    #[serde(default)]
    pub io_logging_api_key_ids: Option<Vec<i64>>,
    /// Sampling rate of I/O logging (0.0001 to 1).
    #[serde(default)]
    pub io_logging_sampling_rate: Option<f64>,
    /// Data discount logging.
    #[serde(default)]
    pub is_data_discount_logging_enabled: Option<bool>,
    /// Broadcast.
    #[serde(default)]
    pub is_observability_broadcast_enabled: Option<bool>,
    /// Private logging.
    #[serde(default)]
    pub is_observability_io_logging_enabled: Option<bool>,
}

/// Whether `slug` is lowercase alphanumeric segments joined by single hyphens.
fn valid_slug(slug: &str) -> bool {
    slug.len() <= 50
        && slug.split('-').all(|segment| {
            !segment.is_empty()
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

impl NewWorkspace {
    /// Checks the request against the schema's bounds; a 400 saying what is wrong.
    pub fn validate(&self) -> Result<(), AccountError> {
        let invalid = |m: &str| Err(AccountError::Invalid(m.into()));
        if self.name.trim().is_empty() || self.name.chars().count() > 100 {
            return invalid("`name` must be 1 to 100 characters");
        }
        if !valid_slug(&self.slug) {
            return invalid(
                "`slug` must be lowercase letters and digits in segments joined by single hyphens, at most 50 characters",
            );
        }
        if self
            .description
            .as_ref()
            .is_some_and(|d| d.chars().count() > 500)
        {
            return invalid("`description` must be at most 500 characters");
        }
        if self
            .io_logging_sampling_rate
            .is_some_and(|r| !(0.0001..=1.0).contains(&r))
        {
            return invalid("`io_logging_sampling_rate` must be between 0.0001 and 1");
        }
        Ok(())
    }
}

impl Workspace {
    /// The workspace `new` describes, with id `id`, created at `now`.
    pub fn create(id: String, new: NewWorkspace, now: DateTime<Utc>) -> Workspace {
        Workspace {
            default_guardrail_id: uuid_of(&format!("default guardrail\n{id}")),
            id,
            name: new.name,
            slug: new.slug,
            description: new.description,
            default_text_model: new.default_text_model,
            default_image_model: new.default_image_model,
            default_provider_sort: new.default_provider_sort,
            include_byok_in_budgets: false,
            is_observability_io_logging_enabled: new
                .is_observability_io_logging_enabled
                .unwrap_or(false),
            is_observability_broadcast_enabled: new
                .is_observability_broadcast_enabled
                .unwrap_or(false),
            is_data_discount_logging_enabled: new.is_data_discount_logging_enabled.unwrap_or(true),
            io_logging_sampling_rate: new.io_logging_sampling_rate.unwrap_or(1.0),
            io_logging_api_key_ids: new.io_logging_api_key_ids,
            created_at: now.to_rfc3339_opts(SecondsFormat::Secs, true),
            updated_at: None,
            created_by: Some(CREATOR.into()),
        }
    }

    /// Whether `id_or_slug` names this workspace.
    pub fn is(&self, id_or_slug: &str) -> bool {
        self.id == id_or_slug || self.slug == id_or_slug
    }
}

/// The workspaces every sandbox starts with, created at `now`: `default`
/// (id [`DEFAULT_WORKSPACE`], where keys go unless told otherwise),
/// `research` and `support`.
pub fn start_workspaces(now: DateTime<Utc>) -> Vec<Workspace> {
    [
        (
            DEFAULT_WORKSPACE,
            "Default",
            "default",
            "Where keys go unless told otherwise",
        ),
        (
            RESEARCH_WORKSPACE,
            "Research",
            "research",
            "The research team",
        ),
        (SUPPORT_WORKSPACE, "Support", "support", "The support team"),
    ]
    .into_iter()
    .map(|(id, name, slug, description)| {
        let new = NewWorkspace {
            name: name.into(),
            slug: slug.into(),
            description: Some(description.into()),
            ..NewWorkspace::default()
        };
        Workspace::create(id.into(), new, now)
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_hyphenated_lowercase_segments() {
        for good in ["research", "team-2", "a-b-c"] {
            assert!(valid_slug(good), "{good}");
        }
        for bad in ["", "Research", "-a", "a-", "a--b", "a_b", &"x".repeat(51)] {
            assert!(!valid_slug(bad), "{bad}");
        }
    }
}
