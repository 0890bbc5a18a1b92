//! Typed API errors that say what happened.
//!
//! No variant ever holds the management key: messages come from the server's
//! error body (scrubbed of the key by the client) or from the transport.

use std::time::Duration;

/// An API call that failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// 401/403: the credential was refused.
    #[error("the API refused the management key (HTTP {status}): {message}")]
    AuthFailed {
        /// 401 or 403.
        status: u16,
        /// What the server said.
        message: String,
    },
    /// 404 on a key: it does not exist (any more).
    #[error("no key with hash {hash} (HTTP 404)")]
    KeyNotFound {
        /// The hash that was asked for.
        hash: String,
    },
    /// 400: the request was refused as invalid.
    #[error("the API refused the request (HTTP 400): {message}")]
    BadRequest {
        /// What the server said.
        message: String,
    },
    /// Another 4xx that is not worth retrying.
    #[error("the API refused the request (HTTP {status}): {message}")]
    Refused {
        /// The status.
        status: u16,
        /// What the server said.
        message: String,
    },
    /// 429 after the retries ran out.
    #[error("rate limited by the API (HTTP 429){}", retry_after_text(retry_after))]
    RateLimited {
        /// The last `Retry-After` the server gave.
        retry_after: Option<Duration>,
    },
    /// 5xx after the retries ran out.
    #[error("the API failed (HTTP {status}): {message}")]
    Server {
        /// The status.
        status: u16,
        /// What the server said.
        message: String,
    },
    /// Could not connect: nothing was sent.
    #[error("{message}")]
    Network {
        /// What the transport said, with the URL.
        message: String,
    },
    /// A timeout or a closed connection after the request was sent:
    /// OpenRouter may have applied it.
    #[error("the request was sent but no answer came (it may have been applied): {message}")]
    Ambiguous {
        /// What the transport said.
        message: String,
    },
    /// Refused before sending anything (a hash that is not one, a patch
    /// that cannot be encoded): the API never saw it.
    #[error("not sent: {message}")]
    NotSent {
        /// Why.
        message: String,
    },
    /// `[openrouter] workspaces` names a workspace the account does not have.
    #[error(
        "[openrouter].workspaces names {name:?}, which is neither the id nor the slug of a \
         workspace of the account (its workspaces: {})",
        known.join(", ")
    )]
    UnknownWorkspace {
        /// The id or slug as configured.
        name: String,
        /// The slugs of the account's workspaces.
        known: Vec<String>,
    },
    /// Not JSON, the wrong shape, or too large.
    #[error("invalid response from the API: {message}")]
    InvalidResponse {
        /// What was wrong.
        message: String,
    },
}

fn retry_after_text(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!("; it asked to wait {}s", d.as_secs()),
        None => String::new(),
    }
}

impl ApiError {
    /// True when the request may have been applied although no answer came
    /// (SPEC §4.5 records these as `unknown`).
    pub fn is_ambiguous(&self) -> bool {
        matches!(self, ApiError::Ambiguous { .. })
    }

    /// True when the credential was refused (401/403): stop the run.
    pub fn is_auth(&self) -> bool {
        matches!(self, ApiError::AuthFailed { .. })
    }

    /// The HTTP status this error came with, if a response was received.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::AuthFailed { status, .. }
            | ApiError::Refused { status, .. }
            | ApiError::Server { status, .. } => Some(*status),
            ApiError::KeyNotFound { .. } => Some(404),
            ApiError::BadRequest { .. } => Some(400),
            ApiError::RateLimited { .. } => Some(429),
            ApiError::Network { .. }
            | ApiError::Ambiguous { .. }
            | ApiError::NotSent { .. }
            | ApiError::UnknownWorkspace { .. }
            | ApiError::InvalidResponse { .. } => None,
        }
    }

    /// Whether the client retries this failure (429, 5xx, network, ambiguous).
    pub(crate) fn is_retryable(&self) -> bool {
        matches!(
            self,
            ApiError::RateLimited { .. }
                | ApiError::Server { .. }
                | ApiError::Network { .. }
                | ApiError::Ambiguous { .. }
        ) || matches!(self, ApiError::Refused { status: 408, .. })
    }
}

impl ApiError {
    /// The error with what to do about it, for people: a refused credential
    /// points at the management-keys page, an unreachable API at the
    /// configuration and the network.
    pub fn explain(&self) -> String {
        match self {
            ApiError::AuthFailed { status, .. } => format!(
                "the API refused the management key (HTTP {status}): this looks like an \
                 inference key, or a revoked one; create a management key at \
                 https://openrouter.ai/settings/management-keys"
            ),
            ApiError::Network { message } => {
                format!("{message}; check [openrouter].base_url and the network")
            }
            ApiError::Refused { status: 404, .. } => {
                format!("{self}; check [openrouter].base_url (it should end in /api/v1)")
            }
            other => other.to_string(),
        }
    }
}
