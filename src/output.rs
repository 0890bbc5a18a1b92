//! Printing listings for people (tables) and programs (CSV, JSON).

use crate::domain::{Field, FieldValue};
use crate::engine::plan::FieldChange;
use anyhow::Context as _;
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

/// A table for a terminal: one header row, then `rows` (each cell made
/// [`printable`]).
pub fn table(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    for row in rows {
        table.add_row(row.iter().map(|cell| printable(cell)));
    }
    table.to_string()
}

/// `s` safe to print on a terminal: every control character (escape
/// sequences, carriage returns, line breaks, NUL…) shown escaped as Rust
/// writes it (`\u{1b}`, `\r`, `\n`), so that a key name from the API can
/// neither drive the terminal nor forge a line.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// CSV with a header line; every line ends with `\n`.
pub fn csv(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> anyhow::Result<String> {
    let mut writer = ::csv::Writer::from_writer(Vec::new());
    writer.write_record(header)?;
    for row in rows {
        writer.write_record(&row)?;
    }
    Ok(String::from_utf8(writer.into_inner()?)?)
}

/// USD for people: two decimals, `?` when unknown.
pub fn usd_or_unknown(value: Option<f64>) -> String {
    value.map_or_else(|| "?".to_string(), |v| format!("{v:.2}"))
}

/// A number for programs: as is, empty when unknown.
pub fn number_or_empty(value: Option<f64>) -> String {
    value.map_or_else(String::new, |v| v.to_string())
}

/// The first `n` characters of `s`, with `…` when cut.
pub fn shorten(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_string(),
    }
}

/// Writes `text` to `path`, creating the file mode 0600 (a report names
/// keys and rules); an existing file is replaced in place.
pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// How a change's fields are written for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldsStyle {
    /// `disabled false→true; limit 100.00→5.00`: the listings of `plan`,
    /// `apply` and `history`, as the README documents them.
    Listing,
    /// `disabled: true → false, limit: 5.00 → 100.00`: `revert`'s sentences.
    Sentence,
    /// `disabled`, `enabled` or `limit 60.00 → 5.00`, joined with `, `: the
    /// demo's narration.
    Story,
}

/// A change's fields, from → to, in `style`.
pub fn fields_text(fields: &BTreeMap<Field, FieldChange>, style: FieldsStyle) -> String {
    let separator = match style {
        FieldsStyle::Listing => "; ",
        FieldsStyle::Sentence | FieldsStyle::Story => ", ",
    };
    fields
        .iter()
        .map(|(field, change)| match (style, field, change.to) {
            (FieldsStyle::Listing, ..) => format!("{field} {}→{}", change.from, change.to),
            (FieldsStyle::Sentence, ..) => format!("{field}: {} → {}", change.from, change.to),
            (FieldsStyle::Story, Field::Disabled, FieldValue::Disabled(true)) => "disabled".into(),
            (FieldsStyle::Story, Field::Disabled, FieldValue::Disabled(false)) => "enabled".into(),
            (FieldsStyle::Story, ..) => format!("{field} {} → {}", change.from, change.to),
        })
        .collect::<Vec<_>>()
        .join(separator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(printable("team-a-01 ✓"), "team-a-01 ✓");
        assert_eq!(
            printable("a\u{1b}[2J\r\nb\u{0}\u{9b}"),
            "a\\u{1b}[2J\\r\\nb\\0\\u{9b}"
        );
    }

    #[test]
    fn fields_are_written_in_each_style() {
        let fields = BTreeMap::from([
            (
                Field::Disabled,
                FieldChange {
                    from: FieldValue::Disabled(false),
                    to: FieldValue::Disabled(true),
                },
            ),
            (
                Field::Limit,
                FieldChange {
                    from: FieldValue::Limit(Some(100.0)),
                    to: FieldValue::Limit(Some(5.0)),
                },
            ),
        ]);
        assert_eq!(
            fields_text(&fields, FieldsStyle::Listing),
            "disabled false→true; limit 100.00→5.00"
        );
        assert_eq!(
            fields_text(&fields, FieldsStyle::Sentence),
            "disabled: false → true, limit: 100.00 → 5.00"
        );
        assert_eq!(
            fields_text(&fields, FieldsStyle::Story),
            "disabled, limit 100.00 → 5.00"
        );
    }
}
