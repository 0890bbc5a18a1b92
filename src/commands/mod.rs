//! One module per subcommand: each gathers its inputs, calls the core, prints.

use crate::cli::{Cli, Command};
pub use crate::context::Context;
use crate::exit::UsageError;
use crate::run::{RunError, Runner};
use std::collections::BTreeSet;
use std::process::ExitCode;

pub mod apply;
pub mod check_config;
pub mod db;
pub mod demo;
pub mod exempt;
pub mod forecast;
pub mod history;
pub mod key_arg;
pub mod keys;
pub mod plan;
pub mod report;
pub mod revert;
pub mod rules;
pub mod run;
pub mod sandbox;
mod turn;
pub mod ui;

/// Runs the chosen subcommand.
pub async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let ctx = Context::new(cli.config, cli.database);
    let Some(command) = cli.command else {
        print!("{}", ORIENTATION);
        return Ok(ExitCode::SUCCESS);
    };
    match command {
        Command::Run => run::run(&ctx).await,
        Command::Apply(args) => apply::run(&ctx, args).await,
        Command::Plan(args) => plan::run(&ctx, args).await,
        Command::Forecast(args) => forecast::run(&ctx, args).await,
        Command::CheckConfig => check_config::run(&ctx).await,
        Command::Rules(cmd) => rules::run(&ctx, cmd).await,
        Command::Keys(cmd) => keys::run(&ctx, cmd).await,
        Command::Exempt(cmd) => exempt::run(&ctx, cmd).await,
        Command::History(args) => history::run(&ctx, args).await,
        Command::Report(args) => report::run(&ctx, args).await,
        Command::Revert(args) => revert::run(&ctx, args).await,
        Command::Db(cmd) => db::run(&ctx, cmd).await,
        Command::Sandbox(args) => sandbox::run(args).await,
        Command::Demo(args) => demo::run(&ctx, args).await,
        Command::Ui(args) => ui::run(&ctx, args).await,
    }
}

/// Printed by `keywarden` with no command.
const ORIENTATION: &str = "\
keywarden: a budget watchdog for OpenRouter API keys.

New here? See it work offline in a few seconds:
    keywarden demo

Then, against your account (a management key in OPENROUTER_MANAGEMENT_KEY):
    keywarden keys list                          what the account holds
    keywarden rules import config/rules.example.toml
    keywarden plan                               what the rules would change, and why
    keywarden apply                              change it now
    keywarden run                                the service (see the README's systemd section)

keywarden --help lists every command; keywarden COMMAND --help explains one.
";

/// Says on standard error that this command waits for the run of another
/// process on the same database (the service's, or another `apply`).
pub(crate) fn waiting_for_run(pid: &str) {
    eprintln!("waiting for the run in progress (keywarden pid {pid}) to finish…");
}

/// The instant of an `--at` flag (RFC 3339, a date, …), relative to `now`.
pub(crate) fn at_arg(
    at: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Option<chrono::DateTime<chrono::Utc>>> {
    at.map(|s| {
        crate::timearg::parse_time(s, now).map_err(|e| UsageError::new(format!("--at: {e}")))
    })
    .transpose()
}

/// The rules `--rule` names (`None` = all), refusing unknown names; and the
/// first-run hint when there are no rules at all.
pub(crate) async fn due_rules(
    runner: &Runner,
    names: &[String],
) -> anyhow::Result<Option<BTreeSet<String>>> {
    let known: BTreeSet<String> = runner
        .store
        .rules()
        .await?
        .into_iter()
        .map(|r| r.rule.name)
        .collect();
    if known.is_empty() {
        return Err(UsageError::new(
            "keywarden has no rules; import config/rules.example.toml to start:\n    keywarden rules import config/rules.example.toml",
        ));
    }
    if names.is_empty() {
        return Ok(None);
    }
    for name in names {
        if !known.contains(name) {
            return Err(UsageError::new(format!(
                "--rule: no rule named {name:?} (see keywarden rules list)"
            )));
        }
    }
    Ok(Some(names.iter().cloned().collect()))
}

/// The error a run that could not start ends with (exit 1), in words that
/// say what to do: the same as `keys list` and `apply` print ([`RunError`]'s
/// display is [`crate::openrouter::ApiError::explain`]). keywarden's own
/// failures pass through as they are.
pub(crate) fn api_failure(err: RunError) -> anyhow::Error {
    match err {
        RunError::Internal(e) => e,
        api => anyhow::Error::new(crate::exit::Failure(api.to_string())),
    }
}
