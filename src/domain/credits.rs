//! The account's credits, for `credits_below` conditions.

use serde::{Deserialize, Serialize};

/// `GET /credits` data.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Credits {
    /// Total credits purchased, USD.
    pub total_credits: f64,
    /// Total credits used, USD.
    pub total_usage: f64,
}

impl Credits {
    /// Remaining credits: `total_credits - total_usage`.
    pub fn remaining(&self) -> f64 {
        self.total_credits - self.total_usage
    }
}
