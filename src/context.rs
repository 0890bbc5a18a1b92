//! The shell's context, built in one place for every command and the
//! service: the configuration (with `--database` applied), the database it
//! names, the API client, the clock and the [`Runner`] that wires them
//! around the core.

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::openrouter::Client;
use crate::openrouter::client::ClientSettings;
use crate::run::Runner;
use crate::store::Store;
use std::path::PathBuf;
use std::sync::Arc;

/// What a command or the service starts from: the global flags and the clock.
#[derive(Clone)]
pub struct Context {
    /// `--config`.
    pub config_path: Option<PathBuf>,
    /// `--database`.
    pub database: Option<PathBuf>,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("config_path", &self.config_path)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// The context of the global flags, on the system clock.
    pub fn new(config_path: Option<PathBuf>, database: Option<PathBuf>) -> Context {
        Context {
            config_path,
            database,
            clock: Arc::new(SystemClock),
        }
    }

    /// Loads the configuration (exit 2 on error), with `--database` applied.
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut config = Config::load(self.config_path.as_deref())?;
        if let Some(db) = &self.database {
            config.database.path = Some(db.clone());
            config.database.url = None;
        }
        Ok(config)
    }

    /// Loads the configuration and opens the database it names.
    pub async fn open(&self) -> anyhow::Result<Shell> {
        Shell::open(self.config()?, self.clock.clone()).await
    }

    /// The runner of `apply` and `plan`: loads the configuration, builds the
    /// client, then opens the database (none is created when the
    /// management key is missing).
    pub async fn runner(&self) -> anyhow::Result<Runner> {
        let config = self.config()?;
        let client = client(&config)?;
        Ok(Shell::open(config, self.clock.clone())
            .await?
            .runner(client))
    }
}

/// What a command or the service works with: the configuration, its
/// database and the clock.
#[derive(Clone)]
pub struct Shell {
    /// The configuration.
    pub config: Arc<Config>,
    /// The database the configuration names.
    pub store: Store,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
}

impl Shell {
    /// Opens (creating and migrating it if needed) the database `config` names.
    pub async fn open(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Shell> {
        let store = open_store(&config).await?;
        Ok(Shell {
            config: Arc::new(config),
            store,
            clock,
        })
    }

    /// The API client of the configuration.
    pub fn client(&self) -> anyhow::Result<Client> {
        client(&self.config)
    }

    /// The runner over this database and `client`: the one place a
    /// [`Runner`] is built.
    pub fn runner(&self, client: Client) -> Runner {
        Runner::new(
            self.store.clone(),
            client,
            self.config.clone(),
            self.clock.clone(),
        )
    }
}

/// Opens (creating and migrating it if needed) the database `config` names.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    Store::connect(&config.database()?).await
}

/// The API client `config` describes, with the management key of the
/// environment (exit 2 when there is none).
pub fn client(config: &Config) -> anyhow::Result<Client> {
    Client::new(ClientSettings::from_config(config)?)
}
