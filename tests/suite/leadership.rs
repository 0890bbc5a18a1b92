//! Leadership on PostgreSQL (SPEC §14), on the store's side: one process
//! holds the lock at a time, the others are told who holds it, and a lost
//! lock connection is noticed and turns the flag off.

use crate::common::backends::TestDatabase;
use chrono::{DateTime, Utc};
use keywarden::store::leader::{Attempt, Leader, Leading};
use std::time::Duration;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn replica(host: &str, pid: i64, since: &str) -> Leader {
    Leader {
        host: host.to_string(),
        pid,
        since: at(since),
    }
}

#[tokio::test]
async fn one_replica_leads_and_the_others_are_told_who() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let (a, b) = (db.store().await, db.store().await);
    let (a_leads, b_leads) = (Leading::not_yet(), Leading::not_yet());
    let first = replica("host-a", 101, "2026-12-01T10:00:00Z");
    let second = replica("host-b", 202, "2026-12-01T10:00:05Z");

    let Attempt::Led { lock, before } = a.try_lead(&first, &a_leads).await.unwrap() else {
        panic!("the first replica did not lead");
    };
    assert_eq!(before, None);
    assert!(a_leads.is_held());
    match b.try_lead(&second, &b_leads).await.unwrap() {
        Attempt::Held(leader) => assert_eq!(leader, Some(first.clone())),
        Attempt::Led { .. } => panic!("two leaders"),
    }
    assert!(!b_leads.is_held());

    lock.release().await;
    assert!(!a_leads.is_held());
    let Attempt::Led {
        lock: _held,
        before,
    } = b.try_lead(&second, &b_leads).await.unwrap()
    else {
        panic!("the standby did not take over");
    };
    assert_eq!(before, Some(first));
    assert!(b_leads.is_held());
}

#[tokio::test]
async fn a_lost_lock_connection_is_noticed_and_frees_the_lead() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let (a, b) = (db.store().await, db.store().await);
    let (a_leads, b_leads) = (Leading::not_yet(), Leading::not_yet());
    let first = replica("host-a", 101, "2026-12-01T10:00:00Z");
    let Attempt::Led { mut lock, .. } = a.try_lead(&first, &a_leads).await.unwrap() else {
        panic!("the first replica did not lead");
    };
    lock.confirm(Duration::from_millis(600)).await.unwrap();

    // The server ends the lock's session, as a partition or a restart would.
    assert_eq!(terminate_advisory_lock_holders(&db).await, 1);
    let err = lock.confirm(Duration::from_millis(600)).await.unwrap_err();
    assert!(
        format!("{err:#}").contains("the leadership lock's connection is lost"),
        "{err:#}"
    );
    assert!(!a_leads.is_held());
    let second = replica("host-b", 202, "2026-12-01T10:00:05Z");
    assert!(matches!(
        b.try_lead(&second, &b_leads).await.unwrap(),
        Attempt::Led { .. }
    ));
}

/// Ends the sessions holding an advisory lock on `db`: how many.
async fn terminate_advisory_lock_holders(db: &TestDatabase) -> usize {
    use sqlx::Connection as _;
    use std::str::FromStr as _;
    let options = sqlx::postgres::PgConnectOptions::from_str(&db.url)
        .unwrap()
        .password(&db.password);
    let mut conn = sqlx::PgConnection::connect_with(&options).await.unwrap();
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(l.pid) FROM pg_locks l \
         JOIN pg_database d ON d.oid = l.database \
         WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    ended.into_iter().filter(|&e| e).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leader_whose_lock_connection_is_lost_sends_no_new_request_and_the_next_run_settles() {
    use crate::common::{Harness, seed};
    use keywarden::engine::Outcome;
    use keywarden::sandbox::faults::{Faults, Latency};
    use keywarden::store::leader::LeadershipLost;

    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let names: Vec<String> = (0..20).map(|n| format!("k-{n:02}")).collect();
    let h = Harness::new(
        at("2026-12-01T10:00:00Z"),
        names.iter().map(|n| seed(n)).collect(),
        &crate::daemon::budget_rule("k-*", 10.0),
        |c| c.openrouter.max_concurrency = 1,
    )
    .await;
    for name in &names {
        h.spend(name, 12.0);
    }
    h.sandbox
        .account()
        .set_faults(Faults {
            latency_ms: Some(Latency::Fixed(100)),
            path: Some("/keys/".to_string()),
            ..Faults::default()
        })
        .unwrap();

    // The runner leads by a real lock, watched as the service watches it.
    let leading = Leading::not_yet();
    let store = db.store().await;
    let me = replica("host-a", 101, "2026-12-01T10:00:00Z");
    let Attempt::Led { mut lock, .. } = store.try_lead(&me, &leading).await.unwrap() else {
        panic!("no lead");
    };
    let runner = h.runner.clone().leading_by(leading.clone());
    let request = keywarden::run::RunRequest {
        trigger: keywarden::run::Trigger::Schedule,
        due: None,
        dry_run: false,
        force: false,
    };
    let patches = |h: &Harness| {
        h.sandbox
            .account()
            .requests()
            .iter()
            .filter(|r| r.method == "PATCH")
            .count()
    };
    // While PATCHes are in flight the server ends the lock's session.
    let cut = async {
        assert!(crate::daemon::eventually(crate::daemon::PATIENCE, || patches(&h) >= 3).await);
        assert_eq!(terminate_advisory_lock_holders(&db).await, 1);
        while lock.confirm(Duration::from_millis(600)).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let (result, ()) = tokio::join!(runner.run(&request), cut);
    let err = result.unwrap_err();
    assert!(err.downcast_ref::<LeadershipLost>().is_some(), "{err:#}");
    let sent = patches(&h);
    assert!(sent < names.len(), "every PATCH was sent: {sent}");
    let history = h.history().await;
    let pending = history
        .iter()
        .filter(|c| c.outcome == Outcome::Pending)
        .count();
    assert_eq!(pending + sent, names.len(), "{history:?}");

    // The next leader's run resolves the open rows and sends the rest.
    let report = h.apply().await;
    assert!(report.error.is_none(), "{:?}", report.error);
    assert!(names.iter().all(|n| h.key(n).disabled));
    let applied_rows = h
        .history()
        .await
        .iter()
        .filter(|c| c.outcome == Outcome::Applied)
        .count();
    let applied_patches = h
        .sandbox
        .account()
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH" && r.applied)
        .count();
    assert_eq!(applied_rows, names.len());
    assert_eq!(applied_patches, names.len(), "a key was sent twice");
    assert!(
        h.history()
            .await
            .iter()
            .all(|c| c.outcome != Outcome::Pending)
    );
}
