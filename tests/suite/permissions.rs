//! Files and permissions (SPEC §10; issue 7, item 5): everything keywarden
//! writes that holds account data — the database and its WAL and SHM, a
//! backup, a `report --output` file, the demo's HTML report — is created
//! mode 0600 even under `umask 000`; a configuration file anyone may write
//! is a warning at load.

use crate::daemon;

use daemon::{Setup, budget_rule, eventually, sandbox};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// `keywarden ARGS` through `sh` with `umask 000`, so that any file not
/// created with an explicit mode would come out 0666.
fn under_umask_000(args: &[&str]) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("umask 000 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_keywarden"))
        .args(args)
        .env_remove("OPENROUTER_MANAGEMENT_KEY")
        .env_remove("KEYWARDEN_CONFIG")
        .env_remove("KEYWARDEN_DATABASE")
        .stdin(Stdio::null());
    cmd
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn ok(out: Output, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_database_its_wal_and_shm_backups_and_reports_are_created_0600() {
    let sandbox = sandbox(None).await;
    let setup = Setup::new(&budget_rule("team-a-*", 10.0), "");
    let db = setup.database.display().to_string();
    let config = setup.config.display().to_string();
    let path = |name: &str| -> PathBuf { setup.dir.path().join(name) };

    // The service: the database, its WAL and its SHM while it runs.
    let mut service = under_umask_000(&["--config", &config, "--database", &db, "run"])
        .env("KEYWARDEN_BASE_URL", sandbox.base_url())
        .env("OPENROUTER_MANAGEMENT_KEY", sandbox.management_key())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let files = ["keywarden.db", "keywarden.db-wal", "keywarden.db-shm"];
    let all_there = eventually(Duration::from_secs(20), || {
        files.iter().all(|f| path(f).exists())
    })
    .await;
    let modes: Vec<(&str, u32)> = files
        .iter()
        .filter(|f| path(f).exists())
        .map(|f| (*f, mode(&path(f))))
        .collect();
    let _ = service.kill();
    let _ = service.wait();
    assert!(all_there, "not all of {files:?} were created: {modes:?}");
    assert_eq!(
        modes,
        files.iter().map(|f| (*f, 0o600)).collect::<Vec<_>>(),
        "modes"
    );

    // A backup, and a report in every file format.
    let backup = path("backup.db").display().to_string();
    ok(
        under_umask_000(&[
            "--config",
            &config,
            "--database",
            &db,
            "db",
            "backup",
            &backup,
        ])
        .output()
        .unwrap(),
        "db backup",
    );
    assert_eq!(mode(&path("backup.db")), 0o600, "backup");
    for format in ["html", "csv", "json", "markdown", "table"] {
        let file = path(&format!("report.{format}")).display().to_string();
        ok(
            under_umask_000(&[
                "--config",
                &config,
                "--database",
                &db,
                "report",
                "--since",
                "7d",
                "--format",
                format,
                "--output",
                &file,
            ])
            .output()
            .unwrap(),
            format,
        );
        assert_eq!(mode(Path::new(&file)), 0o600, "report --format {format}");
    }
}

#[test]
fn the_demo_writes_its_html_report_0600() {
    let dir = tempfile::tempdir().unwrap();
    let out = under_umask_000(&["demo", "--days", "3"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    ok(out, "demo");
    let report = dir.path().join("keywarden-demo-report.html");
    assert!(std::fs::read_to_string(&report).unwrap().contains("<html"));
    assert_eq!(mode(&report), 0o600);
}

/// `check-config` on a config file of mode `file_mode`.
fn check_config_with_mode(file_mode: u32) -> (PathBuf, Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("keywarden.toml");
    std::fs::write(&config, "[daemon]\ndry_run = true\n").unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(file_mode)).unwrap();
    let db = dir.path().join("keywarden.db");
    let out = under_umask_000(&[
        "--config",
        config.to_str().unwrap(),
        "--database",
        db.to_str().unwrap(),
        "check-config",
    ])
    .output()
    .unwrap();
    (config, out, dir)
}

#[test]
fn a_config_file_anyone_may_write_is_a_warning_at_load() {
    let (config, out, _dir) = check_config_with_mode(0o666);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "warning: {} is writable by everyone;",
            config.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("chmod o-w {}", config.display())));

    for private in [0o644, 0o660, 0o600] {
        let (_, out, _dir) = check_config_with_mode(private);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(
            !stderr.contains("writable by everyone"),
            "{private:o}: {stderr}"
        );
    }
}
