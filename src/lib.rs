//! keywarden: a budget watchdog for OpenRouter API keys.
//!
//! The functional core is [`engine`] (rules + observed keys + claims + now
//! → a plan), speaking the vocabulary of [`domain`]; everything else is the
//! shell that gathers its inputs and carries the plan out ([`run`]).

pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod context;
pub mod demo;
pub mod domain;
pub mod engine;
pub mod exit;
pub mod listing;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod openrouter;
pub mod output;
pub mod report;
pub mod rules;
pub mod run;
pub mod sandbox;
pub mod service;
pub mod store;
pub mod timearg;
pub mod ui;
pub mod url_policy;
