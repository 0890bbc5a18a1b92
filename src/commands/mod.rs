//! One module per subcommand: each gathers its inputs, calls the core, prints.

use crate::cli::{Cli, Command};
use crate::config::Config;
use crate::exit::UsageError;
use std::path::PathBuf;
use std::process::ExitCode;

pub mod apply;
pub mod check_config;
pub mod db;
pub mod demo;
pub mod exempt;
pub mod history;
pub mod keys;
pub mod plan;
pub mod report;
pub mod revert;
pub mod rules;
pub mod run;
pub mod sandbox;

/// What every command may need: the global flags and the configuration.
#[derive(Debug)]
pub struct Context {
    /// `--config`.
    pub config_path: Option<PathBuf>,
    /// `--database`.
    pub database: Option<PathBuf>,
}

impl Context {
    /// Loads the configuration (exit 2 on error), with `--database` applied.
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut config = Config::load(self.config_path.as_deref())?;
        if let Some(db) = &self.database {
            config.database.path = Some(db.clone());
        }
        Ok(config)
    }
}

/// Runs the chosen subcommand.
pub async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let ctx = Context {
        config_path: cli.config,
        database: cli.database,
    };
    let Some(command) = cli.command else {
        print!("{}", ORIENTATION);
        return Ok(ExitCode::SUCCESS);
    };
    match command {
        Command::Run => run::run(&ctx).await,
        Command::Apply(args) => apply::run(&ctx, args).await,
        Command::Plan(args) => plan::run(&ctx, args).await,
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

/// The error for a command that this build does not have yet.
pub(crate) fn not_yet(what: &str) -> anyhow::Error {
    UsageError::new(format!("`keywarden {what}` is not available in this build yet"))
}
