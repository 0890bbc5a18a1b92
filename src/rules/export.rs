//! Rules as TOML: the canonical rules-file form that `rules export` and
//! `rules show` print, which [`super::parse_rules`] reads back to equal rules.

use super::model::{
    Amount, Budget, DEFAULT_MAX_AGE_SECS, Forecast, Rule, Scope, Selector, Source, SourceKind,
};
use chrono::{NaiveDateTime, Weekday};
use toml_edit::{InlineTable, Item, Value};

/// The canonical rules-file form of `rules` (what `rules export` and
/// `rules show` print): parsing it gives back equal rules.
pub fn to_toml(rules: &[Rule]) -> String {
    let mut tables = toml_edit::ArrayOfTables::new();
    for (i, rule) in rules.iter().enumerate() {
        let mut t = rule_table(rule);
        if i > 0 {
            t.decor_mut().set_prefix("\n");
        }
        tables.push(t);
    }
    let mut doc = toml_edit::DocumentMut::new();
    if !rules.is_empty() {
        doc.insert("rule", Item::ArrayOfTables(tables));
    }
    doc.to_string()
}

fn rule_table(r: &Rule) -> toml_edit::Table {
    use toml_edit::{Array, Table, value};
    let mut t = Table::new();
    t.insert("name", value(&r.name));
    if let Some(d) = &r.description {
        t.insert("description", value(d));
    }
    t.insert("enabled", value(r.enabled));
    t.insert("priority", value(r.priority));
    t.insert("keys", value(selector_value(&r.keys)));
    if let Some(s) = &r.schedule {
        t.insert("schedule", value(s));
    }
    if let Some(z) = &r.timezone {
        t.insert("timezone", value(z));
    }
    if !r.warn_at.is_empty() {
        t.insert(
            "warn_at",
            value(r.warn_at.iter().copied().collect::<Array>()),
        );
    }
    if !r.warn_before_secs.is_empty() {
        let horizons: Array = r.warn_before_secs.iter().map(|&s| duration(s)).collect();
        t.insert("warn_before", value(horizons));
    }
    let c = &r.when;
    let mut when = Table::new();
    if let Some(b) = &c.budget {
        when.insert("budget", value(budget_table(b)));
    }
    if let Some(f) = &c.forecast {
        when.insert("forecast", value(forecast_table(f)));
    }
    if let Some(a) = &c.credits_below {
        let mut ct = InlineTable::new();
        ct.insert("usd", amount_value(a));
        when.insert("credits_below", value(ct));
    }
    if let Some(s) = &c.season {
        let mut st = InlineTable::new();
        st.insert("from", format!("{:02}-{:02}", s.from.0, s.from.1).into());
        st.insert("to", format!("{:02}-{:02}", s.to.0, s.to.1).into());
        when.insert("season", value(st));
    }
    if let Some(b) = &c.between {
        let mut bt = InlineTable::new();
        bt.insert("start", datetime_value(b.start));
        bt.insert("end", datetime_value(b.end));
        when.insert("between", value(bt));
    }
    if let Some(w) = &c.weekdays {
        let days: Array = w.iter().map(|d| weekday_name(*d)).collect();
        when.insert("weekdays", value(days));
    }
    if let Some(h) = &c.hours {
        when.insert(
            "hours",
            value(format!(
                "{}-{}",
                h.start.format("%H:%M"),
                h.end.format("%H:%M")
            )),
        );
    }
    if !when.is_empty() {
        t.insert("when", Item::Table(when));
    }
    let mut set = Table::new();
    if let Some(b) = r.set.disabled {
        set.insert("disabled", value(b));
    }
    match r.set.limit {
        Some(Some(x)) => _ = set.insert("limit", value(x)),
        Some(None) => _ = set.insert("limit", value("none")),
        None => {}
    }
    match r.set.limit_reset {
        Some(Some(reset)) => _ = set.insert("limit_reset", value(reset.as_str())),
        Some(None) => _ = set.insert("limit_reset", value("none")),
        None => {}
    }
    if let Some(b) = r.set.include_byok_in_limit {
        set.insert("include_byok_in_limit", value(b));
    }
    if let Some(guardrail) = &r.set.guardrail {
        set.insert("guardrail", value(guardrail.as_str()));
    }
    t.insert("set", Item::Table(set));
    t
}

/// The budget terms of a `budget` or `forecast` condition.
fn budget_table(b: &Budget) -> InlineTable {
    let mut bt = InlineTable::new();
    bt.insert("usd", amount_value(&b.usd));
    bt.insert("window", b.window.as_str().into());
    bt.insert(
        "scope",
        match b.scope {
            Scope::Each => "each",
            Scope::Group => "group",
        }
        .into(),
    );
    if b.include_byok {
        bt.insert("include_byok", true.into());
    }
    if b.at != 1.0 {
        bt.insert("at", b.at.into());
    }
    bt
}

/// `forecast = { …budget terms, lookback, within }`.
fn forecast_table(f: &Forecast) -> InlineTable {
    let mut ft = budget_table(&f.budget);
    ft.insert("lookback", duration(f.lookback_secs).into());
    if let Some(w) = f.within_secs {
        ft.insert("within", duration(w).into());
    }
    ft
}

/// A duration in seconds as rules write it (`"6h"`, `"1h 30m"`).
fn duration(secs: u64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
}

fn selector_value(s: &Selector) -> Value {
    let Selector::Match(m) = s else {
        return "all".into();
    };
    let mut t = toml_edit::InlineTable::new();
    let lists = [
        ("hashes", &m.hashes),
        ("names", &m.names),
        ("labels", &m.labels),
        ("workspaces", &m.workspaces),
    ];
    for (key, list) in lists.into_iter().filter(|(_, l)| !l.is_empty()) {
        t.insert(key, list.iter().collect::<toml_edit::Array>().into());
    }
    let x = &m.exclude;
    let mut ex = toml_edit::InlineTable::new();
    for (key, list) in [
        ("hashes", &x.hashes),
        ("names", &x.names),
        ("labels", &x.labels),
    ] {
        if !list.is_empty() {
            ex.insert(key, list.iter().collect::<toml_edit::Array>().into());
        }
    }
    if !ex.is_empty() {
        t.insert("exclude", ex.into());
    }
    t.into()
}

fn amount_value(a: &Amount) -> Value {
    match a {
        Amount::Fixed(x) => (*x).into(),
        Amount::Source(s) => source_value(s),
    }
}

fn source_value(s: &Source) -> Value {
    let mut t = toml_edit::InlineTable::new();
    match &s.kind {
        SourceKind::Env { name } => _ = t.insert("env", name.into()),
        SourceKind::File { path, pointer } => {
            t.insert("file", path.into());
            if let Some(p) = pointer {
                t.insert("pointer", p.into());
            }
        }
        SourceKind::Url {
            url,
            pointer,
            headers,
        } => {
            t.insert("url", url.into());
            if let Some(p) = pointer {
                t.insert("pointer", p.into());
            }
            if !headers.is_empty() {
                let mut h = toml_edit::InlineTable::new();
                for (k, v) in headers {
                    h.insert(k, v.into());
                }
                t.insert("headers", h.into());
            }
        }
    }
    if s.max_age_secs != DEFAULT_MAX_AGE_SECS {
        t.insert("max_age", duration(s.max_age_secs).into());
    }
    t.into()
}

fn datetime_value(d: NaiveDateTime) -> Value {
    let text = d.format("%Y-%m-%dT%H:%M:%S%.f").to_string();
    match text.parse::<toml_edit::Datetime>() {
        Ok(dt) => dt.into(),
        Err(_) => text.into(),
    }
}

fn weekday_name(d: Weekday) -> &'static str {
    match d {
        Weekday::Mon => "mon",
        Weekday::Tue => "tue",
        Weekday::Wed => "wed",
        Weekday::Thu => "thu",
        Weekday::Fri => "fri",
        Weekday::Sat => "sat",
        Weekday::Sun => "sun",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{GuardrailRef, LimitReset, Settings, Window};
    use crate::rules::model::{Between, Budget, Exclude, Hours, Match};
    use crate::rules::parse_rules;
    use chrono::NaiveTime;

    const EXAMPLE: &str = include_str!("../../config/rules.example.toml");

    #[test]
    fn export_then_parse_gives_back_equal_rules() {
        let rules = parse_rules("x", EXAMPLE).unwrap().rules;
        let mut extra = rules[0].clone();
        extra.name = "hand.built_1".into();
        extra.description = None;
        extra.enabled = false;
        extra.priority = -3;
        extra.keys = Selector::Match(Match {
            hashes: vec!["f01d52".into()],
            labels: vec!["sk-or-v1-0e6*".into()],
            workspaces: vec!["ws-1".into()],
            exclude: Exclude {
                hashes: vec!["abc".into()],
                names: vec!["x?".into()],
                labels: vec![],
            },
            ..Match::default()
        });
        extra.when.budget = Some(Budget {
            usd: Amount::Source(Source {
                kind: SourceKind::Url {
                    url: "https://finance.example/b".into(),
                    pointer: Some("/a~1b/0".into()),
                    headers: vec![
                        ("Authorization".into(), "env:TOKEN".into()),
                        ("X-Team".into(), "a".into()),
                    ],
                },
                max_age_secs: 6 * 3600,
            }),
            window: Window::Total,
            scope: Scope::Each,
            include_byok: true,
            at: 0.75,
        });
        extra.when.forecast = Some(Forecast {
            budget: Budget {
                usd: Amount::Fixed(75.5),
                window: Window::Weekly,
                scope: Scope::Group,
                include_byok: false,
                at: 0.9,
            },
            lookback_secs: 90 * 60,
            within_secs: Some(3 * 24 * 3600),
        });
        extra.warn_before_secs = vec![3 * 24 * 3600, 12 * 3600 + 30 * 60];
        extra.when.credits_below = Some(Amount::Source(Source {
            kind: SourceKind::File {
                path: "/etc/b.json".into(),
                pointer: None,
            },
            max_age_secs: DEFAULT_MAX_AGE_SECS,
        }));
        extra.when.hours = Some(Hours {
            start: NaiveTime::from_hms_opt(18, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(8, 30, 0).unwrap(),
        });
        extra.when.between = Some(Between {
            start: "2026-01-02T03:04:05.5".parse().unwrap(),
            end: "2026-02-01T00:00:00".parse().unwrap(),
        });
        extra.set = Settings {
            disabled: Some(false),
            limit: Some(Some(0.0)),
            limit_reset: Some(Some(LimitReset::Weekly)),
            include_byok_in_limit: Some(true),
            guardrail: Some(GuardrailRef::parse("cheap-models-only")),
        };
        let all: Vec<Rule> = rules.into_iter().chain([extra]).collect();
        let text = to_toml(&all);
        let back = parse_rules("export", &text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        assert_eq!(back.rules, all);
        assert_eq!(to_toml(&back.rules), text);
        // The database keeps rules as JSON: "none" must survive that too.
        let json = serde_json::to_string(&all).unwrap();
        assert_eq!(serde_json::from_str::<Vec<Rule>>(&json).unwrap(), all);
    }
}
