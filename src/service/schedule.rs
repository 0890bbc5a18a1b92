//! When each rule is due: its cron schedule in its timezone (run by
//! tokio-cron-scheduler), and the next calendar boundary of its conditions
//! (computed here, purely, so that it can be tested with any clock).

use crate::rules::Rule;
use crate::rules::calendar::next_calendar_boundary;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::collections::BTreeSet;
use tokio::sync::mpsc::UnboundedSender;
use tokio_cron_scheduler::{Job, JobScheduler};

/// The schedule of `rule`: its own, else `[daemon].schedule`.
pub fn rule_schedule<'a>(rule: &'a Rule, default: &'a str) -> &'a str {
    rule.schedule.as_deref().unwrap_or(default)
}

/// The timezone of `rule`: its own, else `default` (an unknown name, which
/// validation refuses, falls back to `default` too).
pub fn rule_timezone(rule: &Rule, default: Tz) -> Tz {
    rule.timezone
        .as_deref()
        .and_then(|name| name.parse().ok())
        .unwrap_or(default)
}

/// A cron expression as tokio-cron-scheduler wants it (seconds first): a
/// 5-field expression runs at second 0.
pub fn with_seconds(expr: &str) -> String {
    if expr.split_whitespace().count() == 5 {
        format!("0 {}", expr.trim())
    } else {
        expr.trim().to_string()
    }
}

/// The next time after `now` at which `expr` fires in `tz`.
pub fn next_fire(expr: &str, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let cron = croner::Cron::new(expr)
        .with_seconds_optional()
        .parse()
        .ok()?;
    cron.find_next_occurrence(&now.with_timezone(&tz), false)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The next scheduled run of any enabled rule after `now`.
pub fn next_run(
    rules: &[Rule],
    default_schedule: &str,
    default_tz: Tz,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let cron = rules.iter().filter(|r| r.enabled).filter_map(|r| {
        next_fire(
            rule_schedule(r, default_schedule),
            rule_timezone(r, default_tz),
            now,
        )
    });
    cron.chain(next_wakeup(rules, default_tz, now).map(|(t, _)| t))
        .min()
}

/// The shortest interval between two runs of any enabled rule's schedule
/// (`[daemon].schedule` when there is none), for `/healthz`.
pub fn shortest_interval(
    rules: &[Rule],
    default_schedule: &str,
    default_tz: Tz,
    now: DateTime<Utc>,
) -> Option<chrono::Duration> {
    let interval = |expr: &str, tz: Tz| {
        let first = next_fire(expr, tz, now)?;
        Some(next_fire(expr, tz, first)? - first)
    };
    let enabled: Vec<&Rule> = rules.iter().filter(|r| r.enabled).collect();
    if enabled.is_empty() {
        return interval(default_schedule, default_tz);
    }
    enabled
        .iter()
        .filter_map(|r| {
            interval(
                rule_schedule(r, default_schedule),
                rule_timezone(r, default_tz),
            )
        })
        .min()
}

/// The next calendar boundary after `now` of any enabled rule with calendar
/// conditions, and the rules whose boundary it is: at that instant those
/// rules are due, whatever their schedule.
pub fn next_wakeup(
    rules: &[Rule],
    default_tz: Tz,
    now: DateTime<Utc>,
) -> Option<(DateTime<Utc>, BTreeSet<String>)> {
    let mut best: Option<(DateTime<Utc>, BTreeSet<String>)> = None;
    for rule in rules.iter().filter(|r| r.enabled && r.when.has_calendar()) {
        let Some(at) = next_calendar_boundary(&rule.when, rule_timezone(rule, default_tz), now)
        else {
            continue;
        };
        match &mut best {
            Some((t, names)) if *t == at => {
                names.insert(rule.name.clone());
            }
            Some((t, _)) if *t < at => {}
            _ => best = Some((at, BTreeSet::from([rule.name.clone()]))),
        }
    }
    best
}

/// The cron jobs of the enabled rules: each sends its rule's name into the
/// run loop's channel when it fires, and does nothing else.
pub struct Schedules {
    scheduler: JobScheduler,
}

impl Schedules {
    /// Schedules every enabled rule in its timezone; an expression the
    /// scheduler refuses is logged and skipped (validation refuses them first).
    pub async fn start(
        rules: &[Rule],
        default_schedule: &str,
        default_tz: Tz,
        due: UnboundedSender<String>,
    ) -> anyhow::Result<Schedules> {
        let scheduler = JobScheduler::new().await?;
        for rule in rules.iter().filter(|r| r.enabled) {
            let expr = with_seconds(rule_schedule(rule, default_schedule));
            let tz = rule_timezone(rule, default_tz);
            let name = rule.name.clone();
            let tx = due.clone();
            let job = Job::new_async_tz(expr.as_str(), tz, move |_, _| {
                let _ = tx.send(name.clone());
                Box::pin(async {})
            });
            match job {
                Ok(job) => {
                    scheduler.add(job).await?;
                }
                Err(e) => {
                    tracing::error!(rule = %rule.name, schedule = %expr, "cannot schedule the rule: {e}")
                }
            }
        }
        scheduler.start().await?;
        Ok(Schedules { scheduler })
    }

    /// Stops every job.
    pub async fn stop(mut self) {
        if let Err(e) = self.scheduler.shutdown().await {
            tracing::warn!("stopping the scheduler: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::calendar::calendar_holds;
    use crate::rules::parse_rules;

    fn rules(text: &str) -> Vec<Rule> {
        parse_rules("test.toml", text).unwrap().rules
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn five_field_crons_run_at_second_zero() {
        assert_eq!(with_seconds("*/5 * * * *"), "0 */5 * * * *");
        assert_eq!(with_seconds("*/1 * * * * *"), "*/1 * * * * *");
    }

    #[test]
    fn a_season_starting_tomorrow_in_auckland_wakes_the_service_at_local_midnight() {
        // 2026-11-14 23:59:30 in Auckland (NZDT, UTC+13) is 10:59:30 UTC.
        let now = utc("2026-11-14T10:59:30Z");
        let rules = rules(
            r#"
[[rule]]
name = "holiday"
keys = "all"
schedule = "0 6 * * *"
timezone = "Pacific/Auckland"
[rule.when]
season = { from = "11-15", to = "01-10" }
[rule.set]
limit_reset = "daily"

[[rule]]
name = "plain"
keys = "all"
[rule.set]
disabled = false
"#,
        );
        let (at, due) = next_wakeup(&rules, Tz::UTC, now).unwrap();
        assert_eq!(at, utc("2026-11-14T11:00:00Z"));
        assert_eq!(due, BTreeSet::from(["holiday".to_string()]));
        let tz: Tz = "Pacific/Auckland".parse().unwrap();
        let when = &rules[0].when;
        assert!(!calendar_holds(when, tz, now));
        assert!(calendar_holds(when, tz, at));
        // The 06:00 schedule alone would come 6 hours late.
        assert_eq!(
            next_fire("0 6 * * *", tz, now),
            Some(utc("2026-11-14T17:00:00Z"))
        );
        assert_eq!(
            next_run(&rules, "*/5 * * * *", Tz::UTC, now),
            Some(utc("2026-11-14T11:00:00Z"))
        );
    }

    #[test]
    fn the_shortest_schedule_sets_the_health_interval() {
        let rules = rules(
            r#"
[[rule]]
name = "fast"
keys = "all"
schedule = "*/10 * * * * *"
[rule.set]
disabled = true
[[rule]]
name = "slow"
keys = "all"
[rule.set]
limit = 1.0
"#,
        );
        let now = utc("2026-11-14T10:59:30Z");
        assert_eq!(
            shortest_interval(&rules, "*/5 * * * *", Tz::UTC, now),
            Some(chrono::Duration::seconds(10))
        );
        assert_eq!(
            shortest_interval(&[], "*/5 * * * *", Tz::UTC, now),
            Some(chrono::Duration::minutes(5))
        );
    }
}
