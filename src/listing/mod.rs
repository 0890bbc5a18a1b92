//! The JSON shapes that the CLI's `--format json` and the dashboard's
//! `/api/…` answers share (SPEC §13: "the same shapes as the CLI's").

pub mod keys;
pub mod rules;
