//! The PostgreSQL side of the storage benchmark: databases on the test
//! cluster that `.ci/postgres` starts (`KEYWARDEN_TEST_POSTGRES_URL`,
//! `KEYWARDEN_TEST_POSTGRES_PASSWORD`), a fresh one per measurement, and the
//! history fixture copied once from SQLite's and kept between runs.

use keywarden::config::PostgresTarget;
use keywarden::store::Store;
use sqlx::{ConnectOptions as _, Connection as _, PgConnection};
use std::path::Path;
use std::str::FromStr as _;
use std::time::Instant;

/// The test cluster: an admin URL (no password) and the role's password.
pub struct Cluster {
    admin_url: String,
    password: String,
}

impl Cluster {
    /// The cluster the environment names, or `None` (after printing why)
    /// when it names none.
    pub fn from_env() -> Option<Cluster> {
        match (
            std::env::var("KEYWARDEN_TEST_POSTGRES_URL"),
            std::env::var("KEYWARDEN_TEST_POSTGRES_PASSWORD"),
        ) {
            (Ok(admin_url), Ok(password)) => Some(Cluster {
                admin_url,
                password,
            }),
            _ => {
                println!(
                    "storage: PostgreSQL skipped (no KEYWARDEN_TEST_POSTGRES_URL and \
                     KEYWARDEN_TEST_POSTGRES_PASSWORD; eval \"$(.ci/postgres start)\")"
                );
                None
            }
        }
    }

    /// The database `name` on the cluster, as keywarden's configuration names it.
    pub fn target(&self, name: &str) -> PostgresTarget {
        let mut url = url::Url::parse(&self.admin_url).expect("a PostgreSQL URL");
        url.set_path(name);
        PostgresTarget {
            url: url.to_string(),
            password: Some(self.password.clone().into()),
        }
    }

    /// A connection to the cluster's admin database.
    async fn admin(&self) -> PgConnection {
        sqlx::postgres::PgConnectOptions::from_str(&self.admin_url)
            .expect("a PostgreSQL URL")
            .password(&self.password)
            .connect()
            .await
            .expect("connects to the test cluster")
    }

    /// Runs one administrative statement (`CREATE`/`DROP`/`ALTER DATABASE`).
    async fn admin_statement(&self, sql: &str) {
        let mut admin = self.admin().await;
        sqlx::raw_sql(sql)
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        admin.close().await.expect("closes");
    }

    /// Whether the database `name` exists.
    async fn exists(&self, name: &str) -> bool {
        let mut admin = self.admin().await;
        let found: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(name)
                .fetch_one(&mut admin)
                .await
                .expect("reads pg_database");
        admin.close().await.expect("closes");
        found
    }

    /// A fresh, empty database `name` (an older one of that name dropped first).
    pub async fn fresh(&self, name: &str) -> Scratch<'_> {
        self.drop_database(name).await;
        self.admin_statement(&format!("CREATE DATABASE {name}"))
            .await;
        Scratch {
            cluster: self,
            name: name.to_string(),
        }
    }

    /// Drops the database `name` if it exists.
    async fn drop_database(&self, name: &str) {
        self.admin_statement(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await;
    }

    /// The history fixture on the cluster: the SQLite fixture at `sqlite`
    /// copied by `Store::copy_to` (what `keywarden db copy` does) into a
    /// database named after it, then analyzed. The copy goes into a
    /// `_partial` database renamed when complete, so a database of the
    /// final name is always a whole fixture and is reused.
    pub async fn fixture(&self, sqlite: &Path) -> PostgresTarget {
        let name = fixture_name(sqlite);
        if self.exists(&name).await {
            return self.target(&name);
        }
        let partial = format!("{name}_partial");
        let started = Instant::now();
        let scratch = self.fresh(&partial).await;
        let source = Store::open(sqlite).await.expect("opens the SQLite fixture");
        let target = Store::open_postgres(&scratch.target())
            .await
            .expect("opens the PostgreSQL fixture");
        source
            .copy_to(&target)
            .await
            .expect("copies the fixture into PostgreSQL");
        source.close().await;
        target.close().await;
        let mut db = sqlx::postgres::PgConnectOptions::from_str(&scratch.target().url)
            .expect("a PostgreSQL URL")
            .password(&self.password)
            .connect()
            .await
            .expect("connects to the fixture");
        sqlx::raw_sql("VACUUM ANALYZE")
            .execute(&mut db)
            .await
            .expect("analyzes the fixture");
        db.close().await.expect("closes");
        self.admin_statement(&format!("ALTER DATABASE {partial} RENAME TO {name}"))
            .await;
        println!(
            "storage: copied the fixture into PostgreSQL ({name}) in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        self.target(&name)
    }
}

/// The PostgreSQL database name of the SQLite fixture at `sqlite`:
/// `kw_bench_fixture_` and its file stem in lower-case letters, digits and `_`.
fn fixture_name(sqlite: &Path) -> String {
    let stem = sqlite
        .file_stem()
        .and_then(|s| s.to_str())
        .expect("a fixture file name");
    let stem: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("kw_bench_fixture_{stem}")
}

/// A database made for one measurement; call [`Scratch::drop_now`] when done.
pub struct Scratch<'a> {
    cluster: &'a Cluster,
    name: String,
}

impl Scratch<'_> {
    /// The database as keywarden's configuration names it.
    pub fn target(&self) -> PostgresTarget {
        self.cluster.target(&self.name)
    }

    /// Drops the database.
    pub async fn drop_now(self) {
        self.cluster.drop_database(&self.name).await;
    }
}
