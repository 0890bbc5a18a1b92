//! OpenRouter's management API: the wire models, the HTTP client, its
//! guardrail calls and the workspace listing.

pub mod client;
pub mod error;
pub mod guardrails;
pub mod model;
mod pacer;
pub mod workspaces;

pub use client::{Attempted, Client, ClientSettings};
pub use error::ApiError;
pub use model::{CurrentKey, KeyPatch};
pub use workspaces::{Fallback, KeyListing};
