//! The `keywarden` binary: parse the command line, set up logging, dispatch.

use clap::Parser;
use keywarden::cli::{Cli, Command};
use keywarden::service::memory;
use keywarden::{commands, exit, logging};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(exit::USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if matches!(cli.command, Some(Command::Run)) {
        memory::limit_arenas();
    }
    if matches!(cli.command, Some(Command::Demo(_))) {
        // SAFETY: no thread has been started yet (the runtime starts below).
        unsafe { keywarden::demo::set_environment() };
    }
    logging::init(cli.log_format, cli.verbose, cli.quiet);
    let runtime = tokio::runtime::Runtime::new().expect("cannot start the tokio runtime");
    match runtime.block_on(commands::dispatch(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            exit::code_for(&err)
        }
    }
}
