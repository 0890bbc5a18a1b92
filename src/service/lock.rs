//! One service per database (SPEC §7): an exclusive `flock` on `<db>.lock`,
//! which holds the holder's pid. The kernel drops the lock when the process
//! dies, however it dies, so a stale file never blocks a restart.

use crate::exit::UsageError;
use crate::store::run_turn::{holder, open_lock_file, write_holder};
use std::fs::File;
use std::path::{Path, PathBuf};

/// The held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct InstanceLock {
    file: File,
    path: PathBuf,
}

/// The lock file of the database at `db`: `<db>.lock`.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_os_string();
    name.push(".lock");
    PathBuf::from(name)
}

impl InstanceLock {
    /// Takes the lock of the database at `db`, or fails with a
    /// [`UsageError`] (exit 2) naming the pid of the running holder.
    pub fn acquire(db: &Path) -> anyhow::Result<InstanceLock> {
        let path = lock_path(db);
        let mut file = open_lock_file(&path)
            .map_err(|e| UsageError::new(format!("cannot open {}: {e}", path.display())))?;
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => {
                return Err(UsageError::new(format!(
                    "another keywarden (pid {}) is running on {}",
                    holder(&mut file),
                    db.display()
                )));
            }
            Err(fs4::TryLockError::Error(e)) => {
                return Err(UsageError::new(format!(
                    "cannot lock {}: {e}",
                    path.display()
                )));
            }
        }
        write_holder(&mut file)?;
        Ok(InstanceLock { file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for InstanceLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = fs4::FileExt::unlock(&self.file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_database_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("k.db");
        let first = InstanceLock::acquire(&db).unwrap();
        assert_eq!(first.path(), dir.path().join("k.db.lock"));
        let err = InstanceLock::acquire(&db).unwrap_err();
        assert!(err.downcast_ref::<UsageError>().is_some());
        assert_eq!(
            err.to_string(),
            format!(
                "another keywarden (pid {}) is running on {}",
                std::process::id(),
                db.display()
            )
        );
        drop(first);
        InstanceLock::acquire(&db).unwrap();
    }
}
