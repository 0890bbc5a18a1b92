//! `systemd/keywarden.service` is valid and hardened (SPEC §7): checked with
//! `systemd-analyze` when it is installed (CI installs it).

use std::path::PathBuf;
use std::process::Command;

/// The unit with `ExecStart=` pointing at the binary under test, in a temp dir.
fn unit_for_test(dir: &tempfile::TempDir) -> PathBuf {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/keywarden.service"
    ))
    .unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/keywarden run"));
    let path = dir.path().join("keywarden.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/keywarden", env!("CARGO_BIN_EXE_keywarden")),
    )
    .unwrap();
    path
}

fn systemd_analyze() -> Option<Command> {
    let found = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("systemd-analyze is not installed (apt-get install systemd); skipped");
    }
    found.then(|| Command::new("systemd-analyze"))
}

#[test]
fn the_unit_declares_what_the_service_relies_on() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/keywarden.service"
    ))
    .unwrap();
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "DynamicUser=yes",
        "StateDirectory=keywarden",
        "ConfigurationDirectory=keywarden",
        "LoadCredential=openrouter-management-key:/etc/keywarden/management.key",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Environment=KEYWARDEN_CONFIG=/etc/keywarden/keywarden.toml",
    ] {
        assert!(unit.lines().any(|l| l.starts_with(line)), "missing {line}");
    }
}

#[test]
fn systemd_analyze_verify_is_clean() {
    let Some(mut cmd) = systemd_analyze() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = cmd.arg("verify").arg(unit_for_test(&dir)).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
}

#[test]
fn systemd_analyze_security_rates_the_exposure_at_most_1_5() {
    let Some(mut cmd) = systemd_analyze() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = cmd
        .args(["security", "--offline=yes"])
        .arg(unit_for_test(&dir))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no overall exposure in:\n{text}"));
    let figure: f64 = line
        .split(':')
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read {line:?}"));
    assert!(figure <= 1.5, "{line}");
}
