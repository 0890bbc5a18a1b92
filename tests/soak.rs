//! Soak (issue 7, item 6; ignored by default, CI runs it with a bounded
//! duration): `keywarden run` against 10,000 sandbox keys with a rule on a
//! one-second schedule, for `KEYWARDEN_SOAK_SECS` seconds (default 120).
//! Resident memory and open file descriptors of the service are sampled
//! from `/proc` every few seconds: after a warm-up third, memory stays
//! within 10% of its level then and no new file-descriptor high is reached;
//! every run is recorded and none is left `running`.
//!
//! `KEYWARDEN_SOAK_SECS=120 cargo test --release --test soak -- --ignored --nocapture`

mod daemon;

use daemon::Daemon;
use keywarden::sandbox::{Sandbox, SandboxOptions};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One reading of the service's `/proc` entries.
#[derive(Debug, Clone, Copy)]
struct Sample {
    secs: u64,
    rss_kib: u64,
    fds: usize,
}

fn sample(pid: u32, started: Instant) -> Sample {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status");
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    Sample {
        secs: started.elapsed().as_secs(),
        rss_kib,
        fds,
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a soak of KEYWARDEN_SOAK_SECS (default 120) seconds; CI runs it explicitly"]
async fn the_service_stays_flat_over_thousands_of_keys_and_every_run_is_recorded() {
    let secs: u64 = std::env::var("KEYWARDEN_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120);
    let sandbox = Sandbox::start(
        "127.0.0.1:0",
        SandboxOptions {
            keys: 10_000,
            ..SandboxOptions::default()
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    // A group budget over every key, evaluated each second: every run reads
    // all 10,000 keys (101 pages) and sums their spend.
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"all-keys\"\nkeys = \"all\"\nschedule = \"*/1 * * * * *\"\n\
         [rule.when]\nbudget = { usd = 1000000.0, window = \"monthly\", scope = \"group\" }\n\
         [rule.set]\ndisabled = true\n",
    )
    .unwrap();
    let config = dir.path().join("keywarden.toml");
    std::fs::write(
        &config,
        format!(
            "[openrouter]\nrequests_per_second = 2000\nmax_concurrency = 8\n\n\
             [daemon]\nrules_files = [{:?}]\n",
            rules.display().to_string()
        ),
    )
    .unwrap();
    let database = dir.path().join("keywarden.db");
    let child = Command::new(env!("CARGO_BIN_EXE_keywarden"))
        .arg("--config")
        .arg(&config)
        .arg("--database")
        .arg(&database)
        .arg("run")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("KEYWARDEN_BASE_URL", sandbox.base_url())
        .env("OPENROUTER_MANAGEMENT_KEY", sandbox.management_key())
        .env("RUST_LOG", "keywarden=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut service = Daemon::wrap(child, None);
    let pid = service.child.id();
    let started = Instant::now();

    let mut samples = Vec::new();
    while started.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(
            service.child.try_wait().unwrap().is_none(),
            "the service exited; stderr:\n{}",
            service.stderr()
        );
        samples.push(sample(pid, started));
    }
    service.signal("TERM");
    let status = service.exit(Duration::from_secs(30)).await;
    assert!(status.success(), "{status}; stderr:\n{}", service.stderr());

    let url = format!("sqlite://{}?mode=ro", database.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let statuses: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, COUNT(*) FROM runs GROUP BY status ORDER BY status")
            .fetch_all(&pool)
            .await
            .unwrap();
    let keys_seen: Vec<(i64,)> = sqlx::query_as("SELECT DISTINCT keys_seen FROM runs")
        .fetch_all(&pool)
        .await
        .unwrap();
    let last_running: Option<(i64,)> = sqlx::query_as(
        "SELECT id FROM runs WHERE status = 'running' AND id < (SELECT MAX(id) FROM runs)",
    )
    .fetch_optional(&pool)
    .await
    .unwrap();
    pool.close().await;
    let runs: i64 = statuses.iter().map(|(_, n)| n).sum();

    // Thirds: warm-up, middle, last. Growth after warm-up = the last
    // third's peak against the middle third's (peaks, not single samples:
    // the allocator's level moves with each run's garbage).
    let third = (samples.len() / 3).max(1);
    let warm_up = &samples[..third];
    let middle = &samples[third..2 * third];
    let last = &samples[2 * third..];
    let peak = |s: &[Sample]| s.iter().map(|s| s.rss_kib).max().unwrap();
    let fds = |s: &[Sample]| s.iter().map(|s| s.fds).max().unwrap();
    let (rss_middle, rss_last) = (peak(middle), peak(last));
    let max_fds_warm = fds(warm_up);
    let max_fds_after = fds(middle).max(fds(last));
    println!(
        "soak: {secs} s, 10,000 keys, 1 s schedule: {runs} runs {statuses:?}; \
         RSS peak warm-up {} KiB, middle third {rss_middle} KiB, last third {rss_last} KiB ({:+.1}%); \
         fds max during warm-up {max_fds_warm}, after {max_fds_after}",
        peak(warm_up),
        (rss_last as f64 / rss_middle as f64 - 1.0) * 100.0,
    );
    println!(
        "samples (s, RSS KiB, fds): {:?}",
        samples
            .iter()
            .map(|s| (s.secs, s.rss_kib, s.fds))
            .collect::<Vec<_>>()
    );

    assert!(
        rss_last as f64 <= rss_middle as f64 * 1.10,
        "resident memory grew after warm-up: peak {rss_middle} KiB, then {rss_last} KiB"
    );
    assert!(
        max_fds_after <= max_fds_warm,
        "file descriptors grew after warm-up: {max_fds_warm} → {max_fds_after}"
    );
    assert_eq!(keys_seen, [(10_000,)], "every run saw every key");
    assert!(
        runs as f64 >= secs as f64 * 0.8 && runs as u64 <= secs + 5,
        "{runs} runs in {secs} s"
    );
    assert_eq!(last_running, None, "a run other than the last left running");
    assert!(
        statuses.iter().all(|(s, _)| s == "ok" || s == "running"),
        "{statuses:?}"
    );
}
