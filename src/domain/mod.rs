//! The vocabulary every layer shares.

pub mod event;
pub mod timestamp;
