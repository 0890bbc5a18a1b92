//! OpenRouter's management API: the wire models and the HTTP client.

pub mod client;
pub mod error;
pub mod model;

pub use client::{Attempted, Client, ClientSettings};
pub use error::ApiError;
pub use model::{CurrentKey, KeyPatch};
