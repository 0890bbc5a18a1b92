//! The pure core: (rules, keys, claims, exemptions, budget values, now) → Plan.

pub mod evaluate;
pub mod inputs;
pub mod plan;
pub mod reconcile;
pub mod settle;
#[cfg(test)]
mod tests;

pub use inputs::{Claim, Exemption};
pub use plan::{Change, ChangeKind, Hold, Outcome, Plan};
