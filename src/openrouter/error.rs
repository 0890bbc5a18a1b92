//! Typed API errors that say what happened.

/// An API call that failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {}
