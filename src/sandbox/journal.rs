//! The journal of management calls the sandbox received (`GET /_sandbox/requests`).

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// At most this many entries are kept; the oldest go first.
pub const JOURNAL_CAPACITY: usize = 100_000;

/// One request to `/api/v1`, as received and answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Sandbox time (RFC 3339).
    pub at: String,
    /// Real time (RFC 3339 with milliseconds).
    pub received_at: String,
    /// HTTP method.
    pub method: String,
    /// Path, e.g. `/api/v1/keys/f01d…`.
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// The request body parsed as JSON; `null` when empty or not JSON.
    pub body: serde_json::Value,
    /// The status answered (also when the connection was then dropped).
    pub status: u16,
    /// Whether the request changed the account.
    pub applied: bool,
}

/// The entries, oldest first, bounded by [`JOURNAL_CAPACITY`].
#[derive(Debug, Clone, Default)]
pub struct Journal(VecDeque<JournalEntry>);

impl Journal {
    /// Appends an entry, forgetting the oldest when full.
    pub fn push(&mut self, entry: JournalEntry) {
        if self.0.len() == JOURNAL_CAPACITY {
            self.0.pop_front();
        }
        self.0.push_back(entry);
    }

    /// Every entry, oldest first.
    pub fn entries(&self) -> Vec<JournalEntry> {
        self.0.iter().cloned().collect()
    }

    /// Forgets every entry; returns how many there were.
    pub fn clear(&mut self) -> usize {
        let n = self.0.len();
        self.0.clear();
        n
    }
}
