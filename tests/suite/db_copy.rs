//! `keywarden db copy --to URL|FILE` through the binary: a database made
//! by the last release (`tests/fixtures/release-db/`), migrated, copied into
//! PostgreSQL and back, is the same history row for row; a target that is
//! not empty, an existing file or a password in the URL are refused with
//! exit 2 and nothing changed.

use crate::common::backends::TestDatabase;
use crate::common::{keywarden, stdout};
use std::path::{Path, PathBuf};
use std::process::Output;

/// The database `keywarden demo` made with the release of 2 December 2026
/// (commit b27075e, schema version 9).
const RELEASE_DB: &str = "tests/fixtures/release-db/keywarden-b27075e.db";

/// A private copy of the release's database in `dir`.
fn release_db(dir: &Path) -> PathBuf {
    let path = dir.join("release.db");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(RELEASE_DB),
        &path,
    )
    .unwrap();
    path
}

/// `keywarden` with `[database] url` of `db` (or `--database FILE` when
/// `file` is given), the test cluster's password in the environment.
fn run(dir: &Path, db: &TestDatabase, file: Option<&Path>, args: &[&str]) -> Output {
    let config = dir.join("keywarden.toml");
    std::fs::write(&config, format!("[database]\nurl = {:?}\n", db.url)).unwrap();
    let mut cmd = keywarden();
    cmd.arg("--config").arg(&config);
    if let Some(file) = file {
        cmd.arg("--database").arg(file);
    }
    cmd.env("KEYWARDEN_DATABASE_PASSWORD", &db.password)
        .args(args)
        .output()
        .unwrap()
}

/// Every table's rows as text, sorted, read with SQLite itself.
async fn dump(path: &Path) -> Vec<(String, Vec<String>)> {
    use sqlx::Row as _;
    let pool = crate::common::raw(path).await;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\' \
         AND name NOT LIKE 'sqlite%' ORDER BY name",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut out = Vec::new();
    for table in tables {
        let rows = sqlx::query(&format!("SELECT * FROM {table}"))
            .fetch_all(&pool)
            .await
            .unwrap();
        let mut text: Vec<String> = rows
            .iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| {
                        let v: Option<String> = row
                            .try_get::<Option<String>, _>(i)
                            .or_else(|_| {
                                row.try_get::<Option<i64>, _>(i)
                                    .map(|v| v.map(|v| v.to_string()))
                            })
                            .or_else(|_| {
                                row.try_get::<Option<f64>, _>(i)
                                    .map(|v| v.map(|v| v.to_string()))
                            })
                            .unwrap();
                        v.unwrap_or_else(|| "NULL".into())
                    })
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect();
        text.sort();
        out.push((table, text));
    }
    pool.close().await;
    out
}

#[tokio::test]
async fn a_release_database_goes_to_postgresql_and_back_row_for_row() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let original = release_db(dir.path());
    let to_pg = run(
        dir.path(),
        &db,
        Some(&original),
        &["db", "copy", "--to", &db.url],
    );
    let out = stdout(&to_pg);
    assert!(out.contains("checked row for row"), "{out}");
    assert!(
        out.contains(&format!("to {}", db.target().display())),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("changes ") && !l.trim_end().ends_with(" 0")),
        "{out}"
    );

    // What a user reads is the same from either database.
    let history = |file: Option<&Path>| {
        stdout(&run(
            dir.path(),
            &db,
            file,
            &["history", "--format", "json", "--limit", "100000"],
        ))
    };
    assert_eq!(history(None), history(Some(&original)));

    let back = dir.path().join("back.db");
    let out = stdout(&run(
        dir.path(),
        &db,
        None,
        &["db", "copy", "--to", back.to_str().unwrap()],
    ));
    assert!(out.contains("checked row for row"), "{out}");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&back).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(dump(&back).await, dump(&original).await);
}

#[tokio::test]
async fn a_target_that_is_not_empty_or_exists_is_refused_and_left_alone() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let original = release_db(dir.path());
    stdout(&run(
        dir.path(),
        &db,
        Some(&original),
        &["db", "copy", "--to", &db.url],
    ));
    let again = run(
        dir.path(),
        &db,
        Some(&original),
        &["db", "copy", "--to", &db.url],
    );
    assert_eq!(again.status.code(), Some(2));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("is not empty") && err.contains("only into an empty database"),
        "{err}"
    );
    let history = stdout(&run(
        dir.path(),
        &db,
        None,
        &["history", "--format", "json", "--limit", "100000"],
    ));
    assert_eq!(
        history,
        stdout(&run(
            dir.path(),
            &db,
            Some(&original),
            &["history", "--format", "json", "--limit", "100000"]
        )),
        "the refused copy added nothing"
    );

    let existing = dir.path().join("existing.db");
    std::fs::write(&existing, "not a database").unwrap();
    let out = run(
        dir.path(),
        &db,
        None,
        &["db", "copy", "--to", existing.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    assert_eq!(std::fs::read(&existing).unwrap(), b"not a database");

    let with_password = db.url.replace("keywarden@", "keywarden:hunter2@");
    let out = run(
        dir.path(),
        &db,
        Some(&original),
        &["db", "copy", "--to", &with_password],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("must not be written"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}
