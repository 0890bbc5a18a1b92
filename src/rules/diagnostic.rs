//! Diagnostics of rules files: an error or warning with its place
//! (file:line:col), the rule and the field it is about.

use std::fmt;

/// How bad a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The file is invalid: nothing of it is used.
    Error,
    /// The file is valid, but probably not what was meant.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One finding about a rules file.
///
/// Displayed as `rules.toml:14:9: error: rule "team-a": when.season.from: "02-30" is not a date (MM-DD)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file, as it was named.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub col: usize,
    /// The rule's name, or `#N` (1-based position in the file) when it has none.
    pub rule: Option<String>,
    /// The field, as a dotted path from the rule (`when.budget.usd`).
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl Diagnostic {
    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: ",
            self.file, self.line, self.col, self.severity
        )?;
        match self.rule.as_deref() {
            Some(r) if r.starts_with('#') => write!(f, "rule {r}: ")?,
            Some(r) => write!(f, "rule {r:?}: ")?,
            None => {}
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// A place in a file, for diagnostics about a whole rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
}

/// Turns byte offsets of one text into line:col positions.
#[derive(Debug)]
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    /// Indexes `text`.
    pub(crate) fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { text, starts }
    }

    /// The line:col of byte `offset`.
    pub(crate) fn position(&self, offset: usize) -> Position {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        Position { line, col }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_lines_and_character_columns() {
        let idx = LineIndex::new("ab\nxé y\n");
        assert_eq!(idx.position(0), Position { line: 1, col: 1 });
        assert_eq!(idx.position(3), Position { line: 2, col: 1 });
        assert_eq!(idx.position(7), Position { line: 2, col: 4 });
    }

    #[test]
    fn display_names_file_line_rule_and_field() {
        let d = Diagnostic {
            severity: Severity::Error,
            file: "rules.toml".into(),
            line: 14,
            col: 9,
            rule: Some("team-a".into()),
            field: Some("when.season.from".into()),
            message: "\"02-30\" is not a date (MM-DD)".into(),
        };
        assert_eq!(
            d.to_string(),
            "rules.toml:14:9: error: rule \"team-a\": when.season.from: \"02-30\" is not a date (MM-DD)"
        );
        let unnamed = Diagnostic {
            rule: Some("#2".into()),
            field: None,
            ..d
        };
        assert!(unnamed.to_string().contains("rule #2: "));
    }
}
