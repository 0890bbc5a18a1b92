//! Every writer that can meet a run of the service waits its turn instead
//! of failing with "database is locked": a reload (`SIGHUP`), `rules
//! import`, `exempt add`, `db prune`, `db backup`, a manual `apply` and the
//! notifier, each while the service is in the middle of a long run that
//! commits to the database all the time.

use crate::daemon::{Daemon, PATIENCE, Setup, eventually};
use keywarden::sandbox::{Faults, Sandbox, SandboxOptions, faults::Latency};
use std::process::Output;
use std::time::Duration;

const SECOND: Duration = Duration::from_secs(1);

/// Keys in the sandbox; the long run PATCHes every one of them.
const KEYS: usize = 1000;

/// Unchanged rules ahead of the one a reload changes: the reload reads
/// them all before it writes, which is what a plain `BEGIN` could not
/// survive when the run committed in between.
const FILLER_RULES: usize = 300;

/// The rules file: a rule disabling three keys (so the notifier has events
/// to deliver), `FILLER_RULES` rules selecting nothing, the last described
/// as `last`, and, with `limits`, a rule putting every key on a 5 USD limit.
fn rules(last: &str, limits: bool) -> String {
    let mut text = String::from(
        "[[rule]]\nname = \"off\"\nkeys = { names = [\"team-a-01\", \"team-a-02\", \"team-a-03\"] }\n[rule.set]\ndisabled = true\n\n",
    );
    for i in 1..=FILLER_RULES {
        let description = if i == FILLER_RULES { last } else { "filler" };
        text.push_str(&format!(
            "[[rule]]\nname = \"filler-{i:03}\"\ndescription = \"{description}\"\nkeys = {{ names = [\"nobody-{i:03}\"] }}\n[rule.set]\ndisabled = true\n\n"
        ));
    }
    if limits {
        text.push_str("[[rule]]\nname = \"limits\"\nkeys = \"all\"\n[rule.set]\nlimit = 5.0\n");
    }
    text
}

/// How many PATCHes the sandbox has received.
fn patches(sandbox: &Sandbox) -> usize {
    sandbox
        .account()
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count()
}

/// How many webhook delivery attempts the notifier has recorded.
async fn delivery_attempts(setup: &Setup) -> i64 {
    let pool = crate::common::raw(&setup.database).await;
    let n = sqlx::query_scalar("SELECT COUNT(*) FROM delivery_attempts")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n
}

/// Asserts that a command exited 0, showing its output otherwise.
fn succeeded(what: &str, out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(!stderr.contains("database is locked"), "{what}: {stderr}");
    stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn every_writer_waits_for_a_service_in_the_middle_of_a_long_run() {
    let sandbox = Sandbox::start(
        "127.0.0.1:0",
        SandboxOptions {
            keys: KEYS,
            ..SandboxOptions::default()
        },
    )
    .await
    .unwrap();
    // A webhook nobody answers: the notifier records a failed attempt
    // every few hundred milliseconds, while the run writes too.
    let setup = Setup::new(
        &rules("filler", false),
        "max_changes_per_run = 100000\nmax_disable_fraction = 1.0\n\n\
         [[notify]]\nurl = \"http://127.0.0.1:9/hook\"\nformat = \"json\"\nevents = [\"key_disabled\"]\n",
    );
    let service = Daemon::start(&setup, &sandbox, "service");
    service.wait_for("READY=1", PATIENCE).await;

    // 200 ms a request, 8 at a time: the run that puts 1,000 keys on a
    // limit takes about 25 s, committing every change as it completes.
    sandbox
        .account()
        .set_faults(Faults {
            latency_ms: Some(Latency::Fixed(200)),
            ..Faults::default()
        })
        .unwrap();
    std::fs::write(&setup.rules, rules("filler", true)).unwrap();
    service.signal("HUP");
    service.wait_for("READY=1", PATIENCE).await;
    assert!(
        eventually(PATIENCE, || patches(&sandbox) > 20).await,
        "the long run did not start; stderr:\n{}",
        service.stderr()
    );

    // A reload whose changed rule comes after 300 unchanged ones.
    std::fs::write(&setup.rules, rules("changed during a run", true)).unwrap();
    service.signal("HUP");
    let reload = service.wait_for("READY=1", PATIENCE).await;
    assert!(
        reload.iter().any(|m| m.lines().any(|l| l == "RELOADING=1")),
        "{reload:?}"
    );
    let shown = succeeded(
        "rules show",
        &setup
            .cli(
                &sandbox,
                &["rules", "show", &format!("filler-{FILLER_RULES:03}")],
            )
            .await,
    );
    assert!(shown.contains("changed during a run"), "{shown}");

    // The other writers, one after the other, while the run goes on.
    let attempts_before = delivery_attempts(&setup).await;
    let extra = setup.dir.path().join("extra.toml");
    std::fs::write(
        &extra,
        "[[rule]]\nname = \"extra\"\nkeys = { names = [\"nobody\"] }\n[rule.set]\ndisabled = true\n",
    )
    .unwrap();
    let imported = succeeded(
        "rules import",
        &setup
            .cli(&sandbox, &["rules", "import", extra.to_str().unwrap()])
            .await,
    );
    assert!(imported.contains("extra"), "{imported}");
    succeeded(
        "exempt add",
        &setup
            .cli(
                &sandbox,
                &[
                    "exempt",
                    "add",
                    "team-b-01",
                    "--until",
                    "2d",
                    "--reason",
                    "busy test",
                ],
            )
            .await,
    );
    succeeded("db prune", &setup.cli(&sandbox, &["db", "prune"]).await);
    let backup = setup.dir.path().join("backup.db");
    succeeded(
        "db backup",
        &setup
            .cli(&sandbox, &["db", "backup", backup.to_str().unwrap()])
            .await,
    );
    assert!(backup.exists());
    let mut attempts = delivery_attempts(&setup).await;
    for _ in 0..100 {
        if attempts > attempts_before {
            break;
        }
        tokio::time::sleep(SECOND / 10).await;
        attempts = delivery_attempts(&setup).await;
    }
    assert!(
        attempts > attempts_before,
        "the notifier recorded no attempt meanwhile; stderr:\n{}",
        service.stderr()
    );
    let in_run = patches(&sandbox);
    assert!(
        in_run < KEYS,
        "the run ended ({in_run} PATCHes) before the writers were done: the test proves nothing"
    );

    // A manual apply waits for the service's run, then finds nothing to do.
    let apply = setup.cli(&sandbox, &["apply"]).await;
    let stdout = succeeded("apply", &apply);
    let stderr = String::from_utf8_lossy(&apply.stderr);
    assert!(
        stderr.contains("waiting for the run in progress (keywarden pid"),
        "{stderr}"
    );
    assert!(stdout.contains("no changes"), "{stdout}");

    // Nothing failed on a locked database.
    let log = service.stderr();
    assert!(!log.contains("database is locked"), "{log}");
    assert!(!log.contains("reload failed"), "{log}");
    // Every change of the long run applied, each key PATCHed once.
    let history = succeeded(
        "history",
        &setup
            .cli(
                &sandbox,
                &[
                    "history", "--rule", "limits", "--limit", "100000", "--format", "json",
                ],
            )
            .await,
    );
    let rows: Vec<serde_json::Value> = serde_json::from_str(&history).unwrap();
    assert!(rows.len() > KEYS / 2, "{} changes", rows.len());
    assert!(
        rows.iter().all(|r| r["outcome"] == "applied"),
        "every change of the long run is applied"
    );
    let mut limited: Vec<String> = sandbox
        .account()
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.body.get("limit").is_some())
        .map(|r| r.path)
        .collect();
    let sent = limited.len();
    limited.sort();
    limited.dedup();
    assert_eq!(sent, limited.len(), "a key was PATCHed twice");
    assert_eq!(limited.len(), rows.len(), "one PATCH per change recorded");
}
