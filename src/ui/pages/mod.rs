//! The five pages (SPEC §13), rendered on the server with maud.

pub mod budgets;
pub mod history;
pub mod keys;
pub mod layout;
pub mod overview;
pub mod rules;
