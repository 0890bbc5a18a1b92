//! The TOML walk: values with their spans, tables read field by field, and
//! the diagnostics collected on the way (file:line:col, rule, field).

use crate::rules::diagnostic::{Diagnostic, LineIndex, Severity};
use std::ops::Range;
use toml_edit::{Item, TableLike, Value};

/// One TOML value with its span: a table item, an array element, or a
/// table of an array of tables.
#[derive(Clone, Copy)]
pub(super) enum Node<'a> {
    /// A value or table of a table.
    Item(&'a Item),
    /// An element of an array.
    Value(&'a Value),
    /// A table of an array of tables.
    Table(&'a toml_edit::Table),
}

impl<'a> Node<'a> {
    /// Where the value is in the text.
    pub(super) fn span(self) -> Option<Range<usize>> {
        match self {
            Node::Item(i) => i.span(),
            Node::Value(v) => v.span(),
            Node::Table(t) => t.span(),
        }
    }

    /// The value, unless it is a table of an array of tables.
    pub(super) fn value(self) -> Option<&'a Value> {
        match self {
            Node::Item(i) => i.as_value(),
            Node::Value(v) => Some(v),
            Node::Table(_) => None,
        }
    }

    /// The value as a table (a `[table]` or an inline table).
    pub(super) fn table(self) -> Option<&'a dyn TableLike> {
        match self {
            Node::Item(i) => i.as_table_like(),
            Node::Value(v) => v.as_inline_table().map(|t| t as &dyn TableLike),
            Node::Table(t) => Some(t as &dyn TableLike),
        }
    }

    /// Elements of an array, or the tables of an array of tables.
    pub(super) fn array(self) -> Option<Vec<Node<'a>>> {
        if let Node::Item(Item::ArrayOfTables(a)) = self {
            return Some(a.iter().map(Node::Table).collect());
        }
        self.value()
            .and_then(Value::as_array)
            .map(|a| a.iter().map(Node::Value).collect())
    }

    /// The value as a string.
    pub(super) fn str(self) -> Option<&'a str> {
        self.value().and_then(Value::as_str)
    }

    /// The value as a boolean.
    pub(super) fn bool(self) -> Option<bool> {
        self.value().and_then(Value::as_bool)
    }

    /// A float or an integer, as f64.
    pub(super) fn number(self) -> Option<f64> {
        let v = self.value()?;
        v.as_float().or_else(|| v.as_integer().map(|i| i as f64))
    }

    /// What the value is, for "expected …, found …".
    pub(super) fn type_name(self) -> &'static str {
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
pub(super) struct Tbl<'a, 'p> {
    /// The table.
    pub(super) table: &'a dyn TableLike,
    /// Where the table is.
    pub(super) span: Option<Range<usize>>,
    /// Its dotted path from the rule (empty for the rule itself).
    pub(super) path: &'p str,
}

impl<'a> Tbl<'a, '_> {
    /// The value of `key`, when given.
    pub(super) fn get(&self, key: &str) -> Option<Node<'a>> {
        self.table.get(key).filter(|i| !i.is_none()).map(Node::Item)
    }

    /// The dotted path of `key` from the rule (`when.budget.usd`).
    pub(super) fn field(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }
}

/// Collects diagnostics while walking one document.
pub(super) struct Parser<'t> {
    /// The file, as it was named.
    pub(super) file: &'t str,
    /// Its text's line starts.
    pub(super) lines: LineIndex<'t>,
    /// The rule being read: its name or `#N`.
    pub(super) rule: Option<String>,
    /// The errors found so far.
    pub(super) diags: Vec<Diagnostic>,
}

impl Parser<'_> {
    /// An error at `span` about `field`, in the rule being read.
    pub(super) fn push(
        &mut self,
        span: Option<Range<usize>>,
        field: Option<&str>,
        message: String,
    ) {
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
    pub(super) fn bad(&mut self, node: Node, field: &str, message: String) {
        self.push(node.span(), Some(field), message);
    }

    /// An error: the value at `node` is not `expected`.
    pub(super) fn wrong_type(&mut self, node: Node, field: &str, expected: &str) {
        let msg = format!("expected {expected}, found {}", node.type_name());
        self.bad(node, field, msg);
    }

    /// Reports every key of `table` that is not in `allowed`.
    pub(super) fn check_fields(&mut self, table: &dyn TableLike, path: &str, allowed: &[&str]) {
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
    pub(super) fn table<'a, 'p>(
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

    /// An error: the table `t` lacks `key`, which is `what`.
    pub(super) fn missing(&mut self, t: &Tbl, key: &str, what: &str) {
        self.push(
            t.span.clone(),
            Some(&t.field(key)),
            format!("missing field: {what}"),
        );
    }

    /// The string `key` of `t`, when given.
    pub(super) fn opt_str<'a>(
        &mut self,
        t: &Tbl<'a, '_>,
        key: &str,
    ) -> Optional<(&'a str, Node<'a>)> {
        let Some(n) = t.get(key) else {
            return Ok(None);
        };
        match n.str() {
            Some(s) => Ok(Some((s, n))),
            None => {
                self.wrong_type(n, &t.field(key), "a string");
                Err(Reported)
            }
        }
    }

    /// The string `key` of `t`, when given, accepted by `check`.
    pub(super) fn checked_str(
        &mut self,
        t: &Tbl,
        key: &str,
        check: impl FnOnce(&str) -> Result<(), String>,
    ) -> Optional<String> {
        let Some((s, n)) = self.opt_str(t, key)? else {
            return Ok(None);
        };
        match check(s) {
            Ok(()) => Ok(Some(s.to_string())),
            Err(msg) => {
                self.bad(n, &t.field(key), msg);
                Err(Reported)
            }
        }
    }

    /// The boolean `key` of `t`, when given.
    pub(super) fn opt_bool(&mut self, t: &Tbl, key: &str) -> Optional<bool> {
        let Some(n) = t.get(key) else {
            return Ok(None);
        };
        match n.bool() {
            Some(b) => Ok(Some(b)),
            None => {
                self.wrong_type(n, &t.field(key), "true or false");
                Err(Reported)
            }
        }
    }

    /// The duration `key` of `t` (`"6h"`, `"3d"`), in seconds, when given.
    pub(super) fn duration<'a>(&mut self, t: &Tbl<'a, '_>, key: &str) -> Optional<(u64, Node<'a>)> {
        let Some((s, n)) = self.opt_str(t, key)? else {
            return Ok(None);
        };
        match humantime::parse_duration(s) {
            Ok(d) => Ok(Some((d.as_secs(), n))),
            Err(e) => {
                self.bad(
                    n,
                    &t.field(key),
                    format!("{s:?} is not a duration such as \"6h\" ({e})"),
                );
                Err(Reported)
            }
        }
    }

    /// Reads the part at `node` with `read`, when it is given.
    pub(super) fn optional<'a, T>(
        &mut self,
        node: Option<Node<'a>>,
        read: impl FnOnce(&mut Self, Node<'a>) -> Option<T>,
    ) -> Optional<T> {
        node.map_or(Ok(None), |n| read(self, n).map(Some).ok_or(Reported))
    }

    /// A number ≥ 0 (USD).
    pub(super) fn amount_number(&mut self, n: Node, field: &str) -> Option<f64> {
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
    pub(super) fn str_list<T>(
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
        self.elements(elems, &field, |e| {
            let s = e.str().ok_or(Refused::WrongType("a string"))?;
            check(s).map_err(Refused::Invalid)
        })
    }

    /// Reads every element of the list `field` with `read`, reporting each
    /// one it refuses; `None` when it refused any.
    pub(super) fn elements<T>(
        &mut self,
        elems: Vec<Node>,
        field: &str,
        mut read: impl FnMut(Node) -> Result<T, Refused>,
    ) -> Option<Vec<T>> {
        let mut out = Vec::new();
        let mut ok = true;
        for (i, e) in elems.into_iter().enumerate() {
            let f = format!("{field}[{i}]");
            match read(e) {
                Ok(v) => out.push(v),
                Err(Refused::WrongType(expected)) => {
                    self.wrong_type(e, &f, expected);
                    ok = false;
                }
                Err(Refused::Invalid(msg)) => {
                    self.bad(e, &f, msg);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }
}

/// Why an element of a list was refused.
pub(super) enum Refused {
    /// It is not of the type expected (named, e.g. "a string").
    WrongType(&'static str),
    /// It is of the right type but not valid: the message says why.
    Invalid(String),
}

/// A part of a rule that is invalid: its diagnostic has been pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Reported;

/// What reading an optional part of a rule gave: `Ok(None)` when it is not
/// given, `Ok(Some(value))`, or `Err(Reported)` when it is invalid.
pub(super) type Optional<T> = Result<Option<T>, Reported>;
