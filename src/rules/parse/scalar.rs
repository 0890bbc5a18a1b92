//! Parsers of the scalar forms of a rules file: `MM-DD`, local date-times,
//! `HH:MM-HH:MM` and weekday names. `Err` is the message of the diagnostic.

use crate::rules::model::Hours;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Weekday};

/// `MM-DD` as (month, day); 02-29 is a date.
pub(super) fn parse_month_day(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("{s:?} is not a date (MM-DD)");
    let (m, d) = s.split_once('-').ok_or_else(bad)?;
    if m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let (m, d): (u32, u32) = (m.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?);
    // 2000 is a leap year: 02-29 is a date.
    NaiveDate::from_ymd_opt(2000, m, d).ok_or_else(bad)?;
    Ok((m, d))
}

/// A TOML date-time without offset, as a local date-time.
pub(super) fn local_datetime(d: &toml_edit::Datetime) -> Result<NaiveDateTime, String> {
    if d.offset.is_some() {
        return Err(format!(
            "{d} has a UTC offset: give a local date-time (the rule's timezone applies)"
        ));
    }
    parse_local_datetime(&d.to_string())
}

/// A local date-time written as a string (`2026-12-20T00:00:00`, `2026-12-20 00:00`, `2026-12-20`).
pub(super) fn parse_local_datetime(s: &str) -> Result<NaiveDateTime, String> {
    const FORMATS: [&str; 4] = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ];
    FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .or_else(|| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .map(|d| d.and_time(NaiveTime::MIN))
        })
        .ok_or_else(|| format!("{s:?} is not a local date-time (2026-12-20T00:00:00)"))
}

/// `HH:MM-HH:MM`.
pub(super) fn parse_hours(s: &str) -> Result<Hours, String> {
    let bad = || format!("{s:?} is not a time range \"HH:MM-HH:MM\"");
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let time = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M").map_err(|_| bad());
    Ok(Hours {
        start: time(a)?,
        end: time(b)?,
    })
}

/// A weekday name, short or long (`sat`, `Saturday`).
pub(super) fn parse_weekday(s: &str) -> Result<Weekday, String> {
    s.parse::<Weekday>()
        .map_err(|_| format!("{s:?} is not a weekday (mon, tue, wed, thu, fri, sat, sun)"))
}
