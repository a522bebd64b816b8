//! Command-line definitions.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::DEFAULT_CONFIG_PATH;

#[derive(Debug, Parser)]
#[command(
    name = "improbe",
    version,
    about = "Your own evidence of how available your IM provider really was"
)]
pub struct Cli {
    /// The TOML configuration file.
    #[arg(long, global = true, env = "IMPROBE_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,

    /// Log output: `pretty` for terminals, `json` for collectors.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The daemon: probe every target, record every attempt, keep the monthly figures current.
    Run,
    /// Zero-configuration tour against the built-in simulator with scripted outages.
    Demo(DemoArgs),
    /// Run the IM simulator alone (Tencent-compatible REST surface plus a control API).
    Simulate(SimulateArgs),
    /// Ask a running daemon's /healthz (exit 0 when healthy), for container health checks.
    Healthcheck(HealthcheckArgs),
    /// Exclusion windows kept in the database (announced maintenance, events, ...).
    #[command(subcommand)]
    Exclusions(ExclusionsCommand),
    /// Prepare what probing needs on the provider (accounts, group), idempotently; prints the IDs for the config.
    Setup(TencentSetupArgs),
    /// Tencent Cloud IM helpers (`improbe tencent setup` is `improbe setup`).
    #[command(subcommand)]
    Tencent(TencentCommand),
    /// Validate the configuration file and what `run` needs (secrets, data_dir, database); lists every problem with its TOML path.
    CheckConfig(CheckConfigArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Run the storage round once (fold old successes, prune, give space back) and exit.
    Compact(CompactArgs),
    /// What the database costs on disk: per table, per target per day, and the volume's free space.
    Storage(StorageArgs),
    /// Load attempts from JSON Lines (a file, or - for standard input).
    Import(ImportArgs),
    /// The text of a credit claim for one target and Service Month, for the provider's ticket.
    Claim(ClaimArgs),
    /// Contracts (`[contracts.NAME]` and the built-in `tencent-im`).
    #[command(subcommand)]
    Contracts(ContractsCommand),
    /// Notification channels (`[[notify]]`).
    #[command(subcommand)]
    Notify(NotifyCommand),
    /// Availability, credit and claim window per target and Service Month.
    Sla(SlaArgs),
    /// The evidence for one target and Service Month: incidents, errors, coverage, exclusions, digest.
    Report(ReportArgs),
}

#[derive(Debug, Subcommand)]
pub enum ContractsCommand {
    /// Print a contract's rules in words, as the report states them.
    Show(ContractShowArgs),
}

#[derive(Debug, Args)]
pub struct ContractShowArgs {
    /// The contract's name: `tencent-im` or a `[contracts.NAME]` of the config.
    pub name: String,
}

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Send one `test` event through a channel now (not through the outbox); exit 1 if it is refused.
    Test(NotifyTestArgs),
}

#[derive(Debug, Args)]
pub struct NotifyTestArgs {
    /// The channel, by its `name` in `[[notify]]`.
    #[arg(long)]
    pub channel: String,
}

/// One target's Service Month, by index or by a date inside it.
#[derive(Debug, Args)]
pub struct TargetMonth {
    /// The target, by its `name` in the config.
    #[arg(long)]
    pub target: String,
    /// Service Month K (1-based); default: the current one (report), the latest ended one (claim).
    #[arg(long, value_name = "K", conflicts_with = "date")]
    pub month: Option<u32>,
    /// The Service Month containing this local date.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub date: Option<NaiveDate>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Default month: the current one.
    #[command(flatten)]
    pub which: TargetMonth,
    #[arg(long, value_enum, default_value_t = ReportFormat::Markdown)]
    pub format: ReportFormat,
    /// Write here instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ClaimArgs {
    /// Default month: the latest one that has ended.
    #[command(flatten)]
    pub which: TargetMonth,
    #[arg(long, value_enum, default_value_t = ClaimFormat::Markdown)]
    pub format: ClaimFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ClaimFormat {
    Markdown,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportFormat {
    Markdown,
    Html,
    Json,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The JSON Lines file, or `-` for standard input.
    pub file: String,
}

#[derive(Debug, Args)]
pub struct SlaArgs {
    /// Only this target.
    #[arg(long)]
    pub target: Option<String>,
    /// Only Service Month K (1-based).
    #[arg(long, value_name = "K", conflicts_with = "date")]
    pub month: Option<u32>,
    /// Only the Service Month containing this local date.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub date: Option<NaiveDate>,
    #[arg(long, value_enum, default_value_t = SlaFormat::Table)]
    pub format: SlaFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SlaFormat {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Args)]
pub struct CompactArgs {
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
}

#[derive(Debug, Args)]
pub struct StorageArgs {
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How many scripted minutes to watch.
    #[arg(long, default_value_t = 4)]
    pub minutes: u32,
}

#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// Do not connect to the database (still checks the file, secrets and data_dir).
    #[arg(long)]
    pub offline: bool,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9480")]
    pub listen: std::net::SocketAddr,
}

#[derive(Debug, Subcommand)]
pub enum TencentCommand {
    /// Create the probe accounts and probe group through the REST API (idempotent).
    Setup(TencentSetupArgs),
}

#[derive(Debug, Args)]
pub struct TencentSetupArgs {
    /// Only this target.
    #[arg(long)]
    pub target: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ExclusionsCommand {
    /// Record a window; its minutes become `excluded`.
    Add(ExclusionsAddArgs),
    /// Show the windows, from the config and the command line.
    List(ExclusionsListArgs),
    /// Remove a window recorded with `add`.
    Remove(ExclusionsRemoveArgs),
}

#[derive(Debug, Args)]
pub struct ExclusionsAddArgs {
    #[arg(long)]
    pub target: String,
    /// RFC 3339 instant, e.g. 2026-04-02T02:00:00+08:00.
    #[arg(long)]
    pub start: String,
    /// RFC 3339 instant; exclusive.
    #[arg(long)]
    pub end: String,
    /// Why, e.g. "upgrade, notice in console".
    #[arg(long)]
    pub reason: String,
    /// When the provider announced it; without a notice before the start, reports flag it.
    #[arg(long)]
    pub announced_at: Option<String>,
    /// Who records it (default: $USER).
    #[arg(long)]
    pub recorded_by: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExclusionsListArgs {
    #[arg(long)]
    pub target: Option<String>,
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct ExclusionsRemoveArgs {
    /// The id `list` shows.
    pub id: i64,
}

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// Default: http://<[prober] listen>/healthz from the config.
    #[arg(long)]
    pub url: Option<String>,
}
