//! The frame of every page: the stylesheet, the live-update script, the
//! navigation, and a refresh for browsers without JavaScript.

use crate::ui::paging::Page;
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};

/// Seconds after which a page without JavaScript loads itself again.
pub const NOSCRIPT_REFRESH_SECS: u32 = 15;

/// The pages, in the navigation's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// `/`
    Overview,
    /// `/budgets`
    Budgets,
    /// `/keys`
    Keys,
    /// `/history`
    History,
    /// `/rules`
    Rules,
}

impl Nav {
    const ALL: [Nav; 5] = [
        Nav::Overview,
        Nav::Budgets,
        Nav::Keys,
        Nav::History,
        Nav::Rules,
    ];

    fn href(self) -> &'static str {
        match self {
            Nav::Overview => "/",
            Nav::Budgets => "/budgets",
            Nav::Keys => "/keys",
            Nav::History => "/history",
            Nav::Rules => "/rules",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Nav::Overview => "Overview",
            Nav::Budgets => "Budgets",
            Nav::Keys => "Keys",
            Nav::History => "History",
            Nav::Rules => "Rules",
        }
    }
}

/// A page of the dashboard: `body` inside `<main data-run="RUN">`, which
/// the script swaps when run `RUN` is no longer the newest.
pub fn page(current: Nav, run_id: i64, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(current.title(), true))
            body {
                header {
                    strong { "keywarden" }
                    nav {
                        @for nav in Nav::ALL {
                            a href=(nav.href()) aria-current=[(nav == current).then_some("page")] { (nav.title()) }
                        }
                    }
                }
                main data-run=(run_id) { (body) }
            }
        }
    }
}

/// A page outside the navigation (the login form).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, false))
            body { main { (body) } }
        }
    }
}

fn head(title: &str, live: bool) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · keywarden" }
            link rel="stylesheet" href="/assets/style.css";
            @if live {
                script src="/assets/live.js" defer {}
                noscript { meta http-equiv="refresh" content=(NOSCRIPT_REFRESH_SECS); }
            }
        }
    }
}

/// An instant for people, `2026-12-02 10:05 UTC`; `-` for none.
pub fn when(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(
        || "-".into(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// The links to the pages before and after `shown` of a list at `path`,
/// filtered by `params`.
pub fn pager(path: &str, params: &[(&str, &str)], shown: Page) -> Markup {
    html! {
        div.pager {
            @if shown.number > 1 { a href=(Page::link(path, params, shown.number - 1)) { "← previous" } }
            span.muted { "page " (shown.number) }
            @if shown.has_next() { a href=(Page::link(path, params, shown.number + 1)) { "next →" } }
        }
    }
}
