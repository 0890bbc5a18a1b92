//! `keywarden db`: create or upgrade the schema, back up, prune snapshots.

use super::Context;
use crate::cli::DbCommand;
use crate::clock::{Clock as _, SystemClock};
use crate::exit::UsageError;
use crate::store::{Store, ts};
use std::process::ExitCode;

/// Runs `db`.
pub async fn run(ctx: &Context, command: DbCommand) -> anyhow::Result<ExitCode> {
    let config = ctx.config()?;
    let path = config.database_path();
    match command {
        DbCommand::Migrate => {
            let store = Store::open(&path).await?;
            println!(
                "database ready: {} (schema version {})",
                path.display(),
                store.schema_version().await?
            );
        }
        DbCommand::Backup { file } => {
            if file.exists() {
                return Err(UsageError::new(format!(
                    "{} already exists; keywarden does not overwrite it (choose a new name)",
                    file.display()
                )));
            }
            let store = Store::open(&path).await?;
            store.backup_to(&file).await?;
            println!("backup written: {} (mode 0600)", file.display());
        }
        DbCommand::Prune => {
            let retention = chrono::Duration::from_std(config.history.snapshot_retention)?;
            let older_than = SystemClock.now() - retention;
            let store = Store::open(&path).await?;
            let pruned = store.prune_snapshots(older_than).await?;
            println!(
                "pruned {pruned} usage snapshots older than {}",
                ts(older_than)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
