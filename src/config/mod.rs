//! TOML configuration, parsed into typed settings that cannot be invalid.
//!
//! `improbe check-config` and every command's start-up call [`Config::parse`],
//! so the validation a user can run ahead of time is exactly what runs later.
//! Every problem names its TOML path and line.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde::de::{self, Deserializer};
use toml::Spanned;

mod contracts;
mod raw;
#[cfg(test)]
mod tests;
mod validate;

pub use crate::probe::delivery::DeliveryMode;
pub use crate::secret::Secret;
pub use crate::text::parse_duration;
pub use crate::text::{humanize, is_loopback};

use crate::attempt::{Kind, MAX_NAME_BYTES};
use crate::notify::channels::{
    ChannelConfig, ChannelKind, ChannelSettings, EmailSettings, SmtpTls,
};
use crate::notify::events::EventKind;
use crate::probe::http::HttpSettings;
use crate::probe::matrix::MatrixSettings;
use crate::probe::simulator::SimulatorSettings;
use crate::probe::tencent::TencentSettings;
use crate::probe::xmpp::XmppSettings;
use crate::probe::{Provider, ProviderSettings};
use crate::sla::{BusinessCalendar, Contract, ExclusionWindow, ServiceCalendar, SlaTerms};

/// Where the configuration is read from when neither `--config` nor `IMPROBE_CONFIG` says otherwise.
pub const DEFAULT_CONFIG_PATH: &str = "improbe.toml";
/// The embedded database used when `[database] url` is not set.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://improbe.db";
/// Raw attempts are kept this long unless configured otherwise.
pub const DEFAULT_RETENTION_DAYS: u32 = 400;
/// The shortest retention that still keeps every attempt until its month's
/// claim deadline (a 31-day month plus 60 days) and 30 days beyond it.
pub const MIN_RETENTION_DAYS: u32 = 31 + 60 + 30 + 1;
/// Days successful attempts stay raw by default: a week of exact latencies
/// to look into, then the rollups.
pub const DEFAULT_RAW_WINDOW_DAYS: u32 = 7;
/// A hundred years: the most `attempts_retention_days` takes.
pub const MAX_RETENTION_DAYS: u32 = 36_525;
/// The largest `monthly_fee` accepted: a trillion in any currency, far above
/// any IM bill, and small enough that every credit computed from it stays
/// exact in `Decimal`.
pub const MAX_MONTHLY_FEE: i64 = 1_000_000_000_000;
/// What a target's, prober's or channel's name may be.
const NAME_RULE: &str = "must be 1 to 64 letters, digits, `-`, `_` or `.`, and not only dots";
/// Time between attempts of one operation when `interval` is not set.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// Per-attempt deadline when `timeout` is not set, shortened to the interval
/// when that is shorter (a timeout may not exceed the interval).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longer intervals leave most minutes unobserved (and would overflow the
/// scheduler's clock arithmetic if unbounded).
pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);
/// A login probed less than daily says little about the day's logins.
pub const MAX_LOGIN_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// An attempt must end well inside the minute it is counted in.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub prober: ProberSettings,
    pub database: DatabaseSettings,
    pub targets: Vec<Target>,
    pub exclusions: Vec<ConfiguredExclusion>,
    /// `[[notify]]`: where events go.
    pub notify: Vec<ChannelConfig>,
    /// Every contract a target may follow: the built-in `tencent-im` and
    /// each `[contracts.NAME]`.
    pub contracts: BTreeMap<String, Arc<Contract>>,
    /// Problems that do not stop improbe but that a user should fix.
    pub warnings: Vec<Problem>,
}

#[derive(Debug, Clone)]
pub struct ProberSettings {
    /// Unique per instance; recorded with every attempt.
    pub id: String,
    /// Address for `/metrics`, `/healthz` and `/readyz`.
    pub listen: Option<SocketAddr>,
    /// An endpoint independent of the provider (docs/sla.md, control check).
    pub control_url: Option<String>,
    /// Where the spool of not-yet-written attempts lives.
    pub data_dir: PathBuf,
    /// TLS and basic auth for the HTTP surface; the default is neither.
    pub web: WebSettings,
    /// About how many starts share a slot of the start grid
    /// (`[prober] start_burst`, default [`DEFAULT_START_BURST`]).
    pub start_burst: usize,
}

/// Starts are spread over the interval on a grid of slots shared by every
/// probe loop, sized so that about this many starts share a slot: they
/// start in one wake-up of the runtime and their replies tend to arrive
/// together, which costs far less CPU than waking once per attempt (a
/// third, measured with 100 targets), while a burst of this many requests
/// at once stays small for a provider. `start_burst = 1` spreads every
/// start on its own (docs/configuration.md).
pub const DEFAULT_START_BURST: usize = 32;
/// The most starts `[prober] start_burst` may put in one slot.
pub const MAX_START_BURST: u32 = 1_000;

/// `[prober.web]` (docs/operations.md "Protecting the HTTP surface"), in the shape of
/// Prometheus' web configuration: TLS from PEM files, and users with bcrypt
/// hashes of their passwords.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebSettings {
    pub tls: Option<TlsFiles>,
    /// User name to bcrypt hash; empty: no authentication.
    pub basic_auth_users: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl ProberSettings {
    /// The append-only file attempts go to while the database cannot take
    /// them; one per prober, so probers may share a data directory.
    pub fn spool_path(&self) -> PathBuf {
        self.data_dir
            .join(format!("improbe-spool-{}.jsonl", self.id))
    }

    /// Where releases before the spool held heartbeats kept those a stop
    /// could not write; read once into the spool at the next start.
    pub fn heartbeat_file_path(&self) -> PathBuf {
        self.data_dir
            .join(format!("improbe-heartbeats-{}.jsonl", self.id))
    }
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub url: String,
    pub attempts_retention_days: u32,
    /// Days successful attempts stay raw before the storage round folds
    /// them into per-minute rollups (default [`DEFAULT_RAW_WINDOW_DAYS`];
    /// 0: as soon as their minute is settled).
    pub raw_window_days: u32,
    /// What stands between improbe and PostgreSQL (docs/many-regions.md
    /// "Through a connection pooler").
    pub pooler: Pooler,
}

/// `[database] pooler`: a connection pooler in front of PostgreSQL, and its
/// mode. Only `transaction` changes what improbe does: every statement is
/// sent unprepared, inside a transaction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooler {
    /// Straight to PostgreSQL.
    #[default]
    None,
    /// PgBouncer's `pool_mode = session`, or alike: a server connection per
    /// client connection, as without a pooler.
    Session,
    /// PgBouncer's `pool_mode = transaction`, or alike: a server connection
    /// per transaction.
    Transaction,
}

/// How sends are scheduled (logins always keep their interval).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendMode {
    /// One send per operation every interval.
    #[default]
    Fixed,
    /// Once a minute holds a successful send, further sends of that operation
    /// wait for the next minute; failures keep being retried every interval.
    MinuteProof,
}

#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    /// The provider and its settings (`provider` and `[targets.<provider>]`).
    pub provider: ProviderSettings,
    pub interval: Duration,
    /// The login operation's own interval, where the provider rate-limits
    /// logins more tightly than sends (Matrix's `rc_login`); else `interval`.
    pub login_interval: Option<Duration>,
    pub timeout: Duration,
    pub operations: Vec<Kind>,
    pub mode: SendMode,
    pub delivery: DeliveryMode,
    /// The provider's daily message quota for REST sends, if any.
    pub max_sends_per_day: Option<u32>,
    pub sla: SlaTerms,
}

/// An exclusion window declared in the config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfiguredExclusion {
    pub target: String,
    pub window: ExclusionWindow,
    pub reason: String,
    pub announced_at: Option<DateTime<Utc>>,
}

/// One thing wrong with a config file, located by TOML path and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Why a config file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}; pass --config FILE or set IMPROBE_CONFIG")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", format_problems(origin, problems))]
    Invalid {
        origin: String,
        problems: Vec<Problem>,
    },
}

fn format_problems(origin: &str, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{origin}: {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Unreadable {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Validates config text; `origin` names it in errors (usually the file path).
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        validate::parse(text, origin)
    }

    /// No attempt of any target runs longer than this.
    pub fn longest_timeout(&self) -> Duration {
        self.targets
            .iter()
            .map(|t| t.timeout)
            .max()
            .unwrap_or_default()
    }

    pub fn target(&self, name: &str) -> Option<&Target> {
        self.targets.iter().find(|t| t.name == name)
    }

    /// Each target whose contract has a latency rule, with its `slow_after`
    /// in milliseconds: what the store counts slow successes against.
    pub fn latency_rules(&self) -> BTreeMap<String, i64> {
        self.targets
            .iter()
            .filter_map(|t| {
                let ms = t.sla.contract.slow_after_ms?;
                Some((t.name.clone(), i64::try_from(ms).ok()?))
            })
            .collect()
    }
}
