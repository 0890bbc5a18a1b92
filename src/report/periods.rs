//! Periods in which keywarden held a field of a key at the value it set:
//! opened by an applied assert/reassert, closed by the next applied
//! release, drift or revert of the field, or by the key's deletion. A
//! period still open is counted up to the end of the report.

use crate::domain::{Field, FieldValue};
use crate::engine::ChangeKind;
use crate::store::ChangeRow;
use crate::store::report::Bucket;
use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, Utc};
use std::collections::BTreeMap;

/// One period: key, field, the rule that set it, from `start` until `end`
/// (`None` = still held).
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    /// The key.
    pub key_hash: String,
    /// Its name when the period opened.
    pub key_name: String,
    /// The rule whose change opened it.
    pub rule: String,
    /// The field held.
    pub field: Field,
    /// When it opened.
    pub start: DateTime<Utc>,
    /// When it closed; `None` while it is still held.
    pub end: Option<DateTime<Utc>>,
}

impl Period {
    /// The part of the period inside `[since, until)`, if any.
    pub fn clip(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let start = self.start.max(since);
        let end = self.end.unwrap_or(until).min(until);
        (start < end).then_some((start, end))
    }
}

/// Opens and closes periods per key and field, from changes in key and time order.
#[derive(Debug, Default)]
struct Tracker {
    open: BTreeMap<(String, Field), Period>,
    closed: Vec<Period>,
}

impl Tracker {
    fn open(
        &mut self,
        key_hash: &str,
        key_name: &str,
        rule: &str,
        field: Field,
        at: DateTime<Utc>,
    ) {
        self.open
            .entry((key_hash.to_string(), field))
            .or_insert_with(|| Period {
                key_hash: key_hash.to_string(),
                key_name: key_name.to_string(),
                rule: rule.to_string(),
                field,
                start: at,
                end: None,
            });
    }

    fn close(&mut self, key_hash: &str, field: Field, at: DateTime<Utc>) {
        if let Some(mut period) = self.open.remove(&(key_hash.to_string(), field)) {
            period.end = Some(at);
            self.closed.push(period);
        }
    }

    fn finish(mut self) -> Vec<Period> {
        self.closed.extend(self.open.into_values());
        self.closed
            .sort_by(|a, b| (&a.key_hash, a.start, a.field).cmp(&(&b.key_hash, b.start, b.field)));
        self.closed
    }
}

/// The periods of every field keywarden held (disabled, or a setting such
/// as a seasonal limit), from applied changes in time order.
pub fn held_periods<'a>(changes: impl IntoIterator<Item = &'a ChangeRow>) -> Vec<Period> {
    let mut tracker = Tracker::default();
    for c in changes {
        match c.kind {
            ChangeKind::Assert | ChangeKind::Reassert => {
                for (field, fc) in &c.fields {
                    if *field != Field::Disabled || fc.to == FieldValue::Disabled(true) {
                        tracker.open(&c.key_hash, &c.key_name, &c.rule, *field, c.at);
                    }
                }
            }
            ChangeKind::Release | ChangeKind::Drift | ChangeKind::Revert => {
                for field in c.fields.keys() {
                    tracker.close(&c.key_hash, *field, c.at);
                }
            }
            ChangeKind::Deleted => {
                for field in Field::ALL {
                    tracker.close(&c.key_hash, field, c.at);
                }
            }
        }
    }
    tracker.finish()
}

/// The time bucket holding `at`: its start, its end and its group id (as
/// [`Bucket`]'s SQL names it). `None` for the key, rule and total buckets.
pub(super) fn time_bucket(
    at: DateTime<Utc>,
    bucket: Bucket,
) -> Option<(DateTime<Utc>, DateTime<Utc>, String)> {
    let day = at.date_naive();
    let (start, end): (NaiveDate, NaiveDate) = match bucket {
        Bucket::Day => (day, day + Duration::days(1)),
        Bucket::Week => {
            let monday = day - Duration::days(i64::from(day.weekday().num_days_from_monday()));
            (monday, monday + Duration::days(7))
        }
        Bucket::Month => {
            let first = day.with_day(1)?;
            (first, first + Months::new(1))
        }
        Bucket::Key | Bucket::Rule | Bucket::All => return None,
    };
    let id = match bucket {
        Bucket::Month => start.format("%Y-%m").to_string(),
        _ => start.format("%Y-%m-%d").to_string(),
    };
    Some((
        start.and_time(chrono::NaiveTime::MIN).and_utc(),
        end.and_time(chrono::NaiveTime::MIN).and_utc(),
        id,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn open_periods_count_up_to_until_and_are_clipped_to_since() {
        let p = Period {
            key_hash: "a".into(),
            key_name: "a-name".into(),
            rule: "r".into(),
            field: Field::Disabled,
            start: t("2026-11-30T22:00:00Z"),
            end: None,
        };
        let since = t("2026-12-01T00:00:00Z");
        let until = t("2026-12-01T01:30:00Z");
        let (s, e) = p.clip(since, until).unwrap();
        assert_eq!((e - s).num_minutes(), 90);
        assert!(
            p.clip(t("2026-11-01T00:00:00Z"), t("2026-11-30T00:00:00Z"))
                .is_none()
        );
    }

    #[test]
    fn time_buckets_are_days_iso_weeks_and_months() {
        let at = t("2026-12-02T15:00:00Z"); // a Wednesday
        let id = |bucket| time_bucket(at, bucket);
        assert_eq!(
            id(Bucket::Week),
            Some((
                t("2026-11-30T00:00:00Z"),
                t("2026-12-07T00:00:00Z"),
                "2026-11-30".into()
            ))
        );
        assert_eq!(id(Bucket::Month).unwrap().2, "2026-12");
        assert_eq!(id(Bucket::Day).unwrap().1, t("2026-12-03T00:00:00Z"));
        assert_eq!(id(Bucket::Rule), None);
    }
}
