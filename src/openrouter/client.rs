//! The HTTP client: pagination, bounded concurrency, rate limit, retries.

/// The OpenRouter management API client.
#[derive(Debug, Clone)]
pub struct Client {}
