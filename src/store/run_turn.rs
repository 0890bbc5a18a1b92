//! Runs never overlap, not even across processes: a run holds an exclusive
//! `flock` on `<db>.run.lock` from its first read of the account to its
//! last record. The service takes it for each of its runs and `apply` and
//! `revert` for theirs, so a manual run started while the service is in the
//! middle of one waits for it to end (and the other way round) instead of
//! planning from a state that the other is changing. The kernel drops the
//! lock when its holder dies, however it dies.

use super::Store;
use anyhow::Context as _;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The held turn; the next run may start once it is dropped.
#[derive(Debug)]
pub struct RunTurn {
    file: File,
}

/// The run lock of the database at `db`: `<db>.run.lock`.
pub fn run_lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_os_string();
    name.push(".run.lock");
    PathBuf::from(name)
}

/// Opens (creating it mode 0600, and its directory) a lock file.
pub(crate) fn open_lock_file(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
}

/// The pid written in a lock file by its holder, or `unknown`.
pub(crate) fn holder(file: &mut File) -> String {
    let mut pid = String::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.read_to_string(&mut pid);
    match pid.trim() {
        "" => "unknown".to_string(),
        pid => pid.to_string(),
    }
}

/// Writes our pid into a lock file we hold.
pub(crate) fn write_holder(file: &mut File) -> std::io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    writeln!(file, "{}", std::process::id())?;
    file.flush()
}

impl Store {
    /// Waits until no other run is in progress on this database, then holds
    /// the turn until the returned value is dropped. `waiting` is called
    /// once, with the pid of the process whose run is in progress, when the
    /// turn is not free at once.
    pub async fn run_turn(&self, waiting: impl FnOnce(&str)) -> anyhow::Result<RunTurn> {
        let path = run_lock_path(
            self.sqlite_path()
                .expect("TEMPORARY: run turns on PostgreSQL"),
        );
        let mut file =
            open_lock_file(&path).with_context(|| format!("cannot open {}", path.display()))?;
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => {
                waiting(&holder(&mut file));
                file =
                    tokio::task::spawn_blocking(move || fs4::FileExt::lock(&file).map(|()| file))
                        .await?
                        .with_context(|| format!("cannot lock {}", path.display()))?;
            }
            Err(fs4::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        write_holder(&mut file)?;
        Ok(RunTurn { file })
    }
}

impl Drop for RunTurn {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = fs4::FileExt::unlock(&self.file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[tokio::test]
    async fn a_second_run_waits_for_the_first_and_is_told_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("k.db")).await.unwrap();
        let first = store.run_turn(|_| panic!("free")).await.unwrap();
        assert!(run_lock_path(store.sqlite_path().unwrap()).exists());

        let held_by = Arc::new(std::sync::Mutex::new(String::new()));
        let got = Arc::new(AtomicBool::new(false));
        let second = {
            let (store, held_by, got) = (store.clone(), held_by.clone(), got.clone());
            tokio::spawn(async move {
                let turn = store
                    .run_turn(|pid| *held_by.lock().unwrap() = pid.to_string())
                    .await
                    .unwrap();
                got.store(true, Ordering::SeqCst);
                drop(turn);
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(!got.load(Ordering::SeqCst), "the second run did not wait");
        drop(first);
        second.await.unwrap();
        assert!(got.load(Ordering::SeqCst));
        assert_eq!(*held_by.lock().unwrap(), std::process::id().to_string());
    }
}
