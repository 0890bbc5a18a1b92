//! The pure core: (rules, keys, claims, exemptions, budget values, now) → Plan.

pub mod plan;

pub use plan::{Change, ChangeKind, Outcome, Plan};
