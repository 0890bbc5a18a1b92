//! Rules files (SPEC §3): TOML `[[rule]]` tables ⇄ [`Rule`] values.
//!
//! [`parse_rules`] is the only way to make a [`Rule`] from text: it walks the
//! TOML document with its spans and reports every problem it finds (SPEC
//! §3.4), each naming file:line:col, the rule and the field.

use super::diagnostic::{Diagnostic, LineIndex, Position, Severity};
use super::model::{
    Amount, Between, Budget, Conditions, Exclude, Hours, Match, Rule, Scope, Season, Selector,
    Source, SourceKind,
};
use crate::domain::{LimitReset, Settings, Window};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Weekday};
use std::ops::Range;
use std::path::Path;
use toml_edit::{ImDocument, Item, TableLike, Value};

/// The default `max_age` of a budget source: 24 hours.
pub const DEFAULT_MAX_AGE_SECS: u64 = 24 * 3600;

/// A rules file that parsed without errors.
#[derive(Debug, Clone)]
pub struct RulesFile {
    /// The file, as it was named.
    pub path: String,
    /// Its rules, in file order.
    pub rules: Vec<Rule>,
    /// Where each rule (its `name`) is, parallel to `rules`.
    pub positions: Vec<Position>,
    /// Warnings (the file is valid nonetheless).
    pub warnings: Vec<Diagnostic>,
}

/// Reads and parses the rules file at `path`.
pub fn read_rules_file(path: &Path) -> Result<RulesFile, Vec<Diagnostic>> {
    let name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse_rules(&name, &text),
        Err(e) => Err(vec![Diagnostic {
            severity: Severity::Error,
            file: name,
            line: 1,
            col: 1,
            rule: None,
            field: None,
            message: format!("cannot read the rules file: {e}"),
        }]),
    }
}

/// Parses the text of a rules file named `path`: every rule, or every error.
///
/// Warnings (two rules of equal priority that can set one field of one key
/// to different values) come with the rules; errors replace them.
pub fn parse_rules(path: &str, text: &str) -> Result<RulesFile, Vec<Diagnostic>> {
    let mut p = Parser {
        file: path,
        lines: LineIndex::new(text),
        rule: None,
        diags: Vec::new(),
    };
    let doc = match ImDocument::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            p.push(Some(span), None, e.message().trim().to_string());
            return Err(p.diags);
        }
    };
    let mut rules = Vec::new();
    let mut positions = Vec::new();
    let root = doc.as_table();
    p.check_fields(root, "", &["rule"]);
    if let Some(item) = root.get("rule") {
        let entries = match Node::Item(item).array() {
            Some(entries) => entries,
            None => {
                p.push(
                    item.span(),
                    Some("rule"),
                    "must be an array of tables ([[rule]])".into(),
                );
                Vec::new()
            }
        };
        for (i, entry) in entries.into_iter().enumerate() {
            if let Some((rule, pos)) = p.rule(i + 1, entry) {
                rules.push(rule);
                positions.push(pos);
            }
        }
    }
    p.rule = None;
    let mut seen: Vec<(&str, Position)> = Vec::new();
    for (rule, pos) in rules.iter().zip(&positions) {
        if let Some((_, first)) = seen.iter().find(|(n, _)| *n == rule.name) {
            p.diags.push(Diagnostic {
                severity: Severity::Error,
                file: path.to_string(),
                line: pos.line,
                col: pos.col,
                rule: Some(rule.name.clone()),
                field: Some("name".into()),
                message: format!(
                    "duplicate name: rule {:?} is already defined at line {}",
                    rule.name, first.line
                ),
            });
        } else {
            seen.push((&rule.name, *pos));
        }
    }
    if p.diags.iter().any(Diagnostic::is_error) {
        p.diags.sort_by_key(|d| (d.line, d.col));
        return Err(p.diags);
    }
    let located: Vec<Located> = rules
        .iter()
        .zip(&positions)
        .map(|(rule, pos)| Located {
            file: path,
            pos: *pos,
            rule,
        })
        .collect();
    let warnings = super::validate::conflicts(&located, |_, _| true);
    Ok(RulesFile {
        path: path.to_string(),
        rules,
        positions,
        warnings,
    })
}

/// A rule and where it was defined, for diagnostics that compare rules.
#[derive(Debug, Clone, Copy)]
pub struct Located<'a> {
    /// The file.
    pub file: &'a str,
    /// The rule's place in it.
    pub pos: Position,
    /// The rule.
    pub rule: &'a Rule,
}

/// One TOML value with its span: a table item, an array element, or a
/// table of an array of tables.
#[derive(Clone, Copy)]
enum Node<'a> {
    Item(&'a Item),
    Value(&'a Value),
    Table(&'a toml_edit::Table),
}

impl<'a> Node<'a> {
    fn span(self) -> Option<Range<usize>> {
        match self {
            Node::Item(i) => i.span(),
            Node::Value(v) => v.span(),
            Node::Table(t) => t.span(),
        }
    }

    fn value(self) -> Option<&'a Value> {
        match self {
            Node::Item(i) => i.as_value(),
            Node::Value(v) => Some(v),
            Node::Table(_) => None,
        }
    }

    fn table(self) -> Option<&'a dyn TableLike> {
        match self {
            Node::Item(i) => i.as_table_like(),
            Node::Value(v) => v.as_inline_table().map(|t| t as &dyn TableLike),
            Node::Table(t) => Some(t as &dyn TableLike),
        }
    }

    /// Elements of an array, or the tables of an array of tables.
    fn array(self) -> Option<Vec<Node<'a>>> {
        if let Node::Item(Item::ArrayOfTables(a)) = self {
            return Some(a.iter().map(Node::Table).collect());
        }
        self.value()
            .and_then(Value::as_array)
            .map(|a| a.iter().map(Node::Value).collect())
    }

    fn str(self) -> Option<&'a str> {
        self.value().and_then(Value::as_str)
    }

    fn bool(self) -> Option<bool> {
        self.value().and_then(Value::as_bool)
    }

    /// A float or an integer, as f64.
    fn number(self) -> Option<f64> {
        let v = self.value()?;
        v.as_float().or_else(|| v.as_integer().map(|i| i as f64))
    }

    fn type_name(self) -> &'static str {
        match self {
            Node::Item(Item::Table(_)) | Node::Table(_) => "a table",
            Node::Item(Item::ArrayOfTables(_)) => "an array of tables",
            Node::Item(Item::None) => "nothing",
            Node::Item(Item::Value(v)) | Node::Value(v) => match v {
                Value::String(_) => "a string",
                Value::Integer(_) => "an integer",
                Value::Float(_) => "a float",
                Value::Boolean(_) => "a boolean",
                Value::Datetime(_) => "a date-time",
                Value::Array(_) => "an array",
                Value::InlineTable(_) => "a table",
            },
        }
    }
}

/// A table being read: its node (for the span of "missing field" errors)
/// and its path from the rule.
#[derive(Clone)]
struct Tbl<'a, 'p> {
    table: &'a dyn TableLike,
    span: Option<Range<usize>>,
    path: &'p str,
}

impl<'a> Tbl<'a, '_> {
    fn get(&self, key: &str) -> Option<Node<'a>> {
        self.table.get(key).filter(|i| !i.is_none()).map(Node::Item)
    }

    fn field(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }
}

/// Collects diagnostics while walking one document.
struct Parser<'t> {
    file: &'t str,
    lines: LineIndex<'t>,
    /// The rule being read: its name or `#N`.
    rule: Option<String>,
    diags: Vec<Diagnostic>,
}

impl Parser<'_> {
    fn push(&mut self, span: Option<Range<usize>>, field: Option<&str>, message: String) {
        let pos = self.lines.position(span.map_or(0, |s| s.start));
        self.diags.push(Diagnostic {
            severity: Severity::Error,
            file: self.file.to_string(),
            line: pos.line,
            col: pos.col,
            rule: self.rule.clone(),
            field: field.map(str::to_string),
            message,
        });
    }

    /// An error about the value at `node`.
    fn bad(&mut self, node: Node, field: &str, message: String) {
        self.push(node.span(), Some(field), message);
    }

    fn wrong_type(&mut self, node: Node, field: &str, expected: &str) {
        let msg = format!("expected {expected}, found {}", node.type_name());
        self.bad(node, field, msg);
    }

    /// Reports every key of `table` that is not in `allowed`.
    fn check_fields(&mut self, table: &dyn TableLike, path: &str, allowed: &[&str]) {
        for (key, item) in table.iter() {
            if allowed.contains(&key) {
                continue;
            }
            let span = table
                .key(key)
                .and_then(|k| k.span())
                .or_else(|| item.span());
            let field = if path.is_empty() {
                key.to_string()
            } else {
                format!("{path}.{key}")
            };
            let msg = format!(
                "unknown field {key:?} (expected one of: {})",
                allowed.join(", ")
            );
            self.push(span, Some(&field), msg);
        }
    }

    /// Opens `node` as a table with the fields `allowed`.
    fn table<'a, 'p>(
        &mut self,
        node: Node<'a>,
        path: &'p str,
        allowed: &[&str],
    ) -> Option<Tbl<'a, 'p>> {
        let Some(table) = node.table() else {
            self.wrong_type(node, path, "a table");
            return None;
        };
        self.check_fields(table, path, allowed);
        Some(Tbl {
            table,
            span: node.span(),
            path,
        })
    }

    fn missing(&mut self, t: &Tbl, key: &str, what: &str) {
        self.push(
            t.span.clone(),
            Some(&t.field(key)),
            format!("missing field: {what}"),
        );
    }

    fn opt_str<'a>(&mut self, t: &Tbl<'a, '_>, key: &str) -> Option<Option<(&'a str, Node<'a>)>> {
        match t.get(key) {
            None => Some(None),
            Some(n) => match n.str() {
                Some(s) => Some(Some((s, n))),
                None => {
                    self.wrong_type(n, &t.field(key), "a string");
                    None
                }
            },
        }
    }

    fn opt_bool(&mut self, t: &Tbl, key: &str) -> Option<Option<bool>> {
        match t.get(key) {
            None => Some(None),
            Some(n) => match n.bool() {
                Some(b) => Some(Some(b)),
                None => {
                    self.wrong_type(n, &t.field(key), "true or false");
                    None
                }
            },
        }
    }

    /// A number ≥ 0 (USD).
    fn amount_number(&mut self, n: Node, field: &str) -> Option<f64> {
        match n.number() {
            Some(x) if x.is_finite() && x >= 0.0 => Some(x),
            Some(x) => {
                self.bad(
                    n,
                    field,
                    format!("{x} is not an amount (a number of USD ≥ 0)"),
                );
                None
            }
            None => {
                self.wrong_type(n, field, "a number");
                None
            }
        }
    }

    /// A list of strings, each checked by `check`.
    fn str_list<T>(
        &mut self,
        t: &Tbl,
        key: &str,
        mut check: impl FnMut(&str) -> Result<T, String>,
    ) -> Option<Vec<T>> {
        let Some(n) = t.get(key) else {
            return Some(Vec::new());
        };
        let field = t.field(key);
        let Some(elems) = n
            .value()
            .and_then(Value::as_array)
            .map(|a| a.iter().map(Node::Value).collect::<Vec<_>>())
        else {
            self.wrong_type(n, &field, "an array of strings");
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (i, e) in elems.into_iter().enumerate() {
            let f = format!("{field}[{i}]");
            match e.str() {
                Some(s) => match check(s) {
                    Ok(v) => out.push(v),
                    Err(msg) => {
                        self.bad(e, &f, msg);
                        ok = false;
                    }
                },
                None => {
                    self.wrong_type(e, &f, "a string");
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// One `[[rule]]` table, the `index`th of the file.
    fn rule(&mut self, index: usize, node: Node) -> Option<(Rule, Position)> {
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
        let schedule = self.opt_str(&t, "schedule").and_then(|s| match s {
            None => Some(None),
            Some((s, n)) => match check_schedule(s) {
                Ok(()) => Some(Some(s.to_string())),
                Err(msg) => {
                    self.bad(n, "schedule", msg);
                    None
                }
            },
        });
        let timezone = self.opt_str(&t, "timezone").and_then(|s| match s {
            None => Some(None),
            Some((s, n)) => match check_timezone(s) {
                Ok(()) => Some(Some(s.to_string())),
                Err(msg) => {
                    self.bad(n, "timezone", msg);
                    None
                }
            },
        });
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
        if self.diags.len() > errors_before {
            return None;
        }
        Some((
            Rule {
                name: name?,
                description: description?,
                enabled: enabled?,
                priority: priority?,
                keys: keys?,
                schedule: schedule?,
                timezone: timezone?,
                when: when?,
                set: set?,
                warn_at: warn_at?,
            },
            pos,
        ))
    }

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
        let mut out = Vec::new();
        let mut ok = true;
        for (i, e) in elems.into_iter().enumerate() {
            let field = format!("warn_at[{i}]");
            match e.number() {
                Some(x) if x > 0.0 && x <= 1.0 => out.push(x),
                Some(x) => {
                    self.bad(
                        e,
                        &field,
                        format!("{x} is not a fraction of the budget in (0, 1]"),
                    );
                    ok = false;
                }
                None => {
                    self.wrong_type(e, &field, "a number");
                    ok = false;
                }
            }
        }
        ok.then_some(out)
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
        let workspaces = self.str_list(&t, "workspaces", check_nonempty);
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

    /// `when`: the conditions.
    fn conditions(&mut self, n: Node) -> Option<Conditions> {
        let t = self.table(
            n,
            "when",
            &[
                "budget",
                "credits_below",
                "season",
                "between",
                "weekdays",
                "hours",
            ],
        )?;
        let errors_before = self.diags.len();
        let budget = t.get("budget").map(|b| self.budget(b));
        let credits_below = t.get("credits_below").map(|c| {
            let ct = self.table(c, "when.credits_below", &["usd"])?;
            match ct.get("usd") {
                Some(u) => self.amount(u, "when.credits_below.usd"),
                None => {
                    self.missing(&ct, "usd", "the amount of credits (usd = 10.0)");
                    None
                }
            }
        });
        let season = t.get("season").map(|s| self.season(s));
        let between = t.get("between").map(|b| self.between(b));
        let weekdays = t
            .get("weekdays")
            .map(|_| self.str_list(&t, "weekdays", parse_weekday));
        let hours = t.get("hours").map(|h| match h.str() {
            Some(s) => parse_hours(s)
                .map_err(|msg| self.bad(h, "when.hours", msg))
                .ok(),
            None => {
                self.wrong_type(h, "when.hours", "a string \"HH:MM-HH:MM\"");
                None
            }
        });
        if self.diags.len() > errors_before {
            return None;
        }
        if let Some(Some(w)) = &weekdays {
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
            budget: valid(budget)?,
            credits_below: valid(credits_below)?,
            season: valid(season)?,
            between: valid(between)?,
            weekdays: valid(weekdays)?,
            hours: valid(hours)?,
        })
    }

    fn budget(&mut self, n: Node) -> Option<Budget> {
        let t = self.table(
            n,
            "when.budget",
            &["usd", "window", "scope", "include_byok", "at"],
        )?;
        let errors_before = self.diags.len();
        let usd = match t.get("usd") {
            Some(u) => self.amount(u, "when.budget.usd"),
            None => {
                self.missing(&t, "usd", "the budget in USD (usd = 50.0)");
                None
            }
        };
        let window = match self.opt_str(&t, "window") {
            Some(None) => {
                self.missing(
                    &t,
                    "window",
                    "the spend window (daily, weekly, monthly or total)",
                );
                None
            }
            Some(Some((s, w))) => match s {
                "daily" => Some(Window::Daily),
                "weekly" => Some(Window::Weekly),
                "monthly" => Some(Window::Monthly),
                "total" => Some(Window::Total),
                _ => {
                    self.bad(
                        w,
                        "when.budget.window",
                        format!("unknown window {s:?} (expected daily, weekly, monthly or total)"),
                    );
                    None
                }
            },
            None => None,
        };
        let scope = match self.opt_str(&t, "scope") {
            Some(None) => Some(Scope::Each),
            Some(Some(("each", _))) => Some(Scope::Each),
            Some(Some(("group", _))) => Some(Scope::Group),
            Some(Some((s, w))) => {
                self.bad(
                    w,
                    "when.budget.scope",
                    format!("unknown scope {s:?} (expected each or group)"),
                );
                None
            }
            None => None,
        };
        let include_byok = self
            .opt_bool(&t, "include_byok")
            .map(Option::unwrap_or_default);
        let at = match t.get("at") {
            None => Some(1.0),
            Some(a) => match a.number() {
                Some(x) if x > 0.0 && x <= 10.0 => Some(x),
                Some(x) => {
                    self.bad(
                        a,
                        "when.budget.at",
                        format!("{x} is out of range: the share of the budget must be in (0, 10]"),
                    );
                    None
                }
                None => {
                    self.wrong_type(a, "when.budget.at", "a number");
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
            include_byok: include_byok?,
            at: at?,
        })
    }

    /// `usd`: a number or a budget source.
    fn amount(&mut self, n: Node, field: &str) -> Option<Amount> {
        if n.table().is_none() {
            return self.amount_number(n, field).map(Amount::Fixed);
        }
        let t = self.table(
            n,
            field,
            &["env", "file", "url", "pointer", "headers", "max_age"],
        )?;
        let kinds: Vec<&str> = ["env", "file", "url"]
            .into_iter()
            .filter(|k| t.get(k).is_some())
            .collect();
        if kinds.len() != 1 {
            self.bad(
                n,
                field,
                "a budget source needs exactly one of env, file or url".into(),
            );
            return None;
        }
        let errors_before = self.diags.len();
        let kind = kinds[0];
        for (key, allowed) in [("pointer", kind != "env"), ("headers", kind == "url")] {
            if let Some(x) = t.get(key).filter(|_| !allowed) {
                self.bad(
                    x,
                    &t.field(key),
                    format!(
                        "{key} does not apply to a{} {kind} source",
                        if kind == "env" { "n" } else { "" }
                    ),
                );
            }
        }
        let max_age_secs = match self.opt_str(&t, "max_age") {
            Some(None) => Some(DEFAULT_MAX_AGE_SECS),
            Some(Some((s, m))) => match humantime::parse_duration(s) {
                Ok(d) => Some(d.as_secs()),
                Err(e) => {
                    self.bad(
                        m,
                        &t.field("max_age"),
                        format!("{s:?} is not a duration such as \"6h\" ({e})"),
                    );
                    None
                }
            },
            None => None,
        };
        let pointer = match self.opt_str(&t, "pointer") {
            Some(Some((p, pn))) => match check_pointer(p) {
                Ok(()) => Some(Some(p.to_string())),
                Err(msg) => {
                    self.bad(pn, &t.field("pointer"), msg);
                    None
                }
            },
            other => other.map(|_| None),
        };
        let source = self.opt_str(&t, kind).and_then(|v| {
            let (s, sn) = v?;
            let checked = match kind {
                "env" => check_env_name(s),
                "file" => check_nonempty(s).map(|_| ()),
                _ => crate::config::check_url("the url", s).map(|_| ()),
            };
            if let Err(msg) = checked {
                self.bad(sn, &t.field(kind), msg);
                return None;
            }
            Some(s.to_string())
        });
        let headers = match t.get("headers") {
            None => Some(Vec::new()),
            Some(h) => self.headers(h, &t.field("headers")),
        };
        if self.diags.len() > errors_before {
            return None;
        }
        let value = source?;
        let kind = match kind {
            "env" => SourceKind::Env { name: value },
            "file" => SourceKind::File {
                path: value,
                pointer: pointer?,
            },
            _ => SourceKind::Url {
                url: value,
                pointer: pointer?,
                headers: headers?,
            },
        };
        Some(Amount::Source(Source {
            kind,
            max_age_secs: max_age_secs?,
        }))
    }

    fn headers(&mut self, n: Node, field: &str) -> Option<Vec<(String, String)>> {
        let Some(table) = n.table() else {
            self.wrong_type(n, field, "a table of header names and values");
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (name, item) in table.iter() {
            let f = format!("{field}.{name}");
            let v = Node::Item(item);
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                self.bad(v, &f, format!("{name:?} is not a valid header name"));
                ok = false;
                continue;
            }
            let Some(s) = v.str() else {
                self.wrong_type(v, &f, "a string (a value, or \"env:NAME\")");
                ok = false;
                continue;
            };
            let checked = match s.strip_prefix("env:") {
                Some(var) => check_env_name(var),
                None => reqwest::header::HeaderValue::from_str(s)
                    .map(|_| ())
                    .map_err(|_| "the value has characters a header cannot carry".to_string()),
            };
            match checked {
                Ok(()) => out.push((name.to_string(), s.to_string())),
                Err(msg) => {
                    self.bad(v, &f, msg);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn season(&mut self, n: Node) -> Option<Season> {
        let t = self.table(n, "when.season", &["from", "to"])?;
        let end = |p: &mut Self, key: &str| match p.opt_str(&t, key)? {
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

    fn settings(&mut self, n: Node) -> Option<Settings> {
        let t = self.table(
            n,
            "set",
            &["disabled", "limit", "limit_reset", "include_byok_in_limit"],
        )?;
        let errors_before = self.diags.len();
        let disabled = self.opt_bool(&t, "disabled");
        let include_byok_in_limit = self.opt_bool(&t, "include_byok_in_limit");
        let limit = match t.get("limit") {
            None => Some(None),
            Some(l) if l.str() == Some("none") => Some(Some(None)),
            Some(l) if l.number().is_some() => {
                self.amount_number(l, "set.limit").map(|x| Some(Some(x)))
            }
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
                None
            }
        };
        let limit_reset = match self.opt_str(&t, "limit_reset") {
            Some(None) => Some(None),
            Some(Some(("none", _))) => Some(Some(None)),
            Some(Some((s, r))) => match LimitReset::parse(s) {
                Some(reset) => Some(Some(Some(reset))),
                None => {
                    self.bad(r, "set.limit_reset", format!("unknown limit_reset {s:?} (expected daily, weekly, monthly or \"none\")"));
                    None
                }
            },
            None => None,
        };
        if self.diags.len() > errors_before {
            return None;
        }
        let settings = Settings {
            disabled: disabled?,
            limit: limit?,
            limit_reset: limit_reset?,
            include_byok_in_limit: include_byok_in_limit?,
        };
        if settings.fields().is_empty() {
            self.bad(
                n,
                "set",
                "nothing to set: give disabled, limit, limit_reset or include_byok_in_limit".into(),
            );
            return None;
        }
        Some(settings)
    }
}

/// An optional part of a rule: `None` when given and invalid, else
/// `Some(None)` (not given) or `Some(Some(value))`.
fn valid<T>(part: Option<Option<T>>) -> Option<Option<T>> {
    match part {
        None => Some(None),
        Some(Some(v)) => Some(Some(v)),
        Some(None) => None,
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
];

/// A rule name: letters, digits, `-`, `_`, `.`.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the name is empty".into());
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        Some(c) => Err(format!(
            "{name:?} is not a valid name: {c:?} is not allowed (letters, digits, '-', '_', '.')"
        )),
        None => Ok(()),
    }
}

/// A cron expression of 5 fields, or 6 with seconds.
pub fn check_schedule(expr: &str) -> Result<(), String> {
    croner::Cron::new(expr)
        .with_seconds_optional()
        .parse()
        .map(|_| ())
        .map_err(|e| {
            format!("{expr:?} is not a cron expression (5 fields, or 6 with seconds): {e}")
        })
}

/// An IANA timezone name.
pub fn check_timezone(name: &str) -> Result<(), String> {
    name.parse::<chrono_tz::Tz>()
        .map(|_| ())
        .map_err(|_| format!("unknown timezone {name:?} (an IANA name such as Europe/Berlin)"))
}

fn check_nonempty(s: &str) -> Result<String, String> {
    if s.is_empty() {
        Err("empty string".into())
    } else {
        Ok(s.to_string())
    }
}

fn check_glob(s: &str) -> Result<String, String> {
    check_nonempty(s)?;
    globset::Glob::new(s)
        .map(|_| s.to_string())
        .map_err(|e| format!("{s:?} is not a valid glob: {}", e.kind()))
}

fn check_env_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains(['=', '\0']) {
        Err(format!("{name:?} is not an environment variable name"))
    } else {
        Ok(())
    }
}

/// An RFC 6901 JSON pointer: empty, or `/`-separated with `~` only in `~0`/`~1`.
pub fn check_pointer(p: &str) -> Result<(), String> {
    if !p.is_empty() && !p.starts_with('/') {
        return Err(format!(
            "{p:?} is not a JSON pointer: it must be empty or start with '/' (like \"/teams/a\")"
        ));
    }
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err(format!(
                "{p:?} is not a JSON pointer: '~' must be followed by 0 or 1"
            ));
        }
    }
    Ok(())
}

fn parse_month_day(s: &str) -> Result<(u32, u32), String> {
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

fn local_datetime(d: &toml_edit::Datetime) -> Result<NaiveDateTime, String> {
    if d.offset.is_some() {
        return Err(format!(
            "{d} has a UTC offset: give a local date-time (the rule's timezone applies)"
        ));
    }
    parse_local_datetime(&d.to_string())
}

fn parse_local_datetime(s: &str) -> Result<NaiveDateTime, String> {
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

fn parse_hours(s: &str) -> Result<Hours, String> {
    let bad = || format!("{s:?} is not a time range \"HH:MM-HH:MM\"");
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let time = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M").map_err(|_| bad());
    Ok(Hours {
        start: time(a)?,
        end: time(b)?,
    })
}

fn parse_weekday(s: &str) -> Result<Weekday, String> {
    s.parse::<Weekday>()
        .map_err(|_| format!("{s:?} is not a weekday (mon, tue, wed, thu, fri, sat, sun)"))
}

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
    use toml_edit::{Array, InlineTable, Table, value};
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
    let c = &r.when;
    let mut when = Table::new();
    if let Some(b) = &c.budget {
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
        when.insert("budget", value(bt));
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
    t.insert("set", Item::Table(set));
    t
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
        let age = humantime::format_duration(std::time::Duration::from_secs(s.max_age_secs));
        t.insert("max_age", age.to_string().into());
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

    const EXAMPLE: &str = include_str!("../../config/rules.example.toml");

    fn errors(text: &str) -> Vec<String> {
        parse_rules("r.toml", text)
            .expect_err("the file should be invalid")
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn the_example_file_parses_without_warnings() {
        let file = parse_rules("rules.example.toml", EXAMPLE).unwrap();
        assert_eq!(file.rules.len(), 8);
        assert!(file.warnings.is_empty(), "{:?}", file.warnings);
        let a = &file.rules[0];
        assert_eq!(a.name, "team-a-monthly");
        assert_eq!(a.priority, 10);
        assert_eq!(a.warn_at, vec![0.8, 0.95]);
        let budget = a.when.budget.as_ref().unwrap();
        assert_eq!(
            (budget.usd.clone(), budget.window, budget.scope),
            (Amount::Fixed(50.0), Window::Monthly, Scope::Group)
        );
        assert_eq!(a.set.disabled, Some(true));
    }

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

    #[test]
    fn every_error_is_reported_with_place_rule_and_field() {
        let text = "[[rule]]\nname = \"team-a\"\nkeys = \"all\"\n[rule.when]\nseason = { from = \"02-30\", to = \"03-01\" }\n[rule.set]\nlimit = -1\n";
        let errs = errors(text);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!(
            errs[0],
            "r.toml:5:19: error: rule \"team-a\": when.season.from: \"02-30\" is not a date (MM-DD)"
        );
        assert!(
            errs[1].starts_with("r.toml:7:9: error: rule \"team-a\": set.limit: "),
            "{}",
            errs[1]
        );
    }

    #[test]
    fn a_rule_without_a_name_is_named_by_its_position() {
        let errs = errors(
            "[[rule]]\nname = \"ok\"\nkeys = \"all\"\nset = { disabled = true }\n\n[[rule]]\nkeys = \"all\"\nset = { disabled = true }\n",
        );
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with("r.toml:6:1: error: rule #2: name: missing field"),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn cron_with_and_without_seconds_and_leap_day_are_accepted() {
        let text = "[[rule]]\nname = \"a\"\nkeys = \"all\"\nschedule = \"*/1 * * * * *\"\nwhen.season = { from = \"02-29\", to = \"03-01\" }\nset.disabled = true\n\
                    [[rule]]\nname = \"b\"\nkeys = \"all\"\nschedule = \"*/5 * * * *\"\nwhen.weekdays = [\"Saturday\", \"sun\"]\nset.disabled = true\n";
        let file = parse_rules("r.toml", text).unwrap();
        assert_eq!(
            file.rules[1].when.weekdays,
            Some(vec![Weekday::Sat, Weekday::Sun])
        );
    }

    #[test]
    fn equal_priority_rules_setting_different_values_warn() {
        let text = "[[rule]]\nname = \"a\"\nkeys = { names = [\"team-*\"] }\nset = { limit = 5.0 }\n\
                    [[rule]]\nname = \"b\"\nkeys = { names = [\"team-a-01\"] }\nset = { limit = 6.0, disabled = true }\n\
                    [[rule]]\nname = \"c\"\nkeys = { names = [\"other\"] }\nset = { limit = 7.0 }\n";
        let file = parse_rules("r.toml", text).unwrap();
        let w: Vec<String> = file.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with(
                "r.toml:6:8: warning: rule \"b\": set.limit: sets limit = 6.00 where rule \"a\""
            ),
            "{}",
            w[0]
        );
    }

    #[test]
    fn pointers_follow_rfc_6901() {
        assert!(check_pointer("").is_ok());
        assert!(check_pointer("/a/~0b/~1c").is_ok());
        assert!(check_pointer("a/b").is_err());
        assert!(check_pointer("/a~2").is_err());
        assert!(check_pointer("/a~").is_err());
    }
}
