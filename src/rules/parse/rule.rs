//! The schema of a `[[rule]]` table: its fields, its selector (`keys`), its
//! settings (`set`), `warn_at` and `warn_before`. The conditions (`when`) are in
//! [`super::conditions`].

use super::checks::{check_glob, check_name, check_nonempty, check_schedule, check_timezone};
use super::walk::{Node, Parser, Refused, Reported, Tbl};
use crate::domain::{GuardrailRef, LimitReset, Settings};
use crate::rules::diagnostic::Position;
use crate::rules::model::{Conditions, Exclude, Match, Rule, Selector};
use toml_edit::Value;

impl Parser<'_> {
    /// One `[[rule]]` table, the `index`th of the file.
    pub(super) fn rule(&mut self, index: usize, node: Node) -> Option<(Rule, Position)> {
        self.rule = Some(format!("#{index}"));
        let t = self.table(node, "", RULE_FIELDS)?;
        let mut pos = self.lines.position(node.span().map_or(0, |s| s.start));
        let name = match t.get("name") {
            None => {
                self.push(
                    node.span(),
                    Some("name"),
                    "missing field: every rule needs a name".into(),
                );
                None
            }
            Some(n) => match n.str() {
                Some(s) => {
                    self.rule = Some(s.to_string());
                    pos = self.lines.position(n.span().map_or(0, |s| s.start));
                    match check_name(s) {
                        Ok(()) => Some(s.to_string()),
                        Err(msg) => {
                            self.bad(n, "name", msg);
                            None
                        }
                    }
                }
                None => {
                    self.wrong_type(n, "name", "a string");
                    None
                }
            },
        };
        let errors_before = self.diags.len();
        let description = self
            .opt_str(&t, "description")
            .map(|d| d.map(|(s, _)| s.to_string()));
        let enabled = self.opt_bool(&t, "enabled").map(|b| b.unwrap_or(true));
        let priority = match t.get("priority") {
            None => Some(0),
            Some(n) => match n.value().and_then(Value::as_integer) {
                Some(i) => Some(i),
                None => {
                    self.wrong_type(n, "priority", "an integer");
                    None
                }
            },
        };
        let keys = match t.get("keys") {
            None => {
                self.missing(&t, "keys", "which keys the rule applies to (\"all\" or a table such as { names = [\"team-a-*\"] })");
                None
            }
            Some(n) => self.selector(n),
        };
        let schedule = self.checked_str(&t, "schedule", check_schedule);
        let timezone = self.checked_str(&t, "timezone", check_timezone);
        let when = match t.get("when") {
            None => Some(Conditions::default()),
            Some(n) => self.conditions(n),
        };
        let set = match t.get("set") {
            None => {
                self.missing(
                    &t,
                    "set",
                    "the settings to assert (disabled, limit, limit_reset, include_byok_in_limit)",
                );
                None
            }
            Some(n) => self.settings(n),
        };
        let warn_at = self.warn_at(&t, when.as_ref());
        let warn_before = self.warn_before(&t, when.as_ref());
        if self.diags.len() > errors_before {
            return None;
        }
        Some((
            Rule {
                name: name?,
                description: description.ok()?,
                enabled: enabled.ok()?,
                priority: priority?,
                keys: keys?,
                schedule: schedule.ok()?,
                timezone: timezone.ok()?,
                when: when?,
                set: set?,
                warn_at: warn_at?,
                warn_before_secs: warn_before?,
            },
            pos,
        ))
    }

    /// `warn_at`: fractions of the budget, which needs a budget condition.
    fn warn_at(&mut self, t: &Tbl, when: Option<&Conditions>) -> Option<Vec<f64>> {
        let Some(n) = t.get("warn_at") else {
            return Some(Vec::new());
        };
        let Some(elems) = n.array().filter(|_| n.value().is_some()) else {
            self.wrong_type(n, "warn_at", "an array of fractions");
            return None;
        };
        if when.is_some_and(|w| w.budget.is_none()) {
            self.bad(
                n,
                "warn_at",
                "needs a budget condition (when.budget) to measure spend against".into(),
            );
            return None;
        }
        self.elements(elems, "warn_at", |e| match e.number() {
            Some(x) if x > 0.0 && x <= 1.0 => Ok(x),
            Some(x) => Err(Refused::Invalid(format!(
                "{x} is not a fraction of the budget in (0, 1]"
            ))),
            None => Err(Refused::WrongType("a number")),
        })
    }

    /// `warn_before`: horizons (durations) of the early warnings, which
    /// need a budget or forecast condition to project.
    fn warn_before(&mut self, t: &Tbl, when: Option<&Conditions>) -> Option<Vec<u64>> {
        let Some(n) = t.get("warn_before") else {
            return Some(Vec::new());
        };
        let Some(elems) = n.array().filter(|_| n.value().is_some()) else {
            self.wrong_type(
                n,
                "warn_before",
                "an array of durations such as [\"3d\", \"12h\"]",
            );
            return None;
        };
        if when.is_some_and(|w| w.budget.is_none() && w.forecast.is_none()) {
            self.bad(
                n,
                "warn_before",
                "needs a budget or forecast condition (when.budget or when.forecast) to project spend against".into(),
            );
            return None;
        }
        if elems.is_empty() {
            self.bad(
                n,
                "warn_before",
                "an empty list warns of nothing: give horizons such as [\"3d\", \"12h\"], or leave warn_before out".into(),
            );
            return None;
        }
        self.elements(elems, "warn_before", |e| {
            let Some(s) = e.str() else {
                return Err(Refused::WrongType("a duration such as \"12h\""));
            };
            match humantime::parse_duration(s) {
                Ok(d) if d.as_secs() > 0 => Ok(d.as_secs()),
                Ok(_) => Err(Refused::Invalid(format!(
                    "{s:?} is no horizon: a warning must come some time before the crossing, such as \"12h\""
                ))),
                Err(e) => Err(Refused::Invalid(format!(
                    "{s:?} is not a duration such as \"12h\" ({e})"
                ))),
            }
        })
    }

    /// `keys`: `"all"` or a selector table.
    fn selector(&mut self, n: Node) -> Option<Selector> {
        if let Some(s) = n.str() {
            if s == "all" {
                return Some(Selector::All);
            }
            self.bad(n, "keys", format!("{s:?} is not a selector: use \"all\" or a table such as {{ names = [\"team-a-*\"] }}"));
            return None;
        }
        if n.table().is_none() {
            self.wrong_type(n, "keys", "\"all\" or a table");
            return None;
        }
        let t = self.table(
            n,
            "keys",
            &["hashes", "names", "labels", "workspaces", "exclude"],
        )?;
        let errors_before = self.diags.len();
        let hashes = self.str_list(&t, "hashes", check_nonempty);
        let names = self.str_list(&t, "names", check_glob);
        let labels = self.str_list(&t, "labels", check_glob);
        let workspaces = self.str_list(&t, "workspaces", check_glob);
        let exclude = match t.get("exclude") {
            None => Some(Exclude::default()),
            Some(e) => self
                .table(e, "keys.exclude", &["hashes", "names", "labels"])
                .and_then(|x| {
                    Some(Exclude {
                        hashes: self.str_list(&x, "hashes", check_nonempty)?,
                        names: self.str_list(&x, "names", check_glob)?,
                        labels: self.str_list(&x, "labels", check_glob)?,
                    })
                }),
        };
        if self.diags.len() > errors_before {
            return None;
        }
        let m = Match {
            hashes: hashes?,
            names: names?,
            labels: labels?,
            workspaces: workspaces?,
            exclude: exclude?,
        };
        if m.hashes.is_empty()
            && m.names.is_empty()
            && m.labels.is_empty()
            && m.workspaces.is_empty()
        {
            self.bad(n, "keys", "the selector matches nothing: give hashes, names, labels or workspaces (or \"all\")".into());
            return None;
        }
        Some(Selector::Match(m))
    }

    /// `set`: the settings asserted while the rule holds.
    fn settings(&mut self, n: Node) -> Option<Settings> {
        let t = self.table(
            n,
            "set",
            &[
                "disabled",
                "limit",
                "limit_reset",
                "include_byok_in_limit",
                "guardrail",
            ],
        )?;
        let errors_before = self.diags.len();
        let disabled = self.opt_bool(&t, "disabled");
        let include_byok_in_limit = self.opt_bool(&t, "include_byok_in_limit");
        // `limit = "none"` is `Some(None)`: Settings' "no limit".
        let limit = match t.get("limit") {
            None => Ok(None),
            Some(l) if l.str() == Some("none") => Ok(Some(None)),
            Some(l) if l.number().is_some() => self
                .amount_number(l, "set.limit")
                .map(|x| Some(Some(x)))
                .ok_or(Reported),
            Some(l) => {
                let msg = match l.str() {
                    Some(s) => format!(
                        "{s:?} is not a limit: a number of USD ≥ 0, or \"none\" for no limit"
                    ),
                    None => format!(
                        "expected a number of USD or \"none\", found {}",
                        l.type_name()
                    ),
                };
                self.bad(l, "set.limit", msg);
                Err(Reported)
            }
        };
        let limit_reset = match self.opt_str(&t, "limit_reset") {
            Ok(None) => Ok(None),
            Ok(Some(("none", _))) => Ok(Some(None)),
            Ok(Some((s, r))) => match LimitReset::parse(s) {
                Some(reset) => Ok(Some(Some(reset))),
                None => {
                    self.bad(r, "set.limit_reset", format!("unknown limit_reset {s:?} (expected daily, weekly, monthly or \"none\")"));
                    Err(Reported)
                }
            },
            Err(reported) => Err(reported),
        };
        let guardrail = self
            .checked_str(&t, "guardrail", |s| match s.trim() {
                "" => Err("give a guardrail's id or name, or \"none\" for no guardrail".into()),
                _ => Ok(()),
            })
            .map(|g| g.as_deref().map(GuardrailRef::parse));
        if self.diags.len() > errors_before {
            return None;
        }
        let settings = Settings {
            disabled: disabled.ok()?,
            limit: limit.ok()?,
            limit_reset: limit_reset.ok()?,
            include_byok_in_limit: include_byok_in_limit.ok()?,
            guardrail: guardrail.ok()?,
        };
        if settings.asserted().is_empty() {
            self.bad(
                n,
                "set",
                "nothing to set: give disabled, limit, limit_reset, include_byok_in_limit or guardrail".into(),
            );
            return None;
        }
        Some(settings)
    }
}

/// The fields of a `[[rule]]` table.
const RULE_FIELDS: &[&str] = &[
    "name",
    "description",
    "enabled",
    "priority",
    "keys",
    "schedule",
    "timezone",
    "when",
    "set",
    "warn_at",
    "warn_before",
];
