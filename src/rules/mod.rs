//! The rule language (SPEC §3): model, rules files (parse, export), checks
//! that compare rules, calendar, selectors, budget sources.

pub mod calendar;
pub mod diagnostic;
pub mod export;
pub mod model;
pub mod parse;
pub mod selector;
pub mod source;
pub mod validate;

pub use diagnostic::{Diagnostic, Severity};
pub use model::Rule;
pub use parse::{RulesFile, parse_rules, read_rules_file};
