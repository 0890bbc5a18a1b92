//! The schema of a rule's `when` table: budget, forecast, credits, season,
//! between, weekdays and hours.

use super::scalar::{
    local_datetime, parse_hours, parse_local_datetime, parse_month_day, parse_weekday,
};
use super::walk::{Node, Parser, Reported, Tbl};
use crate::domain::Window;
use crate::rules::model::{Between, Budget, Conditions, Scope, Season};
use toml_edit::Value;

/// The fields of `when.budget`.
const BUDGET_FIELDS: [&str; 5] = ["usd", "window", "scope", "include_byok", "at"];

impl Parser<'_> {
    /// `when`: the conditions.
    pub(super) fn conditions(&mut self, n: Node) -> Option<Conditions> {
        let t = self.table(
            n,
            "when",
            &[
                "budget",
                "forecast",
                "credits_below",
                "season",
                "between",
                "weekdays",
                "hours",
            ],
        )?;
        let errors_before = self.diags.len();
        let budget = self.optional(t.get("budget"), Self::budget);
        let forecast = self.optional(t.get("forecast"), Self::forecast);
        let credits_below = self.optional(t.get("credits_below"), |p, c| {
            let ct = p.table(c, "when.credits_below", &["usd"])?;
            match ct.get("usd") {
                Some(u) => p.amount(u, "when.credits_below.usd"),
                None => {
                    p.missing(&ct, "usd", "the amount of credits (usd = 10.0)");
                    None
                }
            }
        });
        let season = self.optional(t.get("season"), Self::season);
        let between = self.optional(t.get("between"), Self::between);
        let weekdays = self.optional(t.get("weekdays"), |p, _| {
            p.str_list(&t, "weekdays", parse_weekday)
        });
        let hours = self.optional(t.get("hours"), |p, h| match h.str() {
            Some(s) => parse_hours(s)
                .map_err(|msg| p.bad(h, "when.hours", msg))
                .ok(),
            None => {
                p.wrong_type(h, "when.hours", "a string \"HH:MM-HH:MM\"");
                None
            }
        });
        if self.diags.len() > errors_before {
            return None;
        }
        if let Ok(Some(w)) = &weekdays {
            if w.is_empty() {
                self.bad(
                    t.get("weekdays")?,
                    "when.weekdays",
                    "an empty list never holds: name at least one day".into(),
                );
                return None;
            }
        }
        Some(Conditions {
            budget: budget.ok()?,
            forecast: forecast.ok()?,
            credits_below: credits_below.ok()?,
            season: season.ok()?,
            between: between.ok()?,
            weekdays: weekdays.ok()?,
            hours: hours.ok()?,
        })
    }

    /// `when.budget`: an amount, a window, a scope and the share `at`.
    fn budget(&mut self, n: Node) -> Option<Budget> {
        let t = self.table(n, "when.budget", &BUDGET_FIELDS)?;
        self.budget_terms(&t)
    }

    /// The budget terms of a `budget` or `forecast` table `t`: amount,
    /// window, scope, BYOK and the share `at`.
    pub(super) fn budget_terms(&mut self, t: &Tbl) -> Option<Budget> {
        let errors_before = self.diags.len();
        let usd = match t.get("usd") {
            Some(u) => self.amount(u, &t.field("usd")),
            None => {
                self.missing(t, "usd", "the budget in USD (usd = 50.0)");
                None
            }
        };
        let window = match self.opt_str(t, "window") {
            Ok(None) => {
                self.missing(
                    t,
                    "window",
                    "the spend window (daily, weekly, monthly or total)",
                );
                None
            }
            Ok(Some((s, w))) => match s {
                "daily" => Some(Window::Daily),
                "weekly" => Some(Window::Weekly),
                "monthly" => Some(Window::Monthly),
                "total" => Some(Window::Total),
                _ => {
                    self.bad(
                        w,
                        &t.field("window"),
                        format!("unknown window {s:?} (expected daily, weekly, monthly or total)"),
                    );
                    None
                }
            },
            Err(Reported) => None,
        };
        let scope = match self.opt_str(t, "scope") {
            Ok(None) => Some(Scope::Each),
            Ok(Some(("each", _))) => Some(Scope::Each),
            Ok(Some(("group", _))) => Some(Scope::Group),
            Ok(Some((s, w))) => {
                self.bad(
                    w,
                    &t.field("scope"),
                    format!("unknown scope {s:?} (expected each or group)"),
                );
                None
            }
            Err(Reported) => None,
        };
        let include_byok = self
            .opt_bool(t, "include_byok")
            .map(Option::unwrap_or_default);
        let at = match t.get("at") {
            None => Some(1.0),
            Some(a) => match a.number() {
                Some(x) if x > 0.0 && x <= 10.0 => Some(x),
                Some(x) => {
                    self.bad(
                        a,
                        &t.field("at"),
                        format!("{x} is out of range: the share of the budget must be in (0, 10]"),
                    );
                    None
                }
                None => {
                    self.wrong_type(a, &t.field("at"), "a number");
                    None
                }
            },
        };
        if self.diags.len() > errors_before {
            return None;
        }
        Some(Budget {
            usd: usd?,
            window: window?,
            scope: scope?,
            include_byok: include_byok.ok()?,
            at: at?,
        })
    }

    /// `season`: two `MM-DD` days.
    fn season(&mut self, n: Node) -> Option<Season> {
        let t = self.table(n, "when.season", &["from", "to"])?;
        let end = |p: &mut Self, key: &str| match p.opt_str(&t, key).ok()? {
            None => {
                p.missing(&t, key, "a date MM-DD");
                None
            }
            Some((s, sn)) => parse_month_day(s)
                .map_err(|msg| p.bad(sn, &t.field(key), msg))
                .ok(),
        };
        let from = end(self, "from");
        let to = end(self, "to");
        Some(Season {
            from: from?,
            to: to?,
        })
    }

    /// `between`: a local start and a later end.
    fn between(&mut self, n: Node) -> Option<Between> {
        let t = self.table(n, "when.between", &["start", "end"])?;
        let end = |p: &mut Self, key: &str| {
            let Some(v) = t.get(key) else {
                p.missing(&t, key, "a local date-time such as 2026-12-20T00:00:00");
                return None;
            };
            let parsed = match v.value() {
                Some(Value::Datetime(d)) => local_datetime(d.value()),
                Some(Value::String(s)) => parse_local_datetime(s.value()),
                _ => {
                    p.wrong_type(v, &t.field(key), "a local date-time (2026-12-20T00:00:00)");
                    return None;
                }
            };
            parsed
                .map_err(|msg| p.bad(v, &t.field(key), msg))
                .ok()
                .map(|d| (d, v))
        };
        let start = end(self, "start");
        let (end, end_node) = end(self, "end")?;
        let (start, _) = start?;
        if end <= start {
            self.bad(
                end_node,
                "when.between.end",
                format!("{end} is not after start {start}"),
            );
            return None;
        }
        Some(Between { start, end })
    }
}
