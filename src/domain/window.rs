//! The UTC windows usage is counted in and limits reset on: days, weeks
//! from Monday 00:00, months from the 1st.

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The spend window a budget is measured over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Window {
    /// `usage_daily` (UTC day).
    Daily,
    /// `usage_weekly` (UTC Monday–Sunday).
    Weekly,
    /// `usage_monthly` (UTC month).
    Monthly,
    /// Lifetime `usage`.
    Total,
}

impl Window {
    /// The name used in rules and reasons.
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Daily => "daily",
            Window::Weekly => "weekly",
            Window::Monthly => "monthly",
            Window::Total => "total",
        }
    }
}

impl Window {
    /// Parses a name used in rules (`daily`, `weekly`, `monthly`, `total`).
    pub fn parse(s: &str) -> Option<Window> {
        [
            Window::Daily,
            Window::Weekly,
            Window::Monthly,
            Window::Total,
        ]
        .into_iter()
        .find(|w| w.as_str() == s)
    }

    /// The bounds of the window that holds `now`; `None` for `total`,
    /// which never resets.
    pub fn bounds(self, now: DateTime<Utc>) -> Option<WindowBounds> {
        let day = now.date_naive();
        let (start, end) = match self {
            Window::Daily => (day, day + Days::new(1)),
            Window::Weekly => {
                let monday = day - Days::new(u64::from(day.weekday().num_days_from_monday()));
                (monday, monday + Days::new(7))
            }
            Window::Monthly => {
                let first = day.with_day(1)?;
                (first, first.checked_add_months(chrono::Months::new(1))?)
            }
            Window::Total => return None,
        };
        let at = |d: NaiveDate| Utc.from_utc_datetime(&d.and_time(NaiveTime::MIN));
        Some(WindowBounds {
            start: at(start),
            end: at(end),
        })
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The UTC bounds `[start, end)` of one daily, weekly or monthly window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowBounds {
    /// Its first instant.
    pub start: DateTime<Utc>,
    /// The first instant after it: when the window resets.
    pub end: DateTime<Utc>,
}

/// How often a key's limit resets. `None` (JSON `null`) means it never resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum LimitReset {
    /// Every UTC midnight.
    Daily,
    /// Every Monday 00:00 UTC.
    Weekly,
    /// On the first of every month, 00:00 UTC.
    Monthly,
}

impl LimitReset {
    /// The wire name (`daily`, `weekly`, `monthly`).
    pub fn as_str(self) -> &'static str {
        match self {
            LimitReset::Daily => "daily",
            LimitReset::Weekly => "weekly",
            LimitReset::Monthly => "monthly",
        }
    }

    /// Parses a wire name; anything but the three known values is `None`.
    pub fn parse(s: &str) -> Option<LimitReset> {
        match s {
            "daily" => Some(LimitReset::Daily),
            "weekly" => Some(LimitReset::Weekly),
            "monthly" => Some(LimitReset::Monthly),
            _ => None,
        }
    }
}

impl fmt::Display for LimitReset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl LimitReset {
    /// The window a limit that resets this way is counted in.
    pub fn window(self) -> Window {
        match self {
            LimitReset::Daily => Window::Daily,
            LimitReset::Weekly => Window::Weekly,
            LimitReset::Monthly => Window::Monthly,
        }
    }

    /// When the window that holds `t` ends: the next UTC midnight, the next
    /// Monday 00:00 UTC, or the next 1st of a month 00:00 UTC.
    pub fn next_reset(self, t: DateTime<Utc>) -> DateTime<Utc> {
        self.window().bounds(t).map_or(t, |w| w.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn bounds(w: Window, now: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        w.bounds(utc(now)).map(|b| (b.start, b.end))
    }

    #[test]
    fn windows_are_utc_days_monday_weeks_and_months() {
        let now = "2026-12-31T23:30:00Z";
        assert_eq!(
            bounds(Window::Daily, now),
            Some((utc("2026-12-31T00:00:00Z"), utc("2027-01-01T00:00:00Z")))
        );
        assert_eq!(
            bounds(Window::Weekly, now),
            Some((utc("2026-12-28T00:00:00Z"), utc("2027-01-04T00:00:00Z")))
        );
        assert_eq!(
            bounds(Window::Monthly, now),
            Some((utc("2026-12-01T00:00:00Z"), utc("2027-01-01T00:00:00Z")))
        );
        assert_eq!(Window::Total.bounds(utc(now)), None);
        assert_eq!(
            LimitReset::Weekly.next_reset(utc("2026-12-28T00:00:00Z")),
            utc("2027-01-04T00:00:00Z")
        );
    }

    #[test]
    fn next_reset_of_each_window() {
        let now = utc("2026-12-31T18:00:00Z");
        assert_eq!(
            LimitReset::Daily.next_reset(now),
            utc("2027-01-01T00:00:00Z")
        );
        assert_eq!(
            LimitReset::Monthly.next_reset(now),
            utc("2027-01-01T00:00:00Z")
        );
        assert_eq!(
            LimitReset::Monthly.next_reset(utc("2026-02-10T00:00:00Z")),
            utc("2026-03-01T00:00:00Z")
        );
    }
}
