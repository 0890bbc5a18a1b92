//! The pure core: (rules, keys, claims, exemptions, budget values, now) →
//! Plan. No I/O, no clock, no database: [`crate::run`] gathers the inputs
//! and carries the plan out.
//!
//! [`evaluate`] decides a rule's conditions for a key, [`reconcile`] makes
//! the plan, [`plan`] holds what it decided, [`settle`] says how a row left
//! open by an earlier run ends, [`inputs`] are the claims and exemptions
//! it is given. [`forecast`] and [`outlook`] say where spend is heading,
//! [`warnings`] which early warnings are due.

pub mod evaluate;
pub mod forecast;
pub mod inputs;
pub mod outlook;
pub mod plan;
pub mod reconcile;
pub mod settle;
#[cfg(test)]
mod tests;
pub mod warnings;

pub use inputs::{Claim, Exemption};
pub use plan::{Change, ChangeKind, Hold, Outcome, Plan};
