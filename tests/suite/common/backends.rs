//! The two storage backends for tests: a SQLite file in a temp dir, or a
//! fresh database on the throwaway PostgreSQL cluster that `.ci/postgres`
//! starts (`KEYWARDEN_TEST_POSTGRES_URL`, `KEYWARDEN_TEST_POSTGRES_PASSWORD`).
//! Without that cluster the PostgreSQL variants print why and pass, unless
//! `KEYWARDEN_REQUIRE_POSTGRES=1` (set by `.ci/run`), where they fail.

use keywarden::config::PostgresTarget;
use keywarden::store::Store;
use sqlx::Connection as _;

/// A storage backend under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temp dir.
    Sqlite,
    /// A fresh database on the test cluster.
    Postgres,
}

/// What keeps a test's database alive: its temp dir, and on PostgreSQL
/// the database itself (dropped with it).
pub struct Place {
    /// The temp dir (the SQLite file is `kw.db` in it).
    pub dir: tempfile::TempDir,
    /// The PostgreSQL database, if the backend is PostgreSQL.
    pub postgres: Option<TestDatabase>,
}

/// A database created for one test on the test cluster; dropped (with
/// `FORCE`) when this is dropped.
pub struct TestDatabase {
    /// The database's name.
    pub name: String,
    /// Its URL (no password).
    pub url: String,
    /// The password of the test cluster's role.
    pub password: String,
    admin: String,
}

/// The admin URL and password of the test cluster, or `None` (after saying
/// so) when there is none and it is not required.
pub fn cluster() -> Option<(String, String)> {
    match (
        std::env::var("KEYWARDEN_TEST_POSTGRES_URL"),
        std::env::var("KEYWARDEN_TEST_POSTGRES_PASSWORD"),
    ) {
        (Ok(url), Ok(password)) => Some((url, password)),
        _ if std::env::var("KEYWARDEN_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") => {
            panic!(
                "KEYWARDEN_REQUIRE_POSTGRES=1 but no test cluster: eval \"$(.ci/postgres start)\""
            )
        }
        _ => {
            eprintln!("no PostgreSQL test cluster (eval \"$(.ci/postgres start)\"): skipped");
            None
        }
    }
}

impl TestDatabase {
    /// Creates a fresh, empty database on the test cluster.
    pub async fn create() -> Option<TestDatabase> {
        let (admin, password) = cluster()?;
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("kw_{}_{n}_{}", std::process::id(), rand_suffix());
        let mut conn = admin_connection(&admin, &password).await;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("creates a test database");
        let mut url = url::Url::parse(&admin).unwrap();
        url.set_path(&name);
        Some(TestDatabase {
            name,
            url: url.to_string(),
            password,
            admin,
        })
    }

    /// The database as keywarden's configuration names it.
    pub fn target(&self) -> PostgresTarget {
        PostgresTarget {
            url: self.url.clone(),
            password: Some(self.password.clone().into()),
        }
    }

    /// Opens (and migrates) it.
    pub async fn store(&self) -> Store {
        Store::open_postgres(&self.target())
            .await
            .expect("opens the test database")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin, password, name) =
            (self.admin.clone(), self.password.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    let mut conn = admin_connection(&admin, &password).await;
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                })
        })
        .join();
    }
}

async fn admin_connection(admin: &str, password: &str) -> sqlx::PgConnection {
    use std::str::FromStr as _;
    let options = sqlx::postgres::PgConnectOptions::from_str(admin)
        .unwrap()
        .password(password);
    sqlx::PgConnection::connect_with(&options)
        .await
        .expect("connects to the test cluster")
}

fn rand_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{nanos:x}")
}

/// A fresh store on `backend`, and what keeps it alive; `None` when the
/// backend is PostgreSQL and there is no test cluster.
pub async fn fresh_store(backend: Backend) -> Option<(Place, Store)> {
    let dir = tempfile::tempdir().unwrap();
    match backend {
        Backend::Sqlite => {
            let store = Store::open(&dir.path().join("kw.db")).await.unwrap();
            Some((
                Place {
                    dir,
                    postgres: None,
                },
                store,
            ))
        }
        Backend::Postgres => {
            let db = TestDatabase::create().await?;
            let store = db.store().await;
            Some((
                Place {
                    dir,
                    postgres: Some(db),
                },
                store,
            ))
        }
    }
}

/// Writes each test once per backend: `on_both_backends! { async fn
/// name(backend) { … } … }` makes `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($( $(#[$meta:meta])* async fn $name:ident($backend:ident) $body:block )*) => {$(
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn body($backend: $crate::common::backends::Backend) $body
            #[tokio::test]
            async fn sqlite() {
                body($crate::common::backends::Backend::Sqlite).await
            }
            #[tokio::test]
            async fn postgres() {
                if $crate::common::backends::cluster().is_some() {
                    body($crate::common::backends::Backend::Postgres).await
                }
            }
        }
    )*};
}
