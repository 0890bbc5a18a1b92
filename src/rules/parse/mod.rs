//! Rules files (SPEC §3): TOML `[[rule]]` tables → [`Rule`] values.
//!
//! [`parse_rules`] is the only way to make a [`Rule`] from text: it walks the
//! TOML document with its spans ([`walk`]) through the schema ([`rule`],
//! [`conditions`], [`amount`]), checking every string ([`checks`], [`scalar`]),
//! and reports every problem it finds (SPEC §3.4), each naming
//! file:line:col, the rule and the field.

mod amount;
pub mod checks;
mod conditions;
mod forecast;
mod rule;
mod scalar;
mod walk;

use super::diagnostic::{Diagnostic, LineIndex, Position, Severity};
use super::model::Rule;
use super::validate::{Located, conflicts, duplicate_names};
use std::path::Path;
use toml_edit::ImDocument;
use walk::{Node, Parser};

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

impl RulesFile {
    /// Each rule with its file and place, for the checks that compare rules.
    pub fn located(&self) -> impl Iterator<Item = Located<'_>> {
        self.rules
            .iter()
            .zip(&self.positions)
            .map(|(rule, pos)| Located {
                file: &self.path,
                pos: *pos,
                rule,
            })
    }
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
    let mut file = RulesFile {
        path: path.to_string(),
        rules: Vec::new(),
        positions: Vec::new(),
        warnings: Vec::new(),
    };
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
                file.rules.push(rule);
                file.positions.push(pos);
            }
        }
    }
    let located: Vec<Located> = file.located().collect();
    p.diags.extend(duplicate_names(&located));
    if p.diags.iter().any(Diagnostic::is_error) {
        p.diags.sort_by_key(|d| (d.line, d.col));
        return Err(p.diags);
    }
    let warnings = conflicts(&located, |_, _| true);
    file.warnings = warnings;
    Ok(file)
}

/// Checks across several valid rules files: a name defined in two files is
/// an error; rules of different files that conflict get a warning.
pub fn across_files(files: &[RulesFile]) -> Vec<Diagnostic> {
    let located: Vec<Located> = files.iter().flat_map(RulesFile::located).collect();
    let mut out = duplicate_names(&located);
    out.extend(conflicts(&located, |a, b| a.file != b.file));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Window;
    use crate::rules::model::{Amount, Scope};
    use chrono::Weekday;

    const EXAMPLE: &str = include_str!("../../../config/rules.example.toml");

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
        assert_eq!(file.rules.len(), 10);
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
}
