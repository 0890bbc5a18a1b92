//! The vocabulary every layer shares.

pub mod event;
