//! OpenRouter's management API: the data model and the HTTP client.

pub mod client;
pub mod error;
pub mod model;

pub use client::Client;
pub use error::ApiError;
pub use model::{Credits, Field, FieldValue, Key, KeyPatch, LimitReset};
