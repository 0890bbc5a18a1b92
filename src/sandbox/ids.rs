//! The simulated account's fixed identifiers and how its ids are derived,
//! so that they repeat across runs.

use sha2::{Digest, Sha256};

/// The workspace keys belong to unless told otherwise.
pub const DEFAULT_WORKSPACE: &str = "00000000-0000-4000-8000-00000000a11c";

/// The `creator_user_id` of every sandbox key, the `created_by` of its
/// workspaces and the `assigned_by` of its guardrail assignments.
pub(crate) const CREATOR: &str = "user_sandbox";

/// Lower-case hex SHA-256 of `text`: 64 characters.
pub(crate) fn sha256_hex(text: &str) -> String {
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

/// A version-4-shaped UUID derived from `text`, so ids repeat across runs:
/// `xxxxxxxx-xxxx-4xxx-8xxx-xxxxxxxxxxxx`.
pub(crate) fn uuid_of(text: &str) -> String {
    let hex = sha256_hex(text);
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}
