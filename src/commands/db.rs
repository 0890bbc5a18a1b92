//! `keywarden db`: create or upgrade the schema, back up, prune snapshots.

use super::Context;
use crate::cli::DbCommand;
use crate::config::{Database, PostgresTarget, process_env};
use crate::context::Shell;
use crate::domain::timestamp::rfc3339;
use crate::exit::UsageError;
use crate::rules::model::{Rule, longest_lookback};
use crate::store::Store;
use crate::store::copy::CopyError;
use std::path::PathBuf;
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
        DbCommand::Copy { to } => copy(&store, &to).await?,
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

/// `db copy --to URL|FILE`: into a new SQLite file or an empty PostgreSQL
/// database; a file this command created is removed again when the copy
/// fails.
async fn copy(store: &Store, to: &str) -> anyhow::Result<()> {
    let target = if to.starts_with("postgres://") || to.starts_with("postgresql://") {
        Database::Postgres(PostgresTarget::with_env(to, &process_env)?)
    } else {
        let path = PathBuf::from(to);
        if path.exists() {
            return Err(UsageError::new(format!(
                "{} already exists; keywarden copies into a new file only (choose a new name)",
                path.display()
            )));
        }
        Database::Sqlite(path)
    };
    if target.to_string() == store.database().to_string() {
        return Err(UsageError::new(format!(
            "{target} is the database being copied"
        )));
    }
    let result = async {
        let sink = Store::connect(&target).await?;
        let summary = store.copy_to(&sink).await;
        sink.close().await;
        summary
    }
    .await;
    let summary = match result {
        Ok(summary) => summary,
        Err(e) => {
            if let Database::Sqlite(path) = &target {
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
            }
            return Err(match e.downcast::<CopyError>() {
                Ok(e @ CopyError::NotEmpty { .. }) => UsageError::new(e.to_string()),
                Ok(e) => e.into(),
                Err(e) => e,
            });
        }
    };
    let rows: u64 = summary.tables.iter().map(|(_, n)| n).sum();
    for (table, n) in &summary.tables {
        println!("{table:<22} {n:>10}");
    }
    println!(
        "copied {rows} rows from {} to {target}, checked row for row",
        store.database()
    );
    Ok(())
}
