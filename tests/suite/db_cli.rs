//! `keywarden db migrate|backup|prune` through the binary.

use crate::common;

use chrono::{Duration, Utc};
use common::stdout;
use keywarden::domain::Key;
use keywarden::store::Store;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

fn keywarden(dir: &Path, args: &[&str]) -> Output {
    common::without_credential(&dir.join("keywarden.toml"), &dir.join("kw.db"), args)
}

fn setup(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keywarden.toml"), config).unwrap();
    dir
}

#[test]
fn migrate_creates_a_private_database_and_says_its_version() {
    let dir = setup("");
    let out = stdout(&keywarden(dir.path(), &["db", "migrate"]));
    let db = dir.path().join("kw.db");
    let version = out
        .strip_prefix(&format!(
            "database ready: {} (schema version ",
            db.display()
        ))
        .and_then(|rest| rest.strip_suffix(")\n"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(version.parse::<i64>().unwrap() >= 1, "{out}");
    assert_eq!(
        std::fs::metadata(&db).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        stdout(&keywarden(dir.path(), &["db", "migrate"])),
        out,
        "migrating twice is a no-op"
    );
}

#[tokio::test]
async fn backup_is_private_intact_and_never_overwrites() {
    let dir = setup("");
    let store = Store::open(&dir.path().join("kw.db")).await.unwrap();
    store
        .add_exemption(
            "k",
            None,
            Utc::now() + Duration::days(1),
            "kept in the copy",
            Utc::now(),
        )
        .await
        .unwrap();
    store.close().await;
    let target = dir.path().join("backups").join("kw-copy.db");
    std::fs::create_dir(target.parent().unwrap()).unwrap();
    let out = stdout(&keywarden(
        dir.path(),
        &["db", "backup", target.to_str().unwrap()],
    ));
    assert!(out.contains(target.to_str().unwrap()), "{out}");
    assert_eq!(
        std::fs::metadata(&target).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let pool = common::raw(&target).await;
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(check, "ok");
    let reason: String = sqlx::query_scalar("SELECT reason FROM exemptions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(reason, "kept in the copy");
    pool.close().await;

    let before = std::fs::read(&target).unwrap();
    let out = keywarden(dir.path(), &["db", "backup", target.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    assert_eq!(
        std::fs::read(&target).unwrap(),
        before,
        "the existing file is untouched"
    );
}

#[tokio::test]
async fn a_backup_removes_what_a_killed_backup_left_and_nothing_else() {
    let dir = setup("");
    let backups = dir.path().join("backups");
    // What a backup killed mid-copy leaves: its private directory with a
    // partial copy. PID 4294967295 is above any kernel's pid_max.
    let abandoned = backups.join(".keywarden-backup-4294967295-Xa3b9Q");
    std::fs::create_dir_all(&abandoned).unwrap();
    std::fs::write(abandoned.join("backup.db"), b"partial copy").unwrap();
    // One of a backup still running (this test's own process), and a file
    // of the user's that merely looks similar.
    let running = backups.join(format!(".keywarden-backup-{}-Zz81Kp", std::process::id()));
    std::fs::create_dir(&running).unwrap();
    let lookalike = backups.join(".keywarden-backup-notes");
    std::fs::write(&lookalike, b"mine").unwrap();

    let target = backups.join("kw-copy.db");
    let out = keywarden(dir.path(), &["db", "backup", target.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(target.exists());
    assert!(
        !abandoned.exists(),
        "the killed backup's directory is removed"
    );
    assert!(
        running.exists(),
        "a running backup's directory is left alone"
    );
    assert_eq!(std::fs::read(&lookalike).unwrap(), b"mine");
    let mut left: Vec<String> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            running.file_name().unwrap().to_str().unwrap(),
            ".keywarden-backup-notes",
            "kw-copy.db"
        ],
        "the backup's own private directory is gone too"
    );
}

fn key(hash: &str, usage: f64) -> Key {
    serde_json::from_value(
        serde_json::json!({"hash": hash, "name": hash, "disabled": false, "usage": usage}),
    )
    .unwrap()
}

#[tokio::test]
async fn prune_deletes_snapshots_older_than_the_retention() {
    let dir = setup("[history]\nsnapshot_retention = \"30d\"\n");
    let store = Store::open(&dir.path().join("kw.db")).await.unwrap();
    let interval = std::time::Duration::from_secs(60);
    let now = Utc::now();
    store
        .record_snapshots(
            now - Duration::days(45),
            &[key("a", 1.0), key("b", 1.0)],
            interval,
        )
        .await
        .unwrap();
    store
        .record_snapshots(now - Duration::days(40), &[key("a", 2.0)], interval)
        .await
        .unwrap();
    store
        .record_snapshots(now - Duration::days(1), &[key("a", 3.0)], interval)
        .await
        .unwrap();
    store.close().await;
    let out = stdout(&keywarden(dir.path(), &["db", "prune"]));
    assert!(
        out.starts_with("pruned 3 usage snapshots older than "),
        "{out}"
    );
    let out = stdout(&keywarden(dir.path(), &["db", "prune"]));
    assert!(out.starts_with("pruned 0 usage snapshots"), "{out}");
}

#[tokio::test]
async fn prune_keeps_the_longest_forecast_lookback_whatever_the_retention() {
    let dir = setup("[history]\nsnapshot_retention = \"30d\"\n");
    let store = Store::open(&dir.path().join("kw.db")).await.unwrap();
    let rules = keywarden::rules::parse_rules(
        "rules.toml",
        "[[rule]]\nname = \"f\"\nkeys = \"all\"\n\
         when.forecast = { usd = 5.0, window = \"monthly\", lookback = \"42d\" }\nset.limit = 1.0\n",
    )
    .unwrap()
    .rules;
    let now = Utc::now();
    store
        .sync_rules(
            &keywarden::rules::model::Origin::File("rules.toml".into()),
            &rules,
            true,
            now,
        )
        .await
        .unwrap();
    let interval = std::time::Duration::from_secs(60);
    for (days, usage) in [(45, 1.0), (40, 2.0)] {
        store
            .record_snapshots(now - Duration::days(days), &[key("a", usage)], interval)
            .await
            .unwrap();
    }
    store.close().await;
    let out = stdout(&keywarden(dir.path(), &["db", "prune"]));
    assert!(
        out.starts_with("pruned 1 usage snapshots older than "),
        "only the one older than the 42-day lookback: {out}"
    );
}
