//! Calendar conditions (SPEC §3.2): `season`, `between`, `weekdays`, `hours`,
//! as pure functions of a local date-time, and the next instant at which
//! any of them may change.

use super::model::{Between, Conditions, Hours, Season};
use chrono::{
    DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
    Weekday,
};
use chrono_tz::Tz;

/// True when `d` is in the yearly range (both ends inclusive, may wrap the year end).
pub fn season_holds(s: &Season, d: NaiveDate) -> bool {
    let md = (d.month(), d.day());
    if s.from <= s.to {
        s.from <= md && md <= s.to
    } else {
        md >= s.from || md <= s.to
    }
}

/// True when `t` is in `[start, end)`.
pub fn between_holds(b: &Between, t: NaiveDateTime) -> bool {
    b.start <= t && t < b.end
}

/// True when `d` is one of `days`.
pub fn weekdays_holds(days: &[Weekday], d: Weekday) -> bool {
    days.contains(&d)
}

/// True when `t` is in `[start, end)`, wrapping midnight when `end < start`;
/// `start == end` means all day.
pub fn hours_holds(h: &Hours, t: NaiveTime) -> bool {
    if h.start == h.end {
        true
    } else if h.start < h.end {
        h.start <= t && t < h.end
    } else {
        t >= h.start || t < h.end
    }
}

/// True when every calendar condition of `c` holds at `now` in `tz`
/// (and when there is none).
pub fn calendar_holds(c: &Conditions, tz: Tz, now: DateTime<Utc>) -> bool {
    let local = now.with_timezone(&tz).naive_local();
    c.season
        .as_ref()
        .is_none_or(|s| season_holds(s, local.date()))
        && c.between.as_ref().is_none_or(|b| between_holds(b, local))
        && c.weekdays
            .as_deref()
            .is_none_or(|w| weekdays_holds(w, local.weekday()))
        && c.hours
            .as_ref()
            .is_none_or(|h| hours_holds(h, local.time()))
}

/// The next instant after `now` at which a calendar condition of `c` may
/// change: local midnight (for `season` and `weekdays`), the edges of
/// `hours`, the start and end of `between`. `None` when `c` has no
/// calendar condition (or none that will change again).
///
/// A local time that does not exist (a DST gap) maps to the first instant
/// after it; one that exists twice (a DST overlap) to both.
pub fn next_calendar_boundary(c: &Conditions, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let today = now.with_timezone(&tz).date_naive();
    let days: Vec<NaiveDate> = (0..=2)
        .filter_map(|n| today.checked_add_days(Days::new(n)))
        .collect();
    let mut local: Vec<NaiveDateTime> = Vec::new();
    if c.season.is_some() || c.weekdays.is_some() {
        local.extend(days.iter().map(|d| d.and_time(NaiveTime::MIN)));
    }
    if let Some(h) = c.hours.filter(|h| h.start != h.end) {
        local.extend(
            days.iter()
                .flat_map(|d| [d.and_time(h.start), d.and_time(h.end)]),
        );
    }
    if let Some(b) = &c.between {
        local.extend([b.start, b.end]);
    }
    local
        .into_iter()
        .flat_map(|t| instants(tz, t))
        .filter(|t| *t > now)
        .min()
}

/// The instants at which the wall clock of `tz` shows `t`; for a time in a
/// DST gap, the first instant after it.
fn instants(tz: Tz, t: NaiveDateTime) -> Vec<DateTime<Utc>> {
    match tz.from_local_datetime(&t) {
        LocalResult::Single(d) => vec![d.to_utc()],
        LocalResult::Ambiguous(a, b) => vec![a.to_utc(), b.to_utc()],
        LocalResult::None => (1..=26 * 60)
            .filter_map(|m| t.checked_add_signed(chrono::Duration::minutes(m)))
            .find_map(|later| tz.from_local_datetime(&later).earliest())
            .map(|d| d.to_utc())
            .into_iter()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn time(s: &str) -> NaiveTime {
        NaiveTime::parse_from_str(s, "%H:%M").unwrap()
    }

    fn hours(a: &str, b: &str) -> Hours {
        Hours {
            start: time(a),
            end: time(b),
        }
    }

    #[test]
    fn season_wraps_the_year_end_inclusively() {
        let s = Season {
            from: (11, 15),
            to: (1, 10),
        };
        assert!(season_holds(&s, date("2026-11-15")));
        assert!(season_holds(&s, date("2026-12-31")));
        assert!(season_holds(&s, date("2027-01-01")));
        assert!(season_holds(&s, date("2027-01-10")));
        assert!(!season_holds(&s, date("2027-01-11")));
        assert!(!season_holds(&s, date("2026-11-14")));
        assert!(!season_holds(&s, date("2026-07-01")));
    }

    #[test]
    fn season_within_a_year() {
        let s = Season {
            from: (2, 29),
            to: (3, 1),
        };
        assert!(season_holds(&s, date("2028-02-29")));
        assert!(season_holds(&s, date("2027-03-01")));
        assert!(!season_holds(&s, date("2027-02-28")));
    }

    #[test]
    fn hours_wrap_midnight_and_equal_ends_mean_all_day() {
        let night = hours("18:00", "08:00");
        assert!(hours_holds(&night, time("18:00")));
        assert!(hours_holds(&night, time("23:59")));
        assert!(hours_holds(&night, time("07:59")));
        assert!(!hours_holds(&night, time("08:00")));
        assert!(!hours_holds(&night, time("12:00")));
        let day = hours("09:00", "17:00");
        assert!(hours_holds(&day, time("09:00")));
        assert!(!hours_holds(&day, time("17:00")));
        assert!(hours_holds(&hours("00:00", "00:00"), time("03:00")));
    }

    #[test]
    fn between_is_half_open() {
        let b = Between {
            start: "2026-12-20T00:00:00".parse().unwrap(),
            end: "2026-12-27T00:00:00".parse().unwrap(),
        };
        assert!(between_holds(&b, b.start));
        assert!(!between_holds(&b, b.end));
    }

    #[test]
    fn calendar_holds_in_the_rule_timezone() {
        let c = Conditions {
            weekdays: Some(vec![Weekday::Sat, Weekday::Sun]),
            ..Conditions::default()
        };
        // Friday 23:30 UTC is Saturday 00:30 in Berlin.
        let now = utc("2026-03-27T23:30:00Z");
        assert!(calendar_holds(&c, chrono_tz::Europe::Berlin, now));
        assert!(!calendar_holds(&c, chrono_tz::UTC, now));
        assert!(calendar_holds(&Conditions::default(), chrono_tz::UTC, now));
    }

    #[test]
    fn no_calendar_condition_has_no_boundary() {
        assert_eq!(
            next_calendar_boundary(
                &Conditions::default(),
                chrono_tz::UTC,
                utc("2026-01-01T00:00:00Z")
            ),
            None
        );
    }

    #[test]
    fn season_boundary_is_the_next_local_midnight_in_auckland() {
        let c = Conditions {
            season: Some(Season {
                from: (11, 15),
                to: (1, 10),
            }),
            ..Conditions::default()
        };
        // Auckland is UTC+13 in January (NZDT): local midnight is 11:00 UTC.
        let next = next_calendar_boundary(
            &c,
            chrono_tz::Pacific::Auckland,
            utc("2027-01-10T05:00:00Z"),
        );
        assert_eq!(next, Some(utc("2027-01-10T11:00:00Z")));
        // In July (NZST, UTC+12) it is 12:00 UTC.
        let next = next_calendar_boundary(
            &c,
            chrono_tz::Pacific::Auckland,
            utc("2026-07-01T12:00:00Z"),
        );
        assert_eq!(next, Some(utc("2026-07-02T12:00:00Z")));
    }

    #[test]
    fn hours_boundary_in_a_berlin_dst_gap_is_the_first_instant_after() {
        // 2026-03-29: Berlin clocks jump from 02:00 CET to 03:00 CEST (01:00 UTC).
        let c = Conditions {
            hours: Some(hours("02:30", "06:00")),
            ..Conditions::default()
        };
        let next =
            next_calendar_boundary(&c, chrono_tz::Europe::Berlin, utc("2026-03-28T23:00:00Z"));
        assert_eq!(next, Some(utc("2026-03-29T01:00:00Z")));
        // At 03:00 CEST the range 02:30-06:00 holds.
        assert!(calendar_holds(
            &c,
            chrono_tz::Europe::Berlin,
            utc("2026-03-29T01:00:00Z")
        ));
        assert!(!calendar_holds(
            &c,
            chrono_tz::Europe::Berlin,
            utc("2026-03-29T00:59:00Z")
        ));
    }

    #[test]
    fn hours_boundary_in_a_new_york_overlap_counts_both_instants() {
        // 2026-11-01: New York clocks go back from 02:00 EDT to 01:00 EST; 01:30 happens twice.
        let c = Conditions {
            hours: Some(hours("01:30", "05:00")),
            ..Conditions::default()
        };
        let first = utc("2026-11-01T05:30:00Z"); // 01:30 EDT
        let second = utc("2026-11-01T06:30:00Z"); // 01:30 EST
        let tz = chrono_tz::America::New_York;
        assert_eq!(
            next_calendar_boundary(&c, tz, utc("2026-11-01T04:00:00Z")),
            Some(first)
        );
        assert_eq!(next_calendar_boundary(&c, tz, first), Some(second));
        // Then the end, 05:00 EST.
        assert_eq!(
            next_calendar_boundary(&c, tz, second),
            Some(utc("2026-11-01T10:00:00Z"))
        );
    }

    #[test]
    fn weekday_boundary_on_a_new_york_dst_day_is_local_midnight() {
        let c = Conditions {
            weekdays: Some(vec![Weekday::Sun]),
            ..Conditions::default()
        };
        // Saturday 2026-03-07 noon EST; the next midnight (Sunday, 2026-03-08) is still EST (05:00 UTC).
        let tz = chrono_tz::America::New_York;
        assert_eq!(
            next_calendar_boundary(&c, tz, utc("2026-03-07T17:00:00Z")),
            Some(utc("2026-03-08T05:00:00Z"))
        );
        // Sunday noon EDT; the next midnight is 04:00 UTC.
        assert_eq!(
            next_calendar_boundary(&c, tz, utc("2026-03-08T16:00:00Z")),
            Some(utc("2026-03-09T04:00:00Z"))
        );
    }

    #[test]
    fn between_boundaries_are_start_then_end_then_none() {
        let c = Conditions {
            between: Some(Between {
                start: "2026-12-20T00:00:00".parse().unwrap(),
                end: "2026-12-27T00:00:00".parse().unwrap(),
            }),
            ..Conditions::default()
        };
        let tz = chrono_tz::UTC;
        assert_eq!(
            next_calendar_boundary(&c, tz, utc("2026-12-01T00:00:00Z")),
            Some(utc("2026-12-20T00:00:00Z"))
        );
        assert_eq!(
            next_calendar_boundary(&c, tz, utc("2026-12-20T00:00:00Z")),
            Some(utc("2026-12-27T00:00:00Z"))
        );
        assert_eq!(
            next_calendar_boundary(&c, tz, utc("2026-12-27T00:00:00Z")),
            None
        );
    }
}
