//! The pure core: (rules, keys, claims, exemptions, budget values, now) → Plan.

pub mod inputs;
pub mod plan;

pub use inputs::{Claim, Exemption};
pub use plan::{Change, ChangeKind, Outcome, Plan};
