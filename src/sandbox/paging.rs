//! Offset/limit paging of the workspace and guardrail listings: `offset`
//! (default 0) and `limit` (1 to [`MAX_LIMIT`], default [`DEFAULT_LIMIT`]),
//! answered as `{"data": [...], "total_count": n}`.

use super::account::AccountError;
use serde::{Deserialize, Serialize};

/// Records per page when the request names no `limit`.
pub const DEFAULT_LIMIT: usize = 50;
/// The largest `limit` accepted.
pub const MAX_LIMIT: usize = 100;

/// The paging part of a listing's query.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct PageRequest {
    /// Records to skip.
    #[serde(default)]
    pub offset: Option<usize>,
    /// Records to return at most.
    #[serde(default)]
    pub limit: Option<usize>,
}

/// One page of a listing and how many records the whole listing holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    /// The records of this page.
    pub data: Vec<T>,
    /// How many records all pages hold together.
    pub total_count: usize,
}

impl PageRequest {
    /// Checks `limit` (1 to [`MAX_LIMIT`]); a 400 saying so otherwise.
    pub fn validate(self) -> Result<PageRequest, AccountError> {
        match self.limit {
            Some(limit) if !(1..=MAX_LIMIT).contains(&limit) => Err(AccountError::Invalid(
                format!("`limit` must be between 1 and {MAX_LIMIT}"),
            )),
            _ => Ok(self),
        }
    }

    /// The page of `records` this request asks for.
    pub fn page<T>(self, records: Vec<T>) -> Page<T> {
        let total_count = records.len();
        let data = records
            .into_iter()
            .skip(self.offset.unwrap_or(0))
            .take(self.limit.unwrap_or(DEFAULT_LIMIT))
            .collect();
        Page { data, total_count }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_skips_offset_and_counts_everything() {
        let request = PageRequest {
            offset: Some(200),
            limit: Some(100),
        };
        let page = request.page((0..250).collect());
        assert_eq!(page.total_count, 250);
        assert_eq!(page.data, (200..250).collect::<Vec<_>>());
        assert_eq!(
            PageRequest::default()
                .page((0..250).collect::<Vec<_>>())
                .data
                .len(),
            DEFAULT_LIMIT
        );
    }

    #[test]
    fn a_limit_outside_one_to_a_hundred_is_refused() {
        for limit in [0, 101] {
            let request = PageRequest {
                offset: None,
                limit: Some(limit),
            };
            assert_eq!(request.validate().unwrap_err().status(), 400);
        }
    }
}
