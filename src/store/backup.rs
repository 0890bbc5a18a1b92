//! `keywarden db backup`: a consistent, private copy of the database.

use super::Store;
use super::backend::Pool;
use crate::exit::UsageError;
use anyhow::Context as _;
use std::path::Path;

/// The name of the private directories a backup is written in, before the
/// writer's process id: `.keywarden-backup-PID-RANDOM`.
const PRIVATE_PREFIX: &str = ".keywarden-backup-";

impl Store {
    /// Writes a consistent copy of the database to `target` (`VACUUM INTO`),
    /// mode 0600 from the start: the copy is made in a private directory
    /// beside `target` and linked into place, so an existing file is never
    /// overwritten (that is an [`std::io::ErrorKind::AlreadyExists`] error).
    /// Private directories left beside `target` by a backup whose process
    /// was killed are removed first.
    ///
    /// A PostgreSQL database is refused (a usage error, exit 2): it is
    /// backed up with `pg_dump`, or copied to a SQLite file with
    /// `keywarden db copy --to FILE`.
    pub async fn backup_to(&self, target: &Path) -> anyhow::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let Pool::Sqlite(pool) = &self.pool else {
            return Err(UsageError::new(format!(
                "keywarden db backup copies a SQLite database; {} is PostgreSQL: back it up \
                 with pg_dump, or copy it to a SQLite file with keywarden db copy --to FILE",
                self.database()
            )));
        };
        if target.exists() {
            return Err(std::io::Error::from(std::io::ErrorKind::AlreadyExists))
                .with_context(|| format!("{} already exists", target.display()));
        }
        let dir = target
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        remove_abandoned(dir);
        // Mode 0700, removed with its contents when dropped.
        let private = tempfile::Builder::new()
            .prefix(&format!("{PRIVATE_PREFIX}{}-", std::process::id()))
            .tempdir_in(dir)
            .with_context(|| format!("cannot create a private directory in {}", dir.display()))?;
        let copy = private.path().join("backup.db");
        sqlx::query("VACUUM INTO $1")
            .bind(copy.to_string_lossy().into_owned())
            .execute(pool)
            .await
            .with_context(|| format!("cannot copy the database to {}", copy.display()))?;
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o600))?;
        std::fs::hard_link(&copy, target)
            .with_context(|| format!("cannot write {}", target.display()))
    }
}

/// Removes the private directories in `dir` of backups whose process is
/// gone (killed before it could clean up): they hold a partial copy of the
/// database. Those of running processes are left alone, and so is
/// everything when `/proc` cannot tell; failures are ignored (the backup
/// itself does not depend on them).
fn remove_abandoned(dir: &Path) {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PRIVATE_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let alive = proc.join(pid.to_string()).exists();
        if !alive && entry.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
