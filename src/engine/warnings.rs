//! Early warnings (SPEC §11): which `warn_before` horizons of a rule are
//! due, from the forecast rows of its groups or keys. Pure: the shell
//! records each at most once per horizon per window per key or group.

use super::evaluate::EPSILON;
use super::forecast::Status;
use super::outlook::{ForecastRow, Outlook};
use crate::domain::timestamp::rfc3339_minutes;
use crate::rules::model::{Rule, Scope};
use chrono::{DateTime, Duration, Utc};

/// A `budget_forecast` that is due: the crossing of a rule's group or key
/// comes within one of its `warn_before` horizons.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastWarning {
    /// The horizon, in seconds, as the rule gives it.
    pub horizon_secs: u64,
    /// When the window holding the forecast's instant started (the Unix
    /// epoch for `total`, which never resets): the warning is sent once
    /// per window.
    pub window_start: DateTime<Utc>,
    /// The figures: rule, group or key, budget, spend, rate, projection
    /// and crossing time.
    pub forecast: ForecastRow,
}

impl ForecastWarning {
    /// The horizon as a duration.
    pub fn horizon(&self) -> Duration {
        Duration::seconds(i64::try_from(self.horizon_secs).unwrap_or(i64::MAX / 1000))
    }

    /// What the warning says, for a person to act on: which budget (the
    /// group or key is named beside it), how much of it is spent, how fast
    /// (USD/h), when it is reached (and how long from `now` that is) and
    /// what the window's end will see.
    pub fn reason(&self, now: DateTime<Utc>) -> String {
        let f = &self.forecast;
        let who = match f.scope {
            Scope::Group => "group",
            Scope::Each => "key",
        };
        let budget = f.budget_usd.unwrap_or_default();
        let target = if (f.at_fraction - 1.0).abs() < EPSILON {
            "the budget".to_string()
        } else {
            format!(
                "{:.0}% of it ({:.2} USD)",
                f.at_fraction * 100.0,
                f.at_fraction * budget
            )
        };
        let when = match f.crossing_at {
            Some(at) => format!("{} (in {})", rfc3339_minutes(at), span(at - now)),
            None => "an unknown time".into(),
        };
        let mut text = format!(
            "{who} {} spend {:.2} of {budget:.2} USD at {:.2} USD/h reaches {target} at {when}",
            f.window,
            f.spend_usd.unwrap_or_default(),
            f.rate_usd_per_hour.unwrap_or_default(),
        );
        if let Some(projected) = f.projected_usd {
            text.push_str(&format!(
                "; {projected:.2} USD projected by the window's end"
            ));
        }
        text.push_str(&format!(" (warn_before {})", span(self.horizon())));
        text
    }
}

/// A lead time as people say it: `2d 5h`, `17h`, `17h 30m`, `45m`.
pub fn span(d: Duration) -> String {
    let minutes = d.num_minutes().max(0);
    let (days, hours, mins) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    let mins = if days > 0 { 0 } else { mins };
    let text: Vec<String> = [(days, "d"), (hours, "h"), (mins, "m")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if text.is_empty() {
        "0m".into()
    } else {
        text.join(" ")
    }
}

/// The warnings due in `outlook` for the `rules` that have `warn_before`
/// horizons: every horizon that a row heading over its budget before the
/// window ends (`will_cross`) crosses within. A row already over budget
/// (`crossed`) is the budget rule's and `warn_at`'s business, and one
/// whose rate is unknown warns of nothing.
pub fn forecast_warnings(rules: &[Rule], outlook: &Outlook) -> Vec<ForecastWarning> {
    let now = outlook.at;
    let mut due = Vec::new();
    for row in &outlook.forecasts {
        let Some(rule) = rules.iter().find(|r| r.name == row.rule) else {
            continue;
        };
        let Some(crossing) = row.crossing_at.filter(|_| row.status == Status::WillCross) else {
            continue;
        };
        let window_start = row
            .window
            .bounds(now)
            .map_or(DateTime::UNIX_EPOCH, |w| w.start);
        for (&horizon_secs, horizon) in rule.warn_before_secs.iter().zip(rule.warn_before()) {
            if crossing <= now + horizon {
                due.push(ForecastWarning {
                    horizon_secs,
                    window_start,
                    forecast: row.clone(),
                });
            }
        }
    }
    due
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Window;
    use crate::rules::parse::parse_rules;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn rule() -> Rule {
        let text = "[[rule]]\nname = \"team-a\"\nkeys = \"all\"\nwarn_before = [\"3d\", \"12h\"]\n\
                    when.budget = { usd = 50.0, window = \"monthly\", scope = \"group\" }\n\
                    set.disabled = true\n";
        parse_rules("r.toml", text).unwrap().rules.remove(0)
    }

    fn row(status: Status, crossing_at: Option<&str>) -> ForecastRow {
        ForecastRow {
            rule: "team-a".into(),
            scope: Scope::Group,
            key_hash: None,
            key_name: None,
            window: Window::Monthly,
            window_end: Some(t("2027-01-01T00:00:00Z")),
            budget_usd: Some(50.0),
            at_fraction: 1.0,
            spend_usd: Some(31.3),
            rate_usd_per_hour: Some(0.2),
            lookback_hours: 6.0,
            projected_usd: Some(100.0),
            crossing_at: crossing_at.map(t),
            status,
        }
    }

    fn horizons(rows: Vec<ForecastRow>) -> Vec<u64> {
        let outlook = Outlook {
            at: t("2026-12-16T16:00:00Z"),
            forecasts: rows,
        };
        forecast_warnings(&[rule()], &outlook)
            .iter()
            .map(|w| {
                assert_eq!(w.window_start, t("2026-12-01T00:00:00Z"));
                w.horizon_secs / 3600
            })
            .collect()
    }

    #[test]
    fn each_horizon_the_crossing_comes_within_is_due() {
        let four_days = row(Status::WillCross, Some("2026-12-20T16:00:00Z"));
        assert_eq!(horizons(vec![four_days]), Vec::<u64>::new());
        let two_days = row(Status::WillCross, Some("2026-12-18T16:00:00Z"));
        assert_eq!(horizons(vec![two_days]), vec![72]);
        let ten_hours = row(Status::WillCross, Some("2026-12-17T02:00:00Z"));
        assert_eq!(horizons(vec![ten_hours]), vec![72, 12]);
    }

    #[test]
    fn crossed_unknown_and_after_the_window_warn_of_nothing() {
        let rows = vec![
            row(Status::Crossed, Some("2026-12-16T16:00:00Z")),
            row(Status::Unknown, None),
            row(Status::Ok, Some("2027-01-02T00:00:00Z")),
        ];
        assert_eq!(horizons(rows), Vec::<u64>::new());
    }

    #[test]
    fn the_reason_says_who_how_much_how_fast_and_when() {
        let mut forecast = row(Status::WillCross, Some("2026-12-18T21:30:00Z"));
        forecast.rate_usd_per_hour = Some(0.35);
        forecast.projected_usd = Some(89.95);
        let warning = ForecastWarning {
            horizon_secs: 3 * 24 * 3600,
            window_start: t("2026-12-01T00:00:00Z"),
            forecast,
        };
        assert_eq!(
            warning.reason(t("2026-12-16T16:00:00Z")),
            "group monthly spend 31.30 of 50.00 USD at 0.35 USD/h reaches the budget at \
             2026-12-18T21:30Z (in 2d 5h); 89.95 USD projected by the window's end (warn_before 3d)"
        );
        assert_eq!(span(Duration::minutes(17 * 60 + 30)), "17h 30m");
        assert_eq!(span(Duration::seconds(20)), "0m");
    }
}
