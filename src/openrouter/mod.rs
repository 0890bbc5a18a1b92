//! OpenRouter's management API: the wire models, the HTTP client and its
//! guardrail calls.

pub mod client;
pub mod error;
pub mod guardrails;
pub mod model;

pub use client::{Attempted, Client, ClientSettings};
pub use error::ApiError;
pub use model::{CurrentKey, KeyPatch};
