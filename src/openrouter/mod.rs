//! OpenRouter's management API: the data model and the HTTP client.

pub mod client;
pub mod error;
pub mod model;

pub use client::{Attempted, Client, ClientSettings};
pub use error::ApiError;
pub use model::{Credits, CurrentKey, Field, FieldValue, Key, KeyPatch, LimitReset};
