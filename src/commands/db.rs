//! `keywarden db`: create or upgrade the schema, back up, prune snapshots.

use super::Context;
use crate::cli::DbCommand;
use crate::context::Shell;
use crate::domain::timestamp::rfc3339;
use crate::exit::UsageError;
use crate::rules::model::{Rule, longest_lookback};
use std::process::ExitCode;

/// Runs `db`.
pub async fn run(ctx: &Context, command: DbCommand) -> anyhow::Result<ExitCode> {
    let config = ctx.config()?;
    if let DbCommand::Backup { file } = &command
        && file.exists()
    {
        return Err(UsageError::new(format!(
            "{} already exists; keywarden does not overwrite it (choose a new name)",
            file.display()
        )));
    }
    let Shell { config, store, .. } = Shell::open(config, ctx.clock.clone()).await?;
    match command {
        DbCommand::Migrate => {
            println!(
                "database ready: {} (schema version {})",
                store.database(),
                store.schema_version().await?
            );
        }
        DbCommand::Backup { file } => {
            store.backup_to(&file).await?;
            println!("backup written: {} (mode 0600)", file.display());
        }
        DbCommand::Prune => {
            let rules: Vec<Rule> = store.rules().await?.into_iter().map(|s| s.rule).collect();
            // Forecasts read their lookback: it is kept whatever [history] says.
            let retention = chrono::Duration::from_std(config.history.snapshot_retention)?
                .max(longest_lookback(&rules).unwrap_or_default());
            let older_than = ctx.clock.now() - retention;
            let pruned = store.prune_snapshots(older_than).await?;
            println!(
                "pruned {pruned} usage snapshots older than {}",
                rfc3339(older_than)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
