//! The account's guardrails: the `Guardrail` and `KeyAssignment` objects of
//! `openapi-management.yaml`, the bodies of `POST /guardrails` and
//! `PATCH /guardrails/{id}`, the two guardrails every sandbox starts with
//! (`cheap-models-only`, `no-training`), and which models a guardrail lets
//! a key spend on.

use super::error::AccountError;
pub use super::error::Refusal;
use super::ids::DEFAULT_WORKSPACE;
use crate::domain::LimitReset;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize};

/// The id of the `cheap-models-only` guardrail every sandbox starts with.
pub const CHEAP_MODELS_ONLY: &str = "00000000-0000-4000-8000-00000000c4e9";
/// The id of the `no-training` guardrail every sandbox starts with.
pub const NO_TRAINING: &str = "00000000-0000-4000-8000-0000000070a1";
/// The models `cheap-models-only` allows.
pub const CHEAP_MODELS: [&str; 3] = [
    "openai/gpt-4o-mini",
    "google/gemini-2.0-flash-001",
    "meta-llama/llama-3.1-8b-instruct",
];

/// A guardrail, serialized exactly as the API answers it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Guardrail {
    /// Its UUID.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// The only models it allows; `null` = any.
    pub allowed_models: Option<Vec<String>>,
    /// Models it excludes.
    pub ignored_models: Option<Vec<String>>,
    /// The only providers it allows; `null` = any.
    pub allowed_providers: Option<Vec<String>>,
    /// Providers it excludes.
    pub ignored_providers: Option<Vec<String>>,
    /// Builtin content filters (not simulated: always `null`).
    pub content_filter_builtins: Option<Vec<serde_json::Value>>,
    /// Custom content filters (not simulated: always `null`).
    pub content_filters: Option<Vec<serde_json::Value>>,
    /// Free endpoints that publish prompts allowed.
    pub enable_free_model_publication: Option<bool>,
    /// Free endpoints that train on requests allowed.
    pub enable_free_model_training: Option<bool>,
    /// Paid endpoints that train on requests allowed.
    pub enable_paid_model_training: Option<bool>,
    /// Deprecated; answered `null` (the per-provider flags hold the policy).
    pub enforce_zdr: Option<bool>,
    /// Zero data retention for Anthropic models.
    pub enforce_zdr_anthropic: Option<bool>,
    /// Zero data retention for Google models.
    pub enforce_zdr_google: Option<bool>,
    /// Zero data retention for OpenAI models.
    pub enforce_zdr_openai: Option<bool>,
    /// Zero data retention for other models.
    pub enforce_zdr_other: Option<bool>,
    /// Zero data retention for xAI models.
    pub enforce_zdr_xai: Option<bool>,
    /// Whether BYOK spend counts toward `limit_usd`.
    pub include_byok_in_budgets: bool,
    /// Spending limit in USD; `null` = none.
    pub limit_usd: Option<f64>,
    /// How the limit resets; `null` = never.
    pub reset_interval: Option<LimitReset>,
    /// The workspace it belongs to.
    pub workspace_id: Option<String>,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last update (RFC 3339), `null` if never.
    pub updated_at: Option<String>,
}

impl Guardrail {
    /// Whether a request for `model` (`provider/name`) passes this guardrail.
    pub fn admits(&self, model: &str) -> Result<(), Refusal> {
        let provider = model.split('/').next().unwrap_or(model);
        let listed = |list: &Option<Vec<String>>, item: &str| {
            list.as_ref().map(|l| l.iter().any(|m| m == item))
        };
        if listed(&self.allowed_models, model) == Some(false) {
            return Err(Refusal::ModelNotAllowed);
        }
        if listed(&self.ignored_models, model) == Some(true) {
            return Err(Refusal::ModelIgnored);
        }
        if listed(&self.allowed_providers, provider) == Some(false) {
            return Err(Refusal::ProviderNotAllowed);
        }
        if listed(&self.ignored_providers, provider) == Some(true) {
            return Err(Refusal::ProviderIgnored);
        }
        Ok(())
    }
}

/// A field of an update body: left as it is when absent, set when present
/// (`null` included, for a nullable field).
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Change<T> {
    /// The body does not name the field.
    #[default]
    Unchanged,
    /// The body sets the field to this.
    To(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Change<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Change::To)
    }
}

impl<T> Change<T> {
    /// Sets `field` when the body names it.
    fn apply(self, field: &mut T) {
        if let Change::To(value) = self {
            *field = value;
        }
    }

    fn as_set(&self) -> Option<&T> {
        match self {
            Change::Unchanged => None,
            Change::To(value) => Some(value),
        }
    }
}

/// The body of `POST /guardrails` (`CreateGuardrailRequest`, `name`
/// required) and of `PATCH /guardrails/{id}` (`UpdateGuardrailRequest`, no
/// `workspace_id`); each field [`Change::Unchanged`] when absent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardrailFields {
    /// Where a new guardrail goes (default: the default workspace).
    #[serde(default)]
    pub workspace_id: Option<String>,
    /// Name, 1 to 200 characters.
    #[serde(default)]
    pub name: Change<String>,
    /// Description, ≤ 1000 characters.
    #[serde(default)]
    pub description: Change<Option<String>>,
    /// Allowed models (non-empty, or `null`).
    #[serde(default)]
    pub allowed_models: Change<Option<Vec<String>>>,
    /// Ignored models (non-empty, or `null`).
    #[serde(default)]
    pub ignored_models: Change<Option<Vec<String>>>,
    /// Allowed providers (non-empty, or `null`).
    #[serde(default)]
    pub allowed_providers: Change<Option<Vec<String>>>,
    /// Ignored providers (non-empty, or `null`).
    #[serde(default)]
    pub ignored_providers: Change<Option<Vec<String>>>,
    /// Builtin content filters: only empty or `null` (not simulated).
    #[serde(default)]
    pub content_filter_builtins: Change<Option<Vec<serde_json::Value>>>,
    /// Custom content filters: only empty or `null` (not simulated).
    #[serde(default)]
    pub content_filters: Change<Option<Vec<serde_json::Value>>>,
    /// Free endpoints that publish prompts allowed.
    #[serde(default)]
    pub enable_free_model_publication: Change<Option<bool>>,
    /// Free endpoints that train on requests allowed.
    #[serde(default)]
    pub enable_free_model_training: Change<Option<bool>>,
    /// Paid endpoints that train on requests allowed.
    #[serde(default)]
    pub enable_paid_model_training: Change<Option<bool>>,
    /// Deprecated: copied into each per-provider flag the body does not set.
    #[serde(default)]
    pub enforce_zdr: Change<Option<bool>>,
    /// Zero data retention for Anthropic models.
    #[serde(default)]
    pub enforce_zdr_anthropic: Change<Option<bool>>,
    /// Zero data retention for Google models.
    #[serde(default)]
    pub enforce_zdr_google: Change<Option<bool>>,
    /// Zero data retention for OpenAI models.
    #[serde(default)]
    pub enforce_zdr_openai: Change<Option<bool>>,
    /// Zero data retention for other models.
    #[serde(default)]
    pub enforce_zdr_other: Change<Option<bool>>,
    /// Zero data retention for xAI models.
    #[serde(default)]
    pub enforce_zdr_xai: Change<Option<bool>>,
    /// Whether BYOK spend counts toward `limit_usd`.
    #[serde(default)]
    pub include_byok_in_budgets: Change<bool>,
    /// Spending limit in USD (≥ 0, or `null`).
    #[serde(default)]
    pub limit_usd: Change<Option<f64>>,
    /// `daily`, `weekly`, `monthly` or `null`.
    #[serde(default)]
    pub reset_interval: Change<Option<LimitReset>>,
}

fn invalid<T>(message: impl Into<String>) -> Result<T, AccountError> {
    Err(AccountError::Invalid(message.into()))
}

impl GuardrailFields {
    /// Checks the bounds of the schema; a 400 saying what is wrong.
    pub fn validate(&self) -> Result<(), AccountError> {
        if let Some(name) = self.name.as_set() {
            if name.trim().is_empty() || name.chars().count() > 200 {
                return invalid("`name` must be 1 to 200 characters");
            }
        }
        if let Some(Some(d)) = self.description.as_set() {
            if d.chars().count() > 1000 {
                return invalid("`description` must be at most 1000 characters");
            }
        }
        for (field, list) in [
            ("allowed_models", &self.allowed_models),
            ("ignored_models", &self.ignored_models),
            ("allowed_providers", &self.allowed_providers),
            ("ignored_providers", &self.ignored_providers),
        ] {
            if list
                .as_set()
                .is_some_and(|l| l.as_ref().is_some_and(Vec::is_empty))
            {
                return invalid(format!("`{field}` must hold at least one item, or be null"));
            }
        }
        for (field, list) in [
            ("content_filter_builtins", &self.content_filter_builtins),
            ("content_filters", &self.content_filters),
        ] {
            if list
                .as_set()
                .is_some_and(|l| l.as_ref().is_some_and(|l| !l.is_empty()))
            {
                return invalid(format!("`{field}` are not simulated by the sandbox"));
            }
        }
        if let Some(Some(limit)) = self.limit_usd.as_set() {
            if !limit.is_finite() || *limit < 0.0 {
                return invalid("`limit_usd` must be a number >= 0 or null");
            }
        }
        Ok(())
    }

    /// Applies the fields the body names to `guardrail`.
    pub fn apply(self, guardrail: &mut Guardrail) {
        let zdr = self.enforce_zdr.as_set().copied().flatten();
        for (flag, field) in [
            (
                self.enforce_zdr_anthropic,
                &mut guardrail.enforce_zdr_anthropic,
            ),
            (self.enforce_zdr_google, &mut guardrail.enforce_zdr_google),
            (self.enforce_zdr_openai, &mut guardrail.enforce_zdr_openai),
            (self.enforce_zdr_other, &mut guardrail.enforce_zdr_other),
            (self.enforce_zdr_xai, &mut guardrail.enforce_zdr_xai),
        ] {
            match (flag, zdr) {
                (Change::Unchanged, Some(z)) => *field = Some(z),
                (flag, _) => flag.apply(field),
            }
        }
        self.name.apply(&mut guardrail.name);
        self.description.apply(&mut guardrail.description);
        self.allowed_models.apply(&mut guardrail.allowed_models);
        self.ignored_models.apply(&mut guardrail.ignored_models);
        self.allowed_providers
            .apply(&mut guardrail.allowed_providers);
        self.ignored_providers
            .apply(&mut guardrail.ignored_providers);
        self.enable_free_model_publication
            .apply(&mut guardrail.enable_free_model_publication);
        self.enable_free_model_training
            .apply(&mut guardrail.enable_free_model_training);
        self.enable_paid_model_training
            .apply(&mut guardrail.enable_paid_model_training);
        self.include_byok_in_budgets
            .apply(&mut guardrail.include_byok_in_budgets);
        self.limit_usd.apply(&mut guardrail.limit_usd);
        self.reset_interval.apply(&mut guardrail.reset_interval);
    }
}

impl GuardrailFields {
    /// The guardrail this body creates, with id `id` at `now`; a 400 when
    /// the body lacks a `name` or breaks a bound.
    pub fn create(self, id: String, now: DateTime<Utc>) -> Result<Guardrail, AccountError> {
        self.validate()?;
        let Change::To(name) = self.name.clone() else {
            return invalid("`name` is required");
        };
        let mut guardrail = Guardrail {
            id,
            name,
            description: None,
            allowed_models: None,
            ignored_models: None,
            allowed_providers: None,
            ignored_providers: None,
            content_filter_builtins: None,
            content_filters: None,
            enable_free_model_publication: None,
            enable_free_model_training: None,
            enable_paid_model_training: None,
            enforce_zdr: None,
            enforce_zdr_anthropic: None,
            enforce_zdr_google: None,
            enforce_zdr_openai: None,
            enforce_zdr_other: None,
            enforce_zdr_xai: None,
            include_byok_in_budgets: false,
            limit_usd: None,
            reset_interval: None,
            workspace_id: Some(
                self.workspace_id
                    .clone()
                    .unwrap_or_else(|| DEFAULT_WORKSPACE.to_owned()),
            ),
            created_at: now.to_rfc3339_opts(SecondsFormat::Secs, true),
            updated_at: None,
        };
        self.apply(&mut guardrail);
        Ok(guardrail)
    }
}

/// The guardrails every sandbox starts with, in the default workspace:
/// `cheap-models-only` (allows only [`CHEAP_MODELS`]) and `no-training`
/// (no endpoint that trains on or publishes requests).
pub fn start_guardrails(now: DateTime<Utc>) -> Vec<Guardrail> {
    let cheap = GuardrailFields {
        name: Change::To("cheap-models-only".into()),
        description: Change::To(Some("Only a few cheap models".into())),
        allowed_models: Change::To(Some(CHEAP_MODELS.map(String::from).to_vec())),
        ..GuardrailFields::default()
    };
    let no_training = GuardrailFields {
        name: Change::To("no-training".into()),
        description: Change::To(Some(
            "No endpoint that trains on or publishes requests".into(),
        )),
        enable_free_model_publication: Change::To(Some(false)),
        enable_free_model_training: Change::To(Some(false)),
        enable_paid_model_training: Change::To(Some(false)),
        ..GuardrailFields::default()
    };
    [(CHEAP_MODELS_ONLY, cheap), (NO_TRAINING, no_training)]
        .into_iter()
        .filter_map(|(id, new)| new.create(id.into(), now).ok())
        .collect()
}

/// A key's assignment to a guardrail, as the account holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// The assignment's UUID.
    pub id: String,
    /// The guardrail the key holds.
    pub guardrail_id: String,
    /// When it was assigned.
    pub created_at: DateTime<Utc>,
}

/// A key assignment, serialized exactly as the API answers it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyAssignment {
    /// The assignment's UUID.
    pub id: String,
    /// The key's hash.
    pub key_hash: String,
    /// The guardrail's id.
    pub guardrail_id: String,
    /// The key's name.
    pub key_name: String,
    /// The key's label.
    pub key_label: String,
    /// Who assigned it.
    pub assigned_by: Option<String>,
    /// When (RFC 3339).
    pub created_at: String,
}

/// The body of the bulk assign and remove calls (`BulkAssignKeysRequest`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyHashes {
    /// The keys, by hash: at least one, none empty.
    pub key_hashes: Vec<String>,
}

impl KeyHashes {
    /// Checks the schema's bounds; a 400 saying what is wrong.
    pub fn validate(&self) -> Result<(), AccountError> {
        if self.key_hashes.is_empty() || self.key_hashes.iter().any(String::is_empty) {
            return invalid("`key_hashes` must hold at least one non-empty hash");
        }
        Ok(())
    }
}

/// `{"assigned_count": n}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Assigned {
    /// Keys that hold the guardrail after the call.
    pub assigned_count: usize,
}

/// `{"unassigned_count": n}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Unassigned {
    /// Keys that held the guardrail and no longer do.
    pub unassigned_count: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-27T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn cheap_models_only_admits_its_models_and_refuses_others() {
        let cheap = &start_guardrails(now())[0];
        assert_eq!(cheap.admits(CHEAP_MODELS[0]), Ok(()));
        assert_eq!(
            cheap.admits("anthropic/claude-opus-4"),
            Err(Refusal::ModelNotAllowed)
        );
    }

    #[test]
    fn an_update_sets_named_fields_and_leaves_the_rest() {
        let mut guardrail = start_guardrails(now())[0].clone();
        let update: GuardrailFields = serde_json::from_str(
            r#"{"allowed_models": null, "limit_usd": 5, "enforce_zdr": true}"#,
        )
        .unwrap();
        update.validate().unwrap();
        update.apply(&mut guardrail);
        assert_eq!(guardrail.allowed_models, None);
        assert_eq!(guardrail.limit_usd, Some(5.0));
        assert_eq!(guardrail.name, "cheap-models-only");
        assert_eq!(guardrail.enforce_zdr_xai, Some(true));
        assert_eq!(guardrail.admits("anthropic/claude-opus-4"), Ok(()));
    }

    #[test]
    fn empty_lists_and_content_filters_are_refused() {
        for body in [
            r#"{"allowed_models": []}"#,
            r#"{"content_filters": [{"pattern": "x", "action": "block"}]}"#,
            r#"{"limit_usd": -1}"#,
            r#"{"name": ""}"#,
        ] {
            let fields: GuardrailFields = serde_json::from_str(body).unwrap();
            assert_eq!(fields.validate().unwrap_err().status(), 400, "{body}");
        }
    }
}
