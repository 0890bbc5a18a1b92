//! Soak (issue 7, item 6; ignored by default, CI runs it with a bounded
//! duration): `keywarden run` against 10,000 sandbox keys with a rule on a
//! one-second schedule, for `KEYWARDEN_SOAK_SECS` seconds (default 120).
//! Resident memory and open file descriptors of the service are sampled
//! from `/proc` every 250 ms; every 3 s the lowest reading is the level
//! between runs. After a warm-up third, that level (the lowest of the
//! last third) stays within 10% of the middle third's and
//! file descriptors stay within the connection pool's breathing room;
//! every run is recorded and none is left `running`.
//!
//! `KEYWARDEN_SOAK_SECS=120 cargo test --release --test soak -- --ignored --nocapture`

// The service tests' harness; the soak uses part of it.
#[allow(dead_code)]
#[path = "suite/daemon/mod.rs"]
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
    threads: u64,
}

fn sample(pid: u32, started: Instant) -> Sample {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/PID/status"))
    };
    let rss_kib = field("VmRSS:");
    let threads = field("Threads:");
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    Sample {
        secs: started.elapsed().as_secs(),
        rss_kib,
        fds,
        threads,
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
        // glibc gives each new thread that allocates an arena of its own:
        // when the runtime adds a worker thread mid-soak, resident memory
        // steps up once by ~17 MiB and stays flat (seen with the thread
        // count going 7 → 8). Two arenas keep that bounded step out of a
        // measurement that is after leaks.
        .env("MALLOC_ARENA_MAX", "2")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut service = Daemon::wrap(child, None);
    let pid = service.child.id();
    let started = Instant::now();

    // Every 3 s, the reading with the least memory among twelve taken
    // 250 ms apart: the level the service returns to between runs. One
    // reading lands inside a run (which holds tens of MiB for a moment,
    // every second) about a third of the time, and in step with the
    // schedule it can do so window after window; what a leak raises is the
    // level between runs. The highest reading is kept as the peak.
    let mut samples = Vec::new();
    let mut peaks = Vec::new();
    while started.elapsed() < Duration::from_secs(secs) {
        let mut window = Vec::new();
        for _ in 0..12 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            assert!(
                service.child.try_wait().unwrap().is_none(),
                "the service exited; stderr:\n{}",
                service.stderr()
            );
            window.push(sample(pid, started));
        }
        peaks.push(window.iter().map(|s| s.rss_kib).max().unwrap());
        samples.push(*window.iter().min_by_key(|s| s.rss_kib).unwrap());
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
    // third's lowest level between runs against the middle third's: a leak
    // raises the level for good, while the allocator may keep a run's
    // freed pages for a few runs (seen: 12 MiB for 20 s, then returned).
    let third = (samples.len() / 3).max(1);
    let warm_up = &samples[..third];
    let middle = &samples[third..2 * third];
    let last = &samples[2 * third..];
    let lowest = |s: &[Sample]| s.iter().map(|s| s.rss_kib).min().unwrap();
    let fds = |s: &[Sample]| s.iter().map(|s| s.fds).max().unwrap();
    let (rss_middle, rss_last) = (lowest(middle), lowest(last));
    let max_fds_warm = fds(warm_up);
    let max_fds_after = fds(middle).max(fds(last));
    println!(
        "soak: {secs} s, 10,000 keys, 1 s schedule: {runs} runs {statuses:?}; \
         RSS between runs, lowest of the middle third {rss_middle} KiB, of the last third \
         {rss_last} KiB ({:+.1}%), peak after warm-up {} KiB; fds max during warm-up {max_fds_warm}, after {max_fds_after}",
        (rss_last as f64 / rss_middle as f64 - 1.0) * 100.0,
        peaks[third..].iter().max().unwrap(),
    );
    println!(
        "samples (s, RSS KiB, fds, threads): {:?}",
        samples
            .iter()
            .map(|s| (s.secs, s.rss_kib, s.fds, s.threads))
            .collect::<Vec<_>>()
    );

    assert!(
        rss_last as f64 <= rss_middle as f64 * 1.10,
        "resident memory grew after warm-up: {rss_middle} KiB between runs, then {rss_last} KiB"
    );
    // The HTTP pool holds up to max_concurrency (8) sockets, more or fewer
    // from one sample to the next; a leak would add one per run (120 here).
    assert!(
        max_fds_after <= max_fds_warm + 8,
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
