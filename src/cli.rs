//! The command line (SPEC §6), as clap definitions.

use crate::logging::LogFormat;
use crate::report::GroupBy;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// keywarden: a budget watchdog for OpenRouter API keys.
#[derive(Debug, Parser)]
#[command(
    name = "keywarden",
    version,
    about,
    long_about = None,
    after_help = "\
Examples:
  keywarden demo                                   # an offline tour, in seconds
  keywarden rules import config/rules.example.toml # the first rules
  keywarden plan                                   # what the rules would change now, and why
  keywarden apply                                  # change it now

Each command's --help explains it, with examples."
)]
pub struct Cli {
    /// Configuration file (default /etc/keywarden/keywarden.toml, else ./keywarden.toml).
    #[arg(long, global = true, env = "KEYWARDEN_CONFIG")]
    pub config: Option<PathBuf>,
    /// SQLite database file (overrides [database].path and .url).
    #[arg(long, global = true, env = "KEYWARDEN_DATABASE")]
    pub database: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// More log output (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less output: warnings and errors only.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Output format of listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// A table for people.
    #[default]
    Table,
    /// One JSON array.
    Json,
    /// One JSON object a line.
    Jsonl,
    /// Comma-separated values with a header.
    Csv,
    /// A Markdown table.
    Markdown,
    /// A self-contained HTML page.
    Html,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service in the foreground (what systemd starts).
    #[command(after_help = "\
Examples:
  keywarden run                                    # the service, in the foreground
  keywarden --config ./keywarden.toml run          # with a configuration file of your own
Under systemd: systemd/keywarden.service (see the README's production section).")]
    Run,
    /// Evaluate the rules and apply the changes now (one run).
    #[command(after_help = "\
Examples:
  keywarden apply --dry-run                        # record what would change; send nothing
  keywarden apply --rule team-a-monthly            # only this rule, now
  keywarden apply --force                          # apply what the guard held back, once")]
    Apply(ApplyArgs),
    /// Show what a run would change, and why, without changing anything.
    #[command(after_help = "\
Examples:
  keywarden plan                                   # what a run would change now, and why
  keywarden plan --at 2026-12-24                   # what will my rules do on 24 Dec?
  keywarden plan --rule support-holidays --format json")]
    Plan(PlanArgs),
    /// Show where each budget's spend is heading: burn rate, projection, crossing time.
    #[command(after_help = "\
Examples:
  keywarden forecast                               # every budget and forecast rule, now
  keywarden forecast --rule team-a-monthly --format json
  keywarden forecast --at 2026-12-24               # with the readings before 24 Dec")]
    Forecast(PlanArgs),
    /// Validate the configuration and rules files (the account: warnings only).
    #[command(after_help = "\
Examples:
  keywarden check-config                           # the configuration and its rules_files
  keywarden --config ./keywarden.toml check-config")]
    CheckConfig,
    /// Manage the rules kept in the database.
    #[command(subcommand)]
    #[command(after_help = "\
Examples:
  keywarden rules import config/rules.example.toml # add or update the file's rules
  keywarden rules list                             # what the database holds
  keywarden rules disable team-a-monthly           # stop a rule; its claims are released")]
    Rules(RulesCommand),
    /// Look at the account's keys.
    #[command(subcommand)]
    #[command(after_help = "\
Examples:
  keywarden keys list                              # live keys, usage, matching rules, claims")]
    Keys(KeysCommand),
    /// Let a person override keywarden on a key for a while.
    #[command(subcommand)]
    #[command(after_help = "\
Examples:
  keywarden exempt add team-a-ci --until 2d --reason \"release week\"
  keywarden exempt list
  keywarden exempt remove 3")]
    Exempt(ExemptCommand),
    /// List recorded changes, newest first.
    #[command(after_help = "\
Examples:
  keywarden history --since 7d                     # the last week's changes
  keywarden history --key team-a-ci --kind assert  # who turned this key off, when, and why
  keywarden history --since 2026-12-01 --format json")]
    History(HistoryArgs),
    /// The historical change report.
    #[command(after_help = "\
Examples:
  keywarden report --since 30d                     # per rule, the last 30 days
  keywarden report --since 2026-12-01 --until 2027-01-01 --group-by key
  keywarden report --since 30d --format html --output report.html   # with charts")]
    Report(ReportArgs),
    /// Put the fields of an applied change back.
    #[command(after_help = "\
Examples:
  keywarden revert 17 --dry-run                    # what reverting change 17 would do
  keywarden revert 17 --exempt-until 1d            # and keep the rule off the key a day")]
    Revert(RevertArgs),
    /// Database maintenance.
    #[command(subcommand)]
    #[command(after_help = "\
Examples:
  keywarden db migrate                             # create or upgrade the schema
  keywarden db backup /var/backups/keywarden.db    # a consistent copy, mode 0600
  keywarden db prune                               # drop old usage snapshots")]
    Db(DbCommand),
    /// Run a local fake of the OpenRouter management API.
    #[command(after_help = "\
Examples:
  keywarden sandbox --keys 20 --management-key sk-test   # then, in another terminal:
  export KEYWARDEN_BASE_URL=http://127.0.0.1:8788/api/v1 OPENROUTER_MANAGEMENT_KEY=sk-test
  keywarden keys list")]
    Sandbox(SandboxArgs),
    /// An offline tour: six simulated weeks against the sandbox.
    #[command(after_help = "\
Examples:
  keywarden demo                                   # six simulated weeks, then the report
  keywarden demo --seed 7 --days 14                # another story, two weeks
  keywarden --database demo.db demo                # keep the history to explore, then:
  keywarden --database demo.db history")]
    Demo(DemoArgs),
    /// Serve the live dashboard from the database and the API, running no rules.
    #[command(after_help = "\
Examples:
  keywarden ui                                     # on [ui].listen, else http://127.0.0.1:9718
  keywarden ui --listen 127.0.0.1:8080             # another port on this host
  ssh -L 9718:127.0.0.1:9718 watchdog-host         # then open http://127.0.0.1:9718 here
Another address than loopback needs a token: KEYWARDEN_UI_TOKEN or $CREDENTIALS_DIRECTORY/ui-token.")]
    Ui(UiArgs),
}

/// `ui`
#[derive(Debug, Args)]
pub struct UiArgs {
    /// Address to serve on (overrides [ui].listen; default 127.0.0.1:9718).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}

/// `apply`
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Record what would change with outcome `dry_run`; send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Only these rules (repeatable).
    #[arg(long = "rule")]
    pub rules: Vec<String>,
    /// Apply changes the blast-radius guard would hold back, once.
    #[arg(long)]
    pub force: bool,
    /// On PostgreSQL, when another keywarden leads: wait until the lead is
    /// free (tried every [daemon].standby_poll) instead of exiting 1 with
    /// the leader's host and pid. (On SQLite a run in progress is always
    /// waited for.)
    #[arg(long)]
    pub wait: bool,
}

/// `plan` and `forecast`
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Only these rules (repeatable).
    #[arg(long = "rule")]
    pub rules: Vec<String>,
    /// Evaluate at this instant (RFC 3339 or a date): calendar conditions,
    /// and forecasts from the readings before it.
    #[arg(long)]
    pub at: Option<String>,
    /// table or json.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `rules …`
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// List the rules.
    #[command(after_help = "\
Examples:
  keywarden rules list
  keywarden rules list --format json")]
    List {
        /// table or json.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Show one rule as TOML.
    #[command(after_help = "\
Examples:
  keywarden rules show team-a-monthly")]
    Show {
        /// The rule's name.
        name: String,
    },
    /// Import rules from a TOML file (adds and updates; --prune removes the file's others).
    #[command(after_help = "\
Examples:
  keywarden rules import config/rules.example.toml
  keywarden rules import /etc/keywarden/rules.toml --prune   # and remove the rules it dropped")]
    Import {
        /// The rules file.
        file: PathBuf,
        /// Remove rules that came from this file and are no longer in it.
        #[arg(long)]
        prune: bool,
    },
    /// Print every rule as a rules file.
    #[command(after_help = "\
Examples:
  keywarden rules export > rules.toml            # edit, then import it back")]
    Export,
    /// Enable a rule.
    #[command(after_help = "\
Examples:
  keywarden rules enable team-a-monthly")]
    Enable {
        /// The rule's name.
        name: String,
    },
    /// Disable a rule (kept, not evaluated; its claims are released).
    #[command(after_help = "\
Examples:
  keywarden rules disable team-a-monthly")]
    Disable {
        /// The rule's name.
        name: String,
    },
    /// Remove a rule.
    #[command(after_help = "\
Examples:
  keywarden rules remove team-a-monthly")]
    Remove {
        /// The rule's name.
        name: String,
    },
    /// Revisions of one rule or of all, with a diff.
    #[command(after_help = "\
Examples:
  keywarden rules history team-a-monthly         # who changed the rule, when, and how
  keywarden rules history")]
    History {
        /// The rule's name.
        name: Option<String>,
    },
}

/// `keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Every key of the account (all pages, disabled included).
    #[command(after_help = "\
Examples:
  keywarden keys list                            # live keys, usage, matching rules, claims
  keywarden keys list --format csv > keys.csv")]
    List {
        /// table, json or csv.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

/// `exempt …`
#[derive(Debug, Subcommand)]
pub enum ExemptCommand {
    /// Exempt a key (from one rule, or all) until a time.
    #[command(after_help = "\
Examples:
  keywarden exempt add team-a-ci --until 2d --reason \"release week\"
  keywarden exempt add team-a-ci --rule team-a-monthly --until 2027-01-01 --reason \"approved\"")]
    Add {
        /// Key hash or unique key name.
        key: String,
        /// Until when (RFC 3339, date, or a duration like 7d).
        #[arg(long)]
        until: String,
        /// Only this rule.
        #[arg(long)]
        rule: Option<String>,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
    },
    /// List exemptions.
    #[command(after_help = "\
Examples:
  keywarden exempt list
  keywarden exempt list --format json")]
    List {
        /// table or json.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Remove an exemption.
    #[command(after_help = "\
Examples:
  keywarden exempt remove 3                      # the id from `keywarden exempt list`")]
    Remove {
        /// The exemption's id.
        id: i64,
    },
}

/// `history`
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// From (RFC 3339, a date, or a duration back like 7d).
    #[arg(long)]
    pub since: Option<String>,
    /// Until (same forms).
    #[arg(long)]
    pub until: Option<String>,
    /// Key hash or unique name.
    #[arg(long)]
    pub key: Option<String>,
    /// Rule name.
    #[arg(long)]
    pub rule: Option<String>,
    /// Change kind.
    #[arg(long)]
    pub kind: Option<String>,
    /// Outcome.
    #[arg(long)]
    pub outcome: Option<String>,
    /// At most this many rows.
    #[arg(long)]
    pub limit: Option<i64>,
    /// table, json, jsonl, csv or markdown.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `report`
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// From (RFC 3339, a date, or a duration back like 30d).
    #[arg(long)]
    pub since: Option<String>,
    /// Until (same forms).
    #[arg(long)]
    pub until: Option<String>,
    /// Grouping.
    #[arg(long, value_enum, default_value_t = GroupBy::Rule)]
    pub group_by: GroupBy,
    /// table, markdown, csv, json or html.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write to this file instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// `revert`
#[derive(Debug, Args)]
pub struct RevertArgs {
    /// The change's id (see `keywarden history`).
    pub change_id: i64,
    /// Show what would happen.
    #[arg(long)]
    pub dry_run: bool,
    /// Also exempt the key from the asserting rule until then.
    #[arg(long)]
    pub exempt_until: Option<String>,
    /// On PostgreSQL, when another keywarden leads: wait until the lead is
    /// free (tried every [daemon].standby_poll) instead of exiting 1 with
    /// the leader's host and pid. (On SQLite a run in progress is always
    /// waited for.)
    #[arg(long)]
    pub wait: bool,
}

/// `db …`
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Create or upgrade the database schema.
    #[command(after_help = "\
Examples:
  keywarden db migrate
  keywarden --database ./keywarden.db db migrate")]
    Migrate,
    /// Write a consistent copy of the database (mode 0600).
    #[command(after_help = "\
Examples:
  keywarden db backup /var/backups/keywarden.db")]
    Backup {
        /// Where to write it.
        file: PathBuf,
    },
    /// Delete snapshots older than [history].snapshot_retention.
    #[command(after_help = "\
Examples:
  keywarden db prune")]
    Prune,
    /// Copy every row into an empty database (SQLite to PostgreSQL or
    /// back), checked row for row; stop the service first.
    #[command(after_help = "\
The target is created and migrated; it must be empty. The PostgreSQL password
comes from KEYWARDEN_DATABASE_PASSWORD, PGPASSWORD or
$CREDENTIALS_DIRECTORY/database-password, never from the URL.

Examples:
  keywarden db copy --to postgres://keywarden@db.internal/keywarden?sslmode=verify-full
  keywarden --config pg.toml db copy --to /var/lib/keywarden/keywarden.db")]
    Copy {
        /// A postgres:// URL, or a SQLite file that does not exist yet.
        #[arg(long, value_name = "URL|FILE")]
        to: String,
    },
}

/// `sandbox`
#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8788")]
    pub listen: String,
    /// Create N deterministic keys.
    #[arg(long, default_value_t = 0)]
    pub keys: usize,
    /// Load keys from a JSON file.
    #[arg(long)]
    pub seed: Option<PathBuf>,
    /// The management key to accept (default: a random one, printed).
    #[arg(long, env = "KEYWARDEN_SANDBOX_MANAGEMENT_KEY", hide_env_values = true)]
    pub management_key: Option<String>,
}

/// `demo`
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Random seed: the same seed gives the same output.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Days to simulate.
    #[arg(long, default_value_t = 42)]
    pub days: u32,
}
