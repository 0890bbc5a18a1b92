//! Syncing the `[daemon].rules_files` into the database, at start and on
//! `SIGHUP`: every file is read and checked first, and only when all of them
//! are valid is any of them synced, so a broken file changes nothing.

use crate::exit::UsageError;
use crate::rules::model::Origin;
use crate::rules::read_rules_file;
use crate::store::Store;
use chrono::{DateTime, Utc};
use std::path::PathBuf;

/// Reads, checks and syncs `files` (each file owns its rules: added,
/// updated, removed). An invalid file is a [`UsageError`] listing every
/// diagnostic of every file, and nothing is synced. Warnings are logged.
pub async fn sync_rules_files(
    store: &Store,
    files: &[PathBuf],
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    let mut parsed = Vec::new();
    let mut errors = Vec::new();
    for path in files {
        match read_rules_file(path) {
            Ok(file) => {
                for w in &file.warnings {
                    tracing::warn!("{w}");
                }
                parsed.push((path, file));
            }
            Err(diagnostics) => errors.extend(diagnostics.iter().map(ToString::to_string)),
        }
    }
    if !errors.is_empty() {
        return Err(UsageError::new(errors.join("\n")));
    }
    for (path, file) in parsed {
        let origin = Origin::File(path.display().to_string());
        let summary = store
            .sync_rules(&origin, &file.rules, true, at)
            .await
            .map_err(|e| UsageError::new(format!("{}: {e:#}", path.display())))?;
        let changed = summary.added.len() + summary.updated.len() + summary.removed.len();
        if changed > 0 {
            tracing::info!(
                file = %path.display(),
                added = ?summary.added, updated = ?summary.updated, removed = ?summary.removed,
                "rules file synced"
            );
        }
    }
    Ok(())
}
