//! `keywarden run` as systemd would run it: readiness, watchdog, budget
//! enforcement on a per-second schedule, reload, stop, single instance.

use crate::daemon;

use daemon::{Daemon, PATIENCE, Setup, budget_rule, disabled, eventually, hash_of, sandbox};
use std::time::{Duration, Instant};

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread")]
async fn the_service_enforces_budgets_reloads_and_stops_cleanly_under_systemd() {
    let sandbox = sandbox(None).await;
    let setup = Setup::new(&budget_rule("team-a-*", 10.0), "");
    let mut service = Daemon::start(&setup, &sandbox, "first");
    service.wait_for("READY=1", PATIENCE).await;

    // The watchdog is pinged at least every 2 s (WATCHDOG_USEC=2000000).
    let mut last = Instant::now();
    let mut pings = 0;
    let watch_until = Instant::now() + 5 * SECOND;
    while Instant::now() < watch_until {
        let msg = service
            .next_notification(3 * SECOND)
            .await
            .expect("a notification");
        if msg.lines().any(|l| l == "WATCHDOG=1") {
            assert!(
                last.elapsed() < 2 * SECOND,
                "{:?} between watchdog pings",
                last.elapsed()
            );
            last = Instant::now();
            pings += 1;
        }
    }
    assert!(pings >= 2, "{pings} watchdog pings in 5 s");

    // Spend past the budget: disabled within 3 s.
    let a = hash_of(&sandbox, "team-a-01");
    sandbox.account().spend(&a, 12.0, false).unwrap();
    assert!(
        eventually(PATIENCE, || disabled(&sandbox, "team-a-01")).await,
        "team-a-01 not disabled; stderr:\n{}",
        service.stderr()
    );

    // A second instance on the same database is refused, naming the holder.
    let second = setup.command(&sandbox, None).output().unwrap();
    assert_eq!(second.status.code(), Some(2));
    let message = String::from_utf8_lossy(&second.stderr);
    assert!(
        message.contains(&format!(
            "another keywarden (pid {}) is running on {}",
            service.child.id(),
            setup.database.display()
        )),
        "{message}"
    );

    // An edited rules file takes effect on SIGHUP.
    let b = hash_of(&sandbox, "team-b-01");
    sandbox.account().spend(&b, 12.0, false).unwrap();
    tokio::time::sleep(2 * SECOND).await;
    assert!(
        !disabled(&sandbox, "team-b-01"),
        "team-b-* is not covered yet"
    );
    std::fs::write(&setup.rules, budget_rule("team-*", 10.0)).unwrap();
    service.signal("HUP");
    let reload = service.wait_for("READY=1", PATIENCE).await;
    assert!(
        reload.iter().any(|m| m.lines().any(|l| l == "RELOADING=1")),
        "{reload:?}"
    );
    assert!(
        eventually(PATIENCE, || disabled(&sandbox, "team-b-01")).await,
        "the reloaded rule did not apply; stderr:\n{}",
        service.stderr()
    );

    // A broken file is reported and the rules in force stay: a person
    // re-enabling team-a-01 sees it disabled again.
    std::fs::write(&setup.rules, "[[rule]]\nname = \"cap\"\nkeys = \n").unwrap();
    service.signal("HUP");
    service.wait_for("READY=1", PATIENCE).await;
    assert!(
        eventually(PATIENCE, || service.stderr().contains("reload failed")).await,
        "{}",
        service.stderr()
    );
    sandbox
        .account()
        .patch_key(&a, &serde_json::from_str(r#"{"disabled": false}"#).unwrap())
        .unwrap();
    assert!(
        eventually(PATIENCE, || disabled(&sandbox, "team-a-01")).await,
        "the previous rules are not in force; stderr:\n{}",
        service.stderr()
    );

    // SIGTERM: STOPPING=1, exit 0.
    service.signal("TERM");
    service.wait_for("STOPPING=1", PATIENCE).await;
    let status = service.exit(PATIENCE).await;
    assert_eq!(status.code(), Some(0), "stderr:\n{}", service.stderr());
    assert!(!service.stderr().contains(sandbox.management_key()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_killed_with_sigkill_does_not_block_the_next_one() {
    let sandbox = sandbox(None).await;
    let setup = Setup::new(&budget_rule("team-a-*", 10.0), "");
    let mut first = Daemon::start(&setup, &sandbox, "first");
    first.wait_for("READY=1", PATIENCE).await;
    first.child.kill().unwrap();
    first.child.wait().unwrap();

    let mut next = Daemon::start(&setup, &sandbox, "next");
    next.wait_for("READY=1", PATIENCE).await;
    next.signal("TERM");
    assert_eq!(next.exit(PATIENCE).await.code(), Some(0));
}
