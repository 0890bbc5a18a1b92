//! Two simulated months driven through the real engine against the
//! sandbox, for the report tests: a group budget exceeded and released at
//! the month, a season on and off, one drift, one failure, and a second
//! month whose disabled period is still open at the end of the report.

use crate::common::{Harness, seed};
use chrono::{DateTime, Duration, TimeZone, Utc};
use keywarden::domain::LimitReset;
use keywarden::openrouter::model::KeyPatch;
use keywarden::sandbox::Faults;
use keywarden::sandbox::SeedKey;
use std::path::PathBuf;
use std::process::Output;

pub const RULES: &str = r#"
[[rule]]
name = "team-a-monthly"
description = "Team A shares 50 USD a month"
keys = { names = ["team-a-*"] }
[rule.when]
budget = { usd = 50.0, window = "monthly", scope = "group" }
[rule.set]
disabled = true

[[rule]]
name = "holiday-support"
keys = { names = ["support-*"] }
[rule.when]
season = { from = "11-20", to = "11-25" }
[rule.set]
limit = 5.0
limit_reset = "daily"
"#;

/// The report period: November and December 2026.
pub const SINCE: &str = "2026-11-01";
/// `--until` for the period (a date: the end of that day).
pub const UNTIL: &str = "2026-12-31";

pub fn at(month: u32, day: u32, hour: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, month, day, hour, min, 0)
        .unwrap()
}

/// Minutes keywarden held keys disabled in the scenario:
/// each of team-a-ci and team-a-web from Nov 10 10:00 to Dec 1 00:05
/// (closed by the release and the drift), and again from Dec 20 10:00 (the
/// group budget disables both) up to the end of the report, Jan 1 00:00.
pub fn disabled_minutes() -> (i64, i64, i64) {
    let first = (at(12, 1, 0, 5) - at(11, 10, 10, 0)).num_minutes();
    let open =
        (Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap() - at(12, 20, 10, 0)).num_minutes();
    (first, open, 2 * (first + open))
}

fn keys() -> Vec<SeedKey> {
    vec![
        seed("team-a-ci"),
        seed("team-a-web"),
        SeedKey {
            limit: Some(20.0),
            limit_reset: Some(LimitReset::Monthly),
            ..seed("support-1")
        },
    ]
}

/// Runs the two months; returns the harness (sandbox, store, database).
pub async fn two_months() -> Harness {
    let h = Harness::new(at(11, 1, 10, 0), keys(), RULES, |c| {
        // One attempt per request, so a dropped connection ends `unknown`.
        c.openrouter.max_retries = 0;
    })
    .await;
    let account = h.sandbox.account().clone();
    h.apply().await; // Nov 1: nothing to do.

    account.set_now(at(11, 5, 10, 0));
    h.spend("team-a-ci", 20.0);
    h.apply().await; // group spend 20 < 50

    account.set_now(at(11, 10, 10, 0));
    h.spend("team-a-ci", 10.0);
    h.spend("team-a-web", 25.0);
    let r = h.apply().await; // 55 >= 50: both disabled
    assert_eq!(r.rows.len(), 2, "{:?}", r.rows);

    // The season starts; the PATCH is applied but its connection dropped
    // (unknown), and a person puts the limit back before the next run, so
    // the row is resolved `failed` and planned again.
    account.set_now(at(11, 20, 10, 0));
    account
        .set_faults(Faults {
            drop_rate: Some(1.0),
            ..Faults::default()
        })
        .unwrap();
    h.apply().await;
    account.set_faults(Faults::default()).unwrap();
    account
        .patch_key(
            &h.hash("support-1"),
            &KeyPatch {
                limit: Some(Some(20.0)),
                limit_reset: Some(Some(LimitReset::Monthly)),
                ..KeyPatch::default()
            },
        )
        .unwrap();
    account.set_now(at(11, 20, 10, 30));
    h.apply().await; // resolves the unknown row as failed; asserts again

    account.set_now(at(11, 26, 10, 0));
    h.apply().await; // the season is over: released

    // A person re-enables team-a-web; the month rolls over before the next
    // run: team-a-ci is released, team-a-web is drift.
    account.set_now(at(11, 30, 20, 0));
    account
        .patch_key(
            &h.hash("team-a-web"),
            &KeyPatch {
                disabled: Some(false),
                ..KeyPatch::default()
            },
        )
        .unwrap();
    account.set_now(at(12, 1, 0, 5));
    h.apply().await;

    account.set_now(at(12, 15, 10, 0));
    h.spend("team-a-ci", 30.0);
    h.apply().await;
    account.set_now(at(12, 20, 10, 0));
    h.spend("team-a-ci", 30.0);
    h.apply().await; // 60 >= 50: both disabled again, still at the end of the report
    account.advance(Duration::hours(1));
    h
}

/// The database file of the harness.
pub fn database(h: &Harness) -> PathBuf {
    h.config.database_path()
}

/// Runs the keywarden binary with `args` on the harness's database (and an
/// empty configuration file, or one naming the harness's PostgreSQL
/// database, its password in the environment), off the async runtime.
pub async fn keywarden(h: &Harness, args: &[&str]) -> Output {
    let config = h.dir.path().join("keywarden.toml");
    let mut cmd = crate::common::keywarden();
    cmd.arg("--config").arg(&config);
    match &h.postgres {
        None => {
            if !config.exists() {
                std::fs::write(&config, "").unwrap();
            }
            cmd.arg("--database").arg(database(h));
        }
        Some(db) => {
            if !config.exists() {
                std::fs::write(&config, format!("[database]\nurl = \"{}\"\n", db.url)).unwrap();
            }
            cmd.env("KEYWARDEN_DATABASE_PASSWORD", &db.password);
        }
    }
    tokio::process::Command::from(cmd)
        .args(args)
        .output()
        .await
        .unwrap()
}

/// stdout of a successful run of the binary.
pub async fn keywarden_ok(h: &Harness, args: &[&str]) -> String {
    let out = keywarden(h, args).await;
    assert!(
        out.status.success(),
        "keywarden {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}
