//! Time arguments of the command line (`--since`, `--until`, `exempt --until`):
//! RFC 3339, a date, a local date-time without zone (read as UTC), or a
//! duration from now (`7d`, `12h`, `30m`: back for `--since`/`--until`,
//! forward for a deadline).

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};

/// Parses a point in time. A bare date is that day's UTC midnight.
pub fn parse_time(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    parse(s, now, false, false)
}

/// Parses the end of a range. Like [`parse_time`], except that a bare date
/// means the end of that day (the next UTC midnight, exclusive), so that
/// `--until 2026-11-30` includes the 30th.
pub fn parse_until(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    parse(s, now, true, false)
}

/// Parses a deadline in the future (`exempt add --until`): a bare date is
/// the end of that day, as for [`parse_until`], and a duration counts
/// forward from now (`7d` = a week from now).
pub fn parse_deadline(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    parse(s, now, true, true)
}

fn parse(
    s: &str,
    now: DateTime<Utc>,
    date_is_end: bool,
    forward: bool,
) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let day = if date_is_end {
            d.succ_opt().unwrap_or(d)
        } else {
            d
        };
        return Ok(day.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(back) = humantime::parse_duration(s) {
        let too_far = || format!("`{s}` is too far away");
        let span = Duration::from_std(back).map_err(|_| too_far())?;
        let moved = if forward {
            now.checked_add_signed(span)
        } else {
            now.checked_sub_signed(span)
        };
        return moved.ok_or_else(too_far);
    }
    Err(format!(
        "`{s}` is not a time: use RFC 3339 (2026-11-27T10:00:00Z), a date (2026-11-27), \
         a UTC date-time (2026-11-27T10:00) or a duration from now (7d, 12h, 30m)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const NOW: &str = "2026-11-27T10:00:00Z";

    #[test]
    fn rfc3339_with_offset_is_converted_to_utc() {
        assert_eq!(
            parse_time("2026-11-27T12:30:00+02:00", at(NOW)).unwrap(),
            at("2026-11-27T10:30:00Z")
        );
    }

    #[test]
    fn bare_date_is_midnight_and_the_end_of_day_for_until() {
        assert_eq!(
            parse_time("2026-12-24", at(NOW)).unwrap(),
            at("2026-12-24T00:00:00Z")
        );
        assert_eq!(
            parse_until("2026-11-30", at(NOW)).unwrap(),
            at("2026-12-01T00:00:00Z")
        );
    }

    #[test]
    fn local_date_time_without_zone_is_utc() {
        assert_eq!(
            parse_time("2026-12-24T10:00", at(NOW)).unwrap(),
            at("2026-12-24T10:00:00Z")
        );
        assert_eq!(
            parse_until("2026-12-24T10:00:30", at(NOW)).unwrap(),
            at("2026-12-24T10:00:30Z")
        );
    }

    #[test]
    fn durations_count_back_from_now() {
        assert_eq!(
            parse_time("7d", at(NOW)).unwrap(),
            at("2026-11-20T10:00:00Z")
        );
        assert_eq!(
            parse_time("12h", at(NOW)).unwrap(),
            at("2026-11-26T22:00:00Z")
        );
        assert_eq!(
            parse_until("30m", at(NOW)).unwrap(),
            at("2026-11-27T09:30:00Z")
        );
    }

    #[test]
    fn deadlines_count_forward_and_dates_end_with_the_day() {
        assert_eq!(
            parse_deadline("7d", at(NOW)).unwrap(),
            at("2026-12-04T10:00:00Z")
        );
        assert_eq!(
            parse_deadline("2026-12-24", at(NOW)).unwrap(),
            at("2026-12-25T00:00:00Z")
        );
        assert_eq!(
            parse_deadline("2026-12-24T18:00:00+01:00", at(NOW)).unwrap(),
            at("2026-12-24T17:00:00Z")
        );
    }

    #[test]
    fn nonsense_is_refused_with_the_accepted_forms() {
        let err = parse_time("next tuesday", at(NOW)).unwrap_err();
        assert!(err.contains("`next tuesday` is not a time"), "{err}");
        assert!(err.contains("7d"), "{err}");
        assert!(parse_time("2026-02-30", at(NOW)).is_err());
    }
}
