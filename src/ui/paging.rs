//! Long answers in pages (SPEC §13: "paged where long"): the Keys and
//! Budgets pages, `/api/keys`, `/api/budgets` and `/api/forecasts` give
//! [`PAGE_ITEMS`] items a page, `?page=N` from 1; a page past the end is
//! empty. A JSON page that another follows says where it is, in a
//! `Link: <…&page=N>; rel="next"` header (its body keeps the CLI's shape).

use axum::Json;
use axum::http::header::LINK;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// Items on one page.
pub const PAGE_ITEMS: usize = 500;

/// `?page=N`, the only parameter of `/api/budgets`, `/api/forecasts` and
/// the Budgets page.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct PageQuery {
    /// The page, from 1.
    pub page: Option<usize>,
}

/// One page of a list: which, and how many items the whole list holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// The page, from 1.
    pub number: usize,
    /// Items in the whole list.
    pub total: usize,
}

impl Page {
    /// Page `asked` (1 when none or less) of a list of `total` items.
    pub fn new(asked: Option<usize>, total: usize) -> Page {
        Page {
            number: asked.unwrap_or(1).max(1),
            total,
        }
    }

    /// How many items the pages before this one hold.
    pub fn skipped(self) -> usize {
        (self.number - 1).saturating_mul(PAGE_ITEMS)
    }

    /// This page's items of `items`, the whole list.
    pub fn of<T>(self, items: &[T]) -> &[T] {
        let start = self.skipped().min(items.len());
        &items[start..(start + PAGE_ITEMS).min(items.len())]
    }

    /// Whether another page follows this one.
    pub fn has_next(self) -> bool {
        self.number.saturating_mul(PAGE_ITEMS) < self.total
    }

    /// `path?NAME=VALUE&…&page=N` for page `number`, the `params` that are
    /// not empty kept.
    pub fn link(path: &str, params: &[(&str, &str)], number: usize) -> String {
        let mut url = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in params {
            if !value.is_empty() {
                url.append_pair(name, value);
            }
        }
        url.append_pair("page", &number.to_string());
        format!("{path}?{}", url.finish())
    }

    /// `body` as JSON, with a `Link` to the next page (`path` with the same
    /// `params`) when one follows.
    pub fn json(self, body: impl Serialize, path: &str, params: &[(&str, &str)]) -> Response {
        let mut response = Json(body).into_response();
        if self.has_next() {
            let next = format!(
                "<{}>; rel=\"next\"",
                Page::link(path, params, self.number + 1)
            );
            if let Ok(value) = next.parse() {
                response.headers_mut().insert(LINK, value);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_holds_its_items_and_knows_whether_another_follows() {
        let items: Vec<usize> = (0..1_001).collect();
        let first = Page::new(None, items.len());
        assert_eq!(first.of(&items), &items[..500]);
        assert!(first.has_next());
        let third = Page::new(Some(3), items.len());
        assert_eq!(third.of(&items), [1_000]);
        assert!(!third.has_next());
        let past = Page::new(Some(9), items.len());
        assert!(past.of(&items).is_empty() && !past.has_next());
        assert_eq!(Page::new(Some(0), 0).number, 1, "page 0 is the first");
        assert_eq!(
            Page::link("/keys", &[("name", "team a*"), ("state", "")], 2),
            "/keys?name=team+a*&page=2"
        );
    }
}
