//! The simulated account's usage counters, per UTC window (days, weeks from
//! Monday 00:00, months from the 1st; their bounds are
//! [`crate::domain::Window::bounds`]), which roll over lazily when the clock
//! crosses a boundary (O(1) per key: nothing is swept when time moves).

use crate::domain::LimitReset;
use chrono::{DateTime, Datelike, Utc};

/// The numbered UTC day, week and month an instant falls in. Two instants
/// are in the same window exactly when they have the same number for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Periods {
    /// Days since 1970-01-01.
    day: i64,
    /// Monday-based weeks since Monday 1969-12-29.
    week: i64,
    /// `year * 12 + month0`.
    month: i64,
}

impl Periods {
    /// The periods that hold `t`.
    pub fn at(t: DateTime<Utc>) -> Periods {
        let day = t.timestamp().div_euclid(86_400);
        Periods {
            day,
            // 1970-01-01 was a Thursday, three days after a Monday.
            week: (day + 3).div_euclid(7),
            month: i64::from(t.year()) * 12 + i64::from(t.month0()),
        }
    }
}

/// Spend of one kind (credits or BYOK) of one key: lifetime and per window.
/// Window figures are those of the periods last written; reading them at a
/// later period gives zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UsageCounter {
    total: f64,
    daily: f64,
    weekly: f64,
    monthly: f64,
    written: Periods,
}

impl UsageCounter {
    /// A counter holding these figures for the windows of `now`.
    pub fn new(total: f64, daily: f64, weekly: f64, monthly: f64, now: DateTime<Utc>) -> Self {
        UsageCounter {
            total,
            daily,
            weekly,
            monthly,
            written: Periods::at(now),
        }
    }

    /// Lifetime spend.
    pub fn total(&self) -> f64 {
        self.total
    }

    /// Spend in the UTC day of `now`.
    pub fn daily(&self, now: Periods) -> f64 {
        if self.written.day == now.day {
            self.daily
        } else {
            0.0
        }
    }

    /// Spend in the Monday-based UTC week of `now`.
    pub fn weekly(&self, now: Periods) -> f64 {
        if self.written.week == now.week {
            self.weekly
        } else {
            0.0
        }
    }

    /// Spend in the UTC month of `now`.
    pub fn monthly(&self, now: Periods) -> f64 {
        if self.written.month == now.month {
            self.monthly
        } else {
            0.0
        }
    }

    /// Spend in the window a limit with this reset counts: the day, week or
    /// month of `now`, or the lifetime when the limit never resets.
    pub fn in_window(&self, reset: Option<LimitReset>, now: Periods) -> f64 {
        match reset {
            Some(LimitReset::Daily) => self.daily(now),
            Some(LimitReset::Weekly) => self.weekly(now),
            Some(LimitReset::Monthly) => self.monthly(now),
            None => self.total,
        }
    }

    /// Adds `usd` at `now`, first rolling over every window `now` has left.
    pub fn add(&mut self, usd: f64, now: Periods) {
        *self = UsageCounter {
            total: self.total + usd,
            daily: self.daily(now) + usd,
            weekly: self.weekly(now) + usd,
            monthly: self.monthly(now) + usd,
            written: now,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn weeks_start_on_monday_midnight_utc() {
        // 2026-11-29 is a Sunday, 2026-11-30 a Monday.
        let sat = Periods::at(t("2026-11-28T12:00:00Z"));
        let sun = Periods::at(t("2026-11-29T23:59:59Z"));
        let mon = Periods::at(t("2026-11-30T00:00:00Z"));
        assert_eq!(sat.week, sun.week);
        assert_ne!(sun.week, mon.week);
        assert_eq!(
            LimitReset::Weekly.next_reset(t("2026-11-29T23:59:59Z")),
            t("2026-11-30T00:00:00Z")
        );
    }

    #[test]
    fn counter_rolls_over_only_the_windows_left() {
        let mut c = UsageCounter::new(0.0, 0.0, 0.0, 0.0, t("2026-11-27T10:00:00Z"));
        c.add(3.0, Periods::at(t("2026-11-27T10:00:00Z")));
        let next_day = Periods::at(t("2026-11-28T00:00:00Z"));
        assert_eq!(c.daily(next_day), 0.0);
        assert_eq!(c.weekly(next_day), 3.0);
        c.add(2.0, next_day);
        assert_eq!(
            (c.total(), c.daily(next_day), c.monthly(next_day)),
            (5.0, 2.0, 5.0)
        );
        let december = Periods::at(t("2026-12-01T00:00:00Z"));
        assert_eq!((c.monthly(december), c.weekly(december)), (0.0, 0.0));
        let mut monday = UsageCounter::new(0.0, 0.0, 0.0, 0.0, t("2026-11-30T09:00:00Z"));
        monday.add(1.0, Periods::at(t("2026-11-30T09:00:00Z")));
        assert_eq!(
            (monday.monthly(december), monday.weekly(december)),
            (0.0, 1.0)
        );
        assert_eq!(c.in_window(None, december), 5.0);
    }
}
