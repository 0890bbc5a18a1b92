//! HTML tables as lists of columns: a new column (a workspace, a
//! guardrail) is one more [`Column`] in a page's list.

use maud::{Markup, html};

/// One column: its header and how a row fills its cell.
pub struct Column<T> {
    /// The header.
    pub header: &'static str,
    /// Right-aligned figures.
    pub numeric: bool,
    /// The cell of a row.
    pub cell: fn(&T) -> Markup,
}

impl<T> Column<T> {
    /// A column of text.
    pub const fn text(header: &'static str, cell: fn(&T) -> Markup) -> Column<T> {
        Column {
            header,
            numeric: false,
            cell,
        }
    }

    /// A column of figures.
    pub const fn figures(header: &'static str, cell: fn(&T) -> Markup) -> Column<T> {
        Column {
            header,
            numeric: true,
            cell,
        }
    }
}

/// The table of `rows` in `columns`, or `empty` when there are none.
pub fn table<T>(columns: &[Column<T>], rows: &[T], empty: &str) -> Markup {
    if rows.is_empty() {
        return html! { p.muted { (empty) } };
    }
    html! {
        table {
            thead { tr { @for c in columns { th { (c.header) } } } }
            tbody {
                @for row in rows {
                    tr {
                        @for c in columns {
                            td class=[c.numeric.then_some("num")] { ((c.cell)(row)) }
                        }
                    }
                }
            }
        }
    }
}

/// An amount in USD with two decimals, `?` when unknown.
pub fn usd(value: Option<f64>) -> Markup {
    html! { (crate::output::usd_or_unknown(value)) }
}
