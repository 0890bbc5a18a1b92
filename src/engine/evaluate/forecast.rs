//! The `forecast` condition (SPEC §11) for one rule's keys: the burn rate
//! of each key (or the sum over its group), the projection of its spend
//! against the budget, and the verdict with a reason a person can act on.

use super::{Amounts, BudgetView, EPSILON, Truth, Verdict};
use crate::domain::Key;
use crate::domain::timestamp::rfc3339_minutes;
use crate::engine::forecast::{
    Pace, Projection, Reading, Status, WeeklyProfile, burn_rate, project_at,
};
use crate::engine::inputs::{Series, UsageReading};
use crate::rules::model::{Budget, Forecast, Profile};
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;

/// The readings of `key`'s lifetime usage (plus BYOK usage when asked):
/// its snapshots in `series` and its reading now. A snapshot whose counter
/// is unknown is left out.
pub fn readings_of(
    key: &Key,
    series: &Series,
    include_byok: bool,
    now: DateTime<Utc>,
) -> Vec<Reading> {
    let now_reading = UsageReading {
        at: now,
        usage: key.usage,
        byok_usage: key.byok_usage,
    };
    series
        .get(&key.hash)
        .into_iter()
        .flatten()
        .filter(|r| r.at < now)
        .chain(std::iter::once(&now_reading))
        .filter_map(|r| {
            let usd = if include_byok {
                r.usage? + r.byok_usage?
            } else {
                r.usage?
            };
            Some(Reading { at: r.at, usd })
        })
        .collect()
}

/// The burn rate of `key` over `lookback`, or why it is unknown. A key
/// created inside the lookback is judged on its whole life instead: its
/// readings cannot cover more, and a group must not stay unknown because
/// one of its keys is new.
pub fn key_rate(
    key: &Key,
    series: &Series,
    include_byok: bool,
    lookback: Duration,
    now: DateTime<Utc>,
) -> Result<f64, String> {
    let life = key
        .created_at
        .as_deref()
        .and_then(|c| c.parse::<DateTime<Utc>>().ok())
        .map(|created| now - created)
        .filter(|life| *life > Duration::zero() && *life < lookback);
    let span = life.unwrap_or(lookback);
    burn_rate(&readings_of(key, series, include_byok, now), now, span)
        .map_err(|why| format!("key {}: {why}", key.name))
}

/// The weekly profile of `members` (one key, or a group's keys: the sum
/// of theirs) for the `lookback` before `now`; `None` for a flat profile,
/// or when one of them has less than a week of readings before the lookback.
pub fn members_profile<'k>(
    profile: Profile,
    members: impl IntoIterator<Item = &'k Key>,
    series: &Series,
    include_byok: bool,
    lookback: Duration,
    now: DateTime<Utc>,
) -> Option<WeeklyProfile> {
    match profile {
        Profile::Flat => None,
        Profile::Weekly => WeeklyProfile::sum(members.into_iter().map(|key| {
            WeeklyProfile::of(&readings_of(key, series, include_byok, now), now, lookback)
        })),
    }
}

/// A duration as reasons write it (`6h`, `1day 2h`), to the minute.
fn short(d: Duration) -> String {
    let minutes = u64::try_from(d.num_minutes()).unwrap_or(0);
    humantime::format_duration(std::time::Duration::from_secs(minutes * 60)).to_string()
}

/// A rule's forecast condition, prepared once per run.
#[derive(Debug, Clone)]
pub(super) struct ForecastView {
    /// The spend side: budget amount, threshold and the group's spend.
    spend: BudgetView,
    lookback: Duration,
    within: Option<Duration>,
    now: DateTime<Utc>,
    /// The end of the window holding `now`; `None` for `total`.
    window_end: Option<DateTime<Utc>>,
    /// Each selected key's rate (by position in the keys), or why it is unknown.
    rates: HashMap<usize, Result<f64, String>>,
    /// Scope `group`: the sum of the keys' rates, or why it is unknown.
    group_rate: Option<Result<f64, String>>,
    /// The profile the rule asks for.
    profile: Profile,
    /// Scope `each`: the weekly profile of each selected key that has one
    /// (none when flat or when the snapshots cover less than a week).
    shapes: HashMap<usize, WeeklyProfile>,
    /// Scope `group`: the group's weekly profile, when it has one.
    group_shape: Option<WeeklyProfile>,
}

impl ForecastView {
    /// Prepares `forecast` for the keys at `selected`.
    pub(super) fn new(
        forecast: &Forecast,
        amounts: &Amounts,
        selected: &[usize],
        keys: &[Key],
        series: &Series,
        now: DateTime<Utc>,
    ) -> ForecastView {
        let budget: &Budget = &forecast.budget;
        let spend = BudgetView::new(budget, amounts, selected, keys, std::iter::empty());
        let lookback = forecast.lookback();
        let rates: HashMap<usize, Result<f64, String>> = selected
            .iter()
            .map(|&i| {
                let rate = key_rate(&keys[i], series, budget.include_byok, lookback, now);
                (i, rate)
            })
            .collect();
        let group_rate = spend.group.is_some().then(|| {
            selected
                .iter()
                .map(|i| rates[i].clone())
                .sum::<Result<f64, String>>()
                .map_err(|why| format!("group burn rate unknown: {why}"))
        });
        let profile_of = |members: &[usize]| {
            let members = members.iter().map(|&i| &keys[i]);
            members_profile(
                forecast.profile,
                members,
                series,
                budget.include_byok,
                lookback,
                now,
            )
        };
        let group_shape = group_rate.as_ref().and_then(|_| profile_of(selected));
        let shapes: HashMap<usize, WeeklyProfile> = match group_rate {
            Some(_) => HashMap::new(),
            None => selected
                .iter()
                .filter_map(|&i| profile_of(&[i]).map(|p| (i, p)))
                .collect(),
        };
        ForecastView {
            spend,
            lookback,
            within: forecast.within(),
            now,
            window_end: budget.window.bounds(now).map(|b| b.end),
            rates,
            group_rate,
            profile: forecast.profile,
            shapes,
            group_shape,
        }
    }

    /// Whether the forecast is the group's (the same for every key).
    pub(super) fn is_group(&self) -> bool {
        self.group_rate.is_some()
    }

    /// The rate `keys[i]` is judged on: its own, or its group's.
    fn rate(&self, i: usize) -> Result<f64, String> {
        match &self.group_rate {
            Some(g) => g.clone(),
            None => self.rates[&i].clone(),
        }
    }

    /// The weekly profile `keys[i]` is projected with: its own, or its
    /// group's; `None` when flat.
    fn shape(&self, i: usize) -> Option<WeeklyProfile> {
        match self.group_rate {
            Some(_) => self.group_shape.clone(),
            None => self.shapes.get(&i).cloned(),
        }
    }

    /// The projection for `keys[i]` (its own, or its group's), or the
    /// verdict saying why there is none.
    fn projection(&self, keys: &[Key], i: usize) -> Result<(Projection, f64), Verdict> {
        if let Err(why) = &self.spend.usd {
            return Err(Verdict::Unknown(why.clone()));
        }
        let Some(spent) = self.spend.spent(&keys[i]) else {
            return Err(self.spend.verdict(&keys[i]));
        };
        let rate = self.rate(i).map_err(Verdict::Unknown)?;
        let pace = Pace::new(rate, self.shape(i));
        let p = project_at(
            spent,
            Some(&pace),
            self.spend.threshold - EPSILON,
            self.now,
            self.window_end,
        );
        Ok((p, rate))
    }

    /// Whether the condition holds for `keys[i]`.
    pub(super) fn truth(&self, keys: &[Key], i: usize) -> Truth {
        match self.projection(keys, i) {
            Ok((p, _)) if p.holds(self.now, self.within) => Truth::Holds,
            Ok(_) => Truth::DoesNotHold,
            Err(_) => Truth::Unknown,
        }
    }

    /// The verdict for `keys[i]` with the figures that decided it.
    pub(super) fn verdict(&self, keys: &[Key], i: usize) -> Verdict {
        let (p, rate) = match self.projection(keys, i) {
            Ok(found) => found,
            Err(verdict) => return verdict,
        };
        let holds = p.holds(self.now, self.within);
        let what = if self.group_rate.is_some() {
            "group"
        } else {
            "key"
        };
        let text = format!(
            "{what} {} spend {:.2} USD at {rate:.2} USD/h over {}{} {}",
            self.spend.window,
            p.spend_usd,
            short(self.lookback),
            self.shaped(i),
            self.crossing(&p, holds)
        );
        if holds {
            Verdict::Holds(text)
        } else {
            Verdict::DoesNotHold(text)
        }
    }

    /// How the hours ahead are shaped, as the reason says it after the rate.
    fn shaped(&self, i: usize) -> &'static str {
        match (self.profile, self.shape(i)) {
            (Profile::Flat, _) => "",
            (Profile::Weekly, Some(_)) => " shaped like the week before",
            (Profile::Weekly, None) => {
                " (flat: less than a week of snapshots for the weekly profile)"
            }
        }
    }

    /// What the projection says of the budget: reached, reached when, or never.
    fn crossing(&self, p: &Projection, holds: bool) -> String {
        let usd = self.spend.usd.as_ref().copied().unwrap_or_default();
        let target = if (self.spend.threshold - usd).abs() < EPSILON {
            format!("the {usd:.2} USD budget")
        } else {
            format!(
                "{:.0}% of the {usd:.2} USD budget ({:.2} USD)",
                self.spend.threshold / usd * 100.0,
                self.spend.threshold
            )
        };
        let Some(at) = p.crossing_at else {
            return format!("does not reach {target} at this rate");
        };
        if p.status == Status::Crossed {
            return format!("has reached {target}");
        }
        let when = format!(
            "reaches {target} at {} (in {})",
            rfc3339_minutes(at),
            short(at - self.now)
        );
        let within = self.within.map(short).unwrap_or_default();
        match (holds, self.window_end) {
            (true, Some(_)) => format!("{when}, before the window ends"),
            (true, None) => format!("{when}, within {within}"),
            (false, Some(end)) if at >= end => {
                format!("{when}, after the window ends at {}", rfc3339_minutes(end))
            }
            (false, _) => format!("{when}, later than within {within}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{CompiledRule, Observed, SharedHashes, Truth, Verdict, evaluate};
    use crate::domain::Key;
    use crate::engine::inputs::{Series, UsageReading};
    use crate::rules::model::Rule;
    use crate::rules::parse::parse_rules;
    use chrono::{DateTime, Duration, Utc};

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn key(name: &str, usage: f64, monthly: Option<f64>) -> Key {
        serde_json::from_value(serde_json::json!({
            "hash": format!("h-{name}"), "name": name, "label": "sk-or-v1-x", "disabled": false,
            "limit": 100.0, "limit_remaining": 100.0, "limit_reset": "monthly",
            "include_byok_in_limit": false, "usage": usage, "usage_daily": 0.0,
            "usage_weekly": 0.0, "usage_monthly": monthly, "byok_usage": 10.0,
            "byok_usage_daily": 0.0, "byok_usage_weekly": 0.0, "byok_usage_monthly": 10.0,
        }))
        .unwrap()
    }

    fn forecast_rule(forecast: &str) -> Rule {
        let text = format!(
            "[[rule]]\nname = \"f\"\nkeys = \"all\"\nwhen.forecast = {forecast}\nset.limit = 1.0\n"
        );
        parse_rules("r.toml", &text).unwrap().rules.remove(0)
    }

    /// Snapshots every 15 minutes for the `hours` before `now` (not at
    /// `now`), spending `rate` USD/h up to `usage_now`.
    fn history(series: &mut Series, key: &Key, now: &str, hours: i64, rate: f64) {
        let now = t(now);
        let usage_now = key.usage.unwrap();
        series.insert(
            key.hash.clone(),
            (1..=hours * 4)
                .rev()
                .map(|q| UsageReading {
                    at: now - Duration::minutes(15 * q),
                    usage: Some(usage_now - rate * q as f64 / 4.0),
                    byok_usage: Some(10.0),
                })
                .collect(),
        );
    }

    fn judge(rule: &Rule, keys: &[Key], series: &Series, now: &str) -> Vec<(Truth, Verdict)> {
        let compiled = CompiledRule::new(rule, chrono_tz::UTC, &Default::default()).unwrap();
        let selected: Vec<usize> = (0..keys.len()).collect();
        let observed = Observed {
            amounts: &Default::default(),
            credits: None,
            series,
            now: t(now),
        };
        let eval = evaluate(
            &compiled,
            &selected,
            keys,
            &SharedHashes::new(keys),
            &observed,
            &mut Vec::new(),
        );
        selected
            .iter()
            .zip(&eval.verdicts)
            .map(|(&i, &truth)| (truth, eval.explain(keys, i)))
            .collect()
    }

    #[test]
    fn a_weekly_profile_says_how_it_shaped_the_hours_ahead() {
        let now = "2026-12-16T16:00:00Z";
        let keys = [key("a", 100.0, Some(20.0)), key("b", 50.0, Some(11.3))];
        let rule = forecast_rule(
            "{ usd = 50.0, window = \"monthly\", scope = \"group\", profile = \"weekly\" }",
        );
        let mut series = Series::new();
        history(&mut series, &keys[0], now, 6, 0.6);
        history(&mut series, &keys[1], now, 8 * 24, 0.5);
        let (_, verdict) = judge(&rule, &keys, &series, now).remove(0);
        let flat = "group monthly spend 31.30 USD at 1.10 USD/h over 6h (flat: less than a week \
                    of snapshots for the weekly profile) reaches the 50.00 USD budget at \
                    2026-12-17T09:00Z (in 17h), before the window ends";
        assert_eq!(verdict, Verdict::Holds(flat.into()));
        // Steady spenders with a week behind them: the same crossing, shaped.
        history(&mut series, &keys[0], now, 8 * 24, 0.6);
        let (truth, verdict) = judge(&rule, &keys, &series, now).remove(0);
        let shaped = "group monthly spend 31.30 USD at 1.10 USD/h over 6h shaped like the week \
                      before reaches the 50.00 USD budget at 2026-12-17T09:00Z (in 17h), before \
                      the window ends";
        assert_eq!(
            (truth, verdict),
            (Truth::Holds, Verdict::Holds(shaped.into()))
        );
    }

    #[test]
    fn a_group_heading_over_its_budget_holds_with_the_spec_reason() {
        let now = "2026-12-16T16:00:00Z";
        let keys = [key("a", 100.0, Some(20.0)), key("b", 50.0, Some(11.3))];
        let mut series = Series::new();
        history(&mut series, &keys[0], now, 6, 0.6);
        history(&mut series, &keys[1], now, 6, 0.5);
        let rule = forecast_rule(
            "{ usd = 50.0, window = \"monthly\", scope = \"group\", within = \"24h\" }",
        );
        let verdicts = judge(&rule, &keys, &series, now);
        let reason = "group monthly spend 31.30 USD at 1.10 USD/h over 6h reaches the 50.00 USD \
                      budget at 2026-12-17T09:00Z (in 17h), before the window ends";
        for (truth, verdict) in verdicts {
            assert_eq!(truth, Truth::Holds);
            assert_eq!(verdict, Verdict::Holds(reason.into()));
        }
        let later = forecast_rule(
            "{ usd = 50.0, window = \"monthly\", scope = \"group\", within = \"12h\" }",
        );
        let (truth, verdict) = judge(&later, &keys, &series, now).remove(0);
        assert_eq!(truth, Truth::DoesNotHold);
        assert!(
            matches!(&verdict, Verdict::DoesNotHold(r) if r.ends_with("(in 17h), later than within 12h")),
            "{verdict:?}"
        );
    }

    #[test]
    fn too_little_history_or_a_null_counter_is_not_evaluated() {
        let now = "2026-12-16T16:00:00Z";
        let keys = [key("a", 100.0, Some(20.0)), key("b", 50.0, None)];
        let mut series = Series::new();
        history(&mut series, &keys[0], now, 2, 1.0);
        history(&mut series, &keys[1], now, 6, 1.0);
        let rule = forecast_rule("{ usd = 50.0, window = \"monthly\" }");
        let verdicts = judge(&rule, &keys, &series, now);
        assert_eq!(verdicts[0].0, Truth::Unknown);
        assert_eq!(
            verdicts[0].1,
            Verdict::Unknown(
                "key a: burn rate unknown: the usage readings cover 2h of the lookback, half of it needed"
                    .into()
            )
        );
        assert_eq!(verdicts[1].0, Truth::Unknown);
        assert!(
            matches!(&verdicts[1].1, Verdict::Unknown(r) if r.contains("monthly usage of key b unknown")),
            "{:?}",
            verdicts[1].1
        );
    }

    #[test]
    fn a_deleted_key_leaves_the_group_rate_and_a_failed_source_is_not_evaluated() {
        let now = "2026-12-16T16:00:00Z";
        let keys = [key("a", 100.0, Some(20.0))];
        let mut series = Series::new();
        history(&mut series, &keys[0], now, 6, 1.0);
        // A key deleted an hour ago: its snapshots are still in the series.
        history(&mut series, &key("gone", 500.0, Some(0.0)), now, 5, 9.0);
        let rule = forecast_rule("{ usd = 50.0, window = \"monthly\", scope = \"group\" }");
        let (_, verdict) = judge(&rule, &keys, &series, now).remove(0);
        assert!(
            matches!(&verdict, Verdict::Holds(r) if r.starts_with("group monthly spend 20.00 USD at 1.00 USD/h")),
            "the group is the keys present now: {verdict:?}"
        );
        let sourced = forecast_rule("{ usd = { env = \"TEAM_BUDGET\" }, window = \"monthly\" }");
        let (truth, verdict) = judge(&sourced, &keys, &series, now).remove(0);
        assert_eq!(truth, Truth::Unknown);
        assert_eq!(
            verdict,
            Verdict::Unknown("budget source env:TEAM_BUDGET unavailable".into())
        );
    }

    #[test]
    fn a_key_younger_than_the_lookback_counts_with_the_readings_of_its_life() {
        let now = "2026-12-16T16:00:00Z";
        let mut young = key("young", 3.0, Some(3.0));
        let mut series = Series::new();
        history(&mut series, &young, now, 2, 1.5);
        let rule = forecast_rule("{ usd = 50.0, window = \"monthly\", scope = \"group\" }");
        let (truth, verdict) = judge(&rule, std::slice::from_ref(&young), &series, now).remove(0);
        assert_eq!(
            truth,
            Truth::Unknown,
            "no creation time: judged on the lookback"
        );
        assert!(
            matches!(&verdict, Verdict::Unknown(r) if r.contains("cover 2h of the lookback")),
            "{verdict:?}"
        );
        young.created_at = Some("2026-12-16T14:00:00Z".into());
        let (truth, verdict) = judge(&rule, &[young], &series, now).remove(0);
        assert_eq!(truth, Truth::Holds);
        assert!(
            matches!(&verdict, Verdict::Holds(r) if r.starts_with("group monthly spend 3.00 USD at 1.50 USD/h")),
            "{verdict:?}"
        );
    }

    #[test]
    fn a_key_that_stopped_does_not_hold_and_byok_counts_when_asked() {
        let now = "2026-12-31T20:00:00Z";
        let keys = [key("a", 100.0, Some(45.0))];
        let mut series = Series::new();
        history(&mut series, &keys[0], now, 6, 0.0);
        let rule = forecast_rule("{ usd = 50.0, window = \"monthly\" }");
        let (truth, verdict) = judge(&rule, &keys, &series, now).remove(0);
        assert_eq!(truth, Truth::DoesNotHold);
        assert_eq!(
            verdict,
            Verdict::DoesNotHold(
                "key monthly spend 45.00 USD at 0.00 USD/h over 6h does not reach the 50.00 USD budget at this rate"
                    .into()
            )
        );
        // BYOK usage counts in the spend (10 USD) when asked: over budget.
        let byok = forecast_rule("{ usd = 50.0, window = \"monthly\", include_byok = true }");
        let (truth, _) = judge(&byok, &keys, &series, now).remove(0);
        assert_eq!(truth, Truth::Holds);
    }

    #[test]
    fn a_forecast_and_a_budget_must_both_hold() {
        let now = "2026-12-16T16:00:00Z";
        let keys = [key("a", 100.0, Some(31.3))];
        let mut series = Series::new();
        history(&mut series, &keys[0], now, 6, 1.1);
        let text = "[[rule]]\nname = \"f\"\nkeys = \"all\"\n[rule.when]\n\
                    forecast = { usd = 50.0, window = \"monthly\" }\n\
                    budget = { usd = 40.0, window = \"monthly\" }\n[rule.set]\nlimit = 1.0\n";
        let rule = parse_rules("r.toml", text).unwrap().rules.remove(0);
        let (truth, verdict) = judge(&rule, &keys, &series, now).remove(0);
        assert_eq!(truth, Truth::DoesNotHold);
        assert_eq!(
            verdict,
            Verdict::DoesNotHold("key monthly spend 31.30 USD < budget 40.00 USD".into())
        );
    }
}
