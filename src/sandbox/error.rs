//! Why the simulated account refuses an operation, with OpenRouter's
//! status for each.

/// Why a guardrail refuses a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The model is not on its `allowed_models`.
    ModelNotAllowed,
    /// The model is on its `ignored_models`.
    ModelIgnored,
    /// The model's provider is not on its `allowed_providers`.
    ProviderNotAllowed,
    /// The model's provider is on its `ignored_providers`.
    ProviderIgnored,
}

/// Why the account refused an operation; [`AccountError::status`] is its HTTP status.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AccountError {
    /// No `Authorization: Bearer …` header (401).
    #[error("Missing Authentication header")]
    MissingAuth,
    /// A bearer token the account does not know (401).
    #[error("Invalid credentials")]
    BadAuth,
    /// A key that is not the management key called a management endpoint (403).
    #[error("Only management keys can perform this operation")]
    NotManagement,
    /// No key has that hash (404).
    #[error("Key not found")]
    NotFound,
    /// No workspace has that id or slug (404).
    #[error("Workspace not found")]
    WorkspaceNotFound,
    /// No guardrail has that id (404).
    #[error("Guardrail not found")]
    GuardrailNotFound,
    /// `DELETE /workspaces/{id}` of the default workspace (403, as for
    /// accounts not yet enabled for it).
    #[error("Deleting the default workspace is not available for this account")]
    DefaultWorkspace,
    /// Spend on a model the key's guardrail does not allow (403).
    #[error("{}", refusal_message(model, guardrail, *refusal))]
    ModelRefused {
        /// The model asked for.
        model: String,
        /// The name of the key's guardrail.
        guardrail: String,
        /// Which of its lists refused it.
        refusal: Refusal,
    },
    /// The request is malformed (400).
    #[error("{0}")]
    Invalid(String),
    /// Spend on a disabled key (403).
    #[error("Key is disabled")]
    Disabled,
    /// Spend on an expired key (403).
    #[error("Key has expired")]
    Expired,
    /// Spend on a key whose limit is used up (402).
    #[error("Key limit exceeded: nothing left of its {limit} USD limit")]
    OverLimit {
        /// The key's limit.
        limit: f64,
    },
    /// Two keys with one hash (409).
    #[error("A key with hash {0} already exists")]
    DuplicateHash(String),
}

impl AccountError {
    /// The HTTP status of this error.
    pub fn status(&self) -> u16 {
        match self {
            AccountError::MissingAuth | AccountError::BadAuth => 401,
            AccountError::OverLimit { .. } => 402,
            AccountError::NotManagement
            | AccountError::Disabled
            | AccountError::Expired
            | AccountError::ModelRefused { .. }
            | AccountError::DefaultWorkspace => 403,
            AccountError::NotFound
            | AccountError::WorkspaceNotFound
            | AccountError::GuardrailNotFound => 404,
            AccountError::DuplicateHash(_) => 409,
            AccountError::Invalid(_) => 400,
        }
    }
}

/// What a refused spend says: the model, the guardrail and its list.
fn refusal_message(model: &str, guardrail: &str, refusal: Refusal) -> String {
    let why = match refusal {
        Refusal::ModelNotAllowed => "is not in its allowed models",
        Refusal::ModelIgnored => "is in its ignored models",
        Refusal::ProviderNotAllowed => "is from a provider not in its allowed providers",
        Refusal::ProviderIgnored => "is from a provider in its ignored providers",
    };
    format!("Model {model} is not allowed by this key's guardrail {guardrail}: it {why}")
}
