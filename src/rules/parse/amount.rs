//! The schema of an amount of USD: a number, or a budget source
//! (`{ env }`, `{ file, pointer }`, `{ url, pointer, headers }`, `max_age`).

use super::checks::{
    check_env_name, check_header_name, check_header_value, check_nonempty, check_pointer,
};
use super::walk::{Node, Parser};
use crate::rules::model::{Amount, DEFAULT_MAX_AGE_SECS, Source, SourceKind};
use crate::url_policy::check_url;

impl Parser<'_> {
    /// `usd`: a number or a budget source.
    pub(super) fn amount(&mut self, n: Node, field: &str) -> Option<Amount> {
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
        let max_age_secs = self
            .duration(&t, "max_age")
            .map(|d| d.map_or(DEFAULT_MAX_AGE_SECS, |(secs, _)| secs));
        let pointer = self.checked_str(&t, "pointer", check_pointer);
        let source = self.checked_str(&t, kind, |s| match kind {
            "env" => check_env_name(s),
            "file" => check_nonempty(s).map(|_| ()),
            _ => check_url("the url", s).map(|_| ()),
        });
        let headers = match t.get("headers") {
            None => Some(Vec::new()),
            Some(h) => self.headers(h, &t.field("headers")),
        };
        if self.diags.len() > errors_before {
            return None;
        }
        // The kind's own key is in the table: a valid source has a value.
        let value = source.ok()??;
        let kind = match kind {
            "env" => SourceKind::Env { name: value },
            "file" => SourceKind::File {
                path: value,
                pointer: pointer.ok()?,
            },
            _ => SourceKind::Url {
                url: value,
                pointer: pointer.ok()?,
                headers: headers?,
            },
        };
        Some(Amount::Source(Source {
            kind,
            max_age_secs: max_age_secs.ok()?,
        }))
    }

    /// `headers` of a URL source: names and values, or `env:NAME`.
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
            if let Err(msg) = check_header_name(name) {
                self.bad(v, &f, msg);
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
                None => check_header_value(s),
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
}
