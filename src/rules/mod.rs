//! The rule language (SPEC §3): model, rules files, calendar, budget sources.

pub mod model;

pub use model::Rule;
