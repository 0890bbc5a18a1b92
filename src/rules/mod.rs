//! The rule language (SPEC §3): model, rules files, calendar, budget sources.

pub mod calendar;
pub mod diagnostic;
pub mod file;
pub mod model;
pub mod selector;
pub mod source;
pub mod validate;

pub use diagnostic::{Diagnostic, Severity};
pub use file::{RulesFile, parse_rules, read_rules_file};
pub use model::Rule;
