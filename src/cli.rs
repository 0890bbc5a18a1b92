//! The command line (SPEC §6), as clap definitions.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// keywarden: a budget watchdog for OpenRouter API keys.
#[derive(Debug, Parser)]
#[command(name = "keywarden", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (default /etc/keywarden/keywarden.toml, else ./keywarden.toml).
    #[arg(long, global = true, env = "KEYWARDEN_CONFIG")]
    pub config: Option<PathBuf>,
    /// SQLite database file (overrides [database].path).
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

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable text.
    Text,
    /// One JSON object a line.
    Json,
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
    Run,
    /// Evaluate the rules and apply the changes now (one run).
    Apply(ApplyArgs),
    /// Show what a run would change, and why, without changing anything.
    Plan(PlanArgs),
    /// Validate the configuration and rules files (no network).
    CheckConfig,
    /// Manage the rules kept in the database.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Look at the account's keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Let a person override keywarden on a key for a while.
    #[command(subcommand)]
    Exempt(ExemptCommand),
    /// List recorded changes, newest first.
    History(HistoryArgs),
    /// The historical change report.
    Report(ReportArgs),
    /// Put the fields of an applied change back.
    Revert(RevertArgs),
    /// Database maintenance.
    #[command(subcommand)]
    Db(DbCommand),
    /// Run a local fake of the OpenRouter management API.
    Sandbox(SandboxArgs),
    /// An offline tour: six simulated weeks against the sandbox.
    Demo(DemoArgs),
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
}

/// `plan`
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Only these rules (repeatable).
    #[arg(long = "rule")]
    pub rules: Vec<String>,
    /// Evaluate calendar conditions at this instant (RFC 3339 or a date).
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
    List {
        /// table or json.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Show one rule as TOML.
    Show {
        /// The rule's name.
        name: String,
    },
    /// Import rules from a TOML file (adds and updates; --prune removes the file's others).
    Import {
        /// The rules file.
        file: PathBuf,
        /// Remove rules that came from this file and are no longer in it.
        #[arg(long)]
        prune: bool,
    },
    /// Print every rule as a rules file.
    Export,
    /// Enable a rule.
    Enable {
        /// The rule's name.
        name: String,
    },
    /// Disable a rule (kept, not evaluated; its claims are released).
    Disable {
        /// The rule's name.
        name: String,
    },
    /// Remove a rule.
    Remove {
        /// The rule's name.
        name: String,
    },
    /// Revisions of one rule or of all, with a diff.
    History {
        /// The rule's name.
        name: Option<String>,
    },
}

/// `keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Every key of the account (all pages, disabled included).
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
    List {
        /// table or json.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Remove an exemption.
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

/// How `report` groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GroupBy {
    /// Per key.
    Key,
    /// Per rule.
    Rule,
    /// Per UTC day.
    Day,
    /// Per ISO week.
    Week,
    /// Per month.
    Month,
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
}

/// `db …`
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Create or upgrade the database schema.
    Migrate,
    /// Write a consistent copy of the database (mode 0600).
    Backup {
        /// Where to write it.
        file: PathBuf,
    },
    /// Delete snapshots older than [history].snapshot_retention.
    Prune,
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
