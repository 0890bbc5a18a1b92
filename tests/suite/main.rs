//! keywarden's integration tests, in one test binary.
//!
//! Each module is one area, run as a user runs it: the binary against the
//! sandbox, the service under systemd's protocol, the store on a real
//! database. One binary rather than one per file keeps the build small (every
//! test binary links the whole dependency tree). Pick an area with a filter:
//! `cargo test --test suite faults::`. The soak, which CI runs in release,
//! is its own binary: `tests/soak.rs`.

mod common;
mod daemon;
mod report_history;

mod architecture;
mod busy;
mod check_config;
mod client;
mod config;
mod crash;
mod db_cli;
mod db_copy;
mod demo;
mod engine_apply;
mod exempt_cli;
mod faults;
mod first_run;
mod forecast;
mod fuzz_regressions;
mod guardrails;
mod help;
mod history_cli;
mod hostile_api;
mod keys_list;
mod leadership;
mod metrics;
mod notify;
mod permissions;
mod readme;
mod report;
mod report_browser;
mod revert;
mod rules_cli;
mod sandbox;
mod sandbox_guardrails;
mod sandbox_schema;
mod sdk;
mod secrets;
mod service;
mod store;
mod store_both_a;
mod store_both_b;
mod store_disabled_moves;
mod store_tallies;
mod systemd_unit;
mod ui;
mod ui_browser;
mod workspaces;
