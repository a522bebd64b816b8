//! TOML configuration, parsed into typed settings that cannot be invalid.
//!
//! `improbe check-config` and every command's start-up call [`Config::parse`],
//! so the validation a user can run ahead of time is exactly what runs later.
//! Every problem names its TOML path and line.

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use toml::Spanned;

use crate::attempt::Kind;
use crate::probe::matrix::MatrixSettings;
use crate::probe::simulator::SimulatorSettings;
use crate::probe::tencent::TencentSettings;
use crate::probe::{Provider, ProviderSettings};
use crate::sla::{BusinessCalendar, ExclusionWindow, ServiceCalendar, SlaTerms};

/// Where the configuration is read from when neither `--config` nor `IMPROBE_CONFIG` says otherwise.
pub const DEFAULT_CONFIG_PATH: &str = "improbe.toml";
/// The embedded database used when `[database] url` is not set.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://improbe.db";
/// Raw attempts are kept this long unless configured otherwise.
pub const DEFAULT_RETENTION_DAYS: u32 = 400;
/// The shortest retention that still keeps every attempt until its month's
/// claim deadline (a 31-day month plus 60 days) and 30 days beyond it.
pub const MIN_RETENTION_DAYS: u32 = 31 + 60 + 30 + 1;
/// Time between attempts of one operation when `interval` is not set.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// Per-attempt deadline when `timeout` is not set, shortened to the interval
/// when that is shorter (a timeout may not exceed the interval).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longer intervals leave most minutes unobserved (and would overflow the
/// scheduler's clock arithmetic if unbounded).
pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);
/// An attempt must end well inside the minute it is counted in.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub prober: ProberSettings,
    pub database: DatabaseSettings,
    pub targets: Vec<Target>,
    pub exclusions: Vec<ConfiguredExclusion>,
    /// Problems that do not stop improbe but that a user should fix.
    pub warnings: Vec<Problem>,
}

#[derive(Debug, Clone)]
pub struct ProberSettings {
    /// Unique per instance; recorded with every attempt.
    pub id: String,
    /// Address for `/metrics`, `/healthz` and `/readyz`.
    pub listen: Option<SocketAddr>,
    /// An endpoint independent of the provider (SLA.md, control check).
    pub control_url: Option<String>,
    /// Where the spool of not-yet-written attempts lives.
    pub data_dir: PathBuf,
}

impl ProberSettings {
    /// The append-only file attempts go to while the database cannot take
    /// them; one per prober, so probers may share a data directory.
    pub fn spool_path(&self) -> PathBuf {
        self.data_dir
            .join(format!("improbe-spool-{}.jsonl", self.id))
    }

    /// Heartbeats a stop could not write wait here for the next start.
    pub fn heartbeat_backlog_path(&self) -> PathBuf {
        self.data_dir
            .join(format!("improbe-heartbeats-{}.jsonl", self.id))
    }
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub url: String,
    pub attempts_retention_days: u32,
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
    pub timeout: Duration,
    pub operations: Vec<Kind>,
    pub mode: SendMode,
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

/// A secret, named by where to find it so that it never sits in the file.
///
/// `Debug` never prints the value.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    Env(String),
    File(PathBuf),
    /// Written in the config file itself; works, but `check-config` warns.
    Plain(String),
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Env(name) => write!(f, "Secret(env {name})"),
            Secret::File(path) => write!(f, "Secret(file {})", path.display()),
            Secret::Plain(_) => f.write_str("Secret(<redacted>)"),
        }
    }
}

impl Secret {
    /// Reads the secret's value. Errors name where it was looked for, never the value.
    pub fn reveal(&self) -> anyhow::Result<String> {
        match self {
            Secret::Env(name) => std::env::var(name).map_err(|_| {
                anyhow::anyhow!(
                    "environment variable {name} is not set; export it or use {{ file = \"...\" }}"
                )
            }),
            Secret::File(path) => std::fs::read_to_string(path)
                .map(|s| s.trim_end_matches(['\r', '\n']).to_owned())
                .map_err(|e| anyhow::anyhow!("cannot read secret file {}: {e}", path.display())),
            Secret::Plain(value) => Ok(value.clone()),
        }
    }
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
        let lines = LineIndex::new(text);
        let invalid = |problems| ConfigError::Invalid {
            origin: origin.to_owned(),
            problems,
        };
        let raw = parse_raw(text, &lines).map_err(|p| invalid(vec![p]))?;
        let mut validator = Validator {
            lines: &lines,
            problems: Vec::new(),
            warnings: Vec::new(),
        };
        let config = validator.config(raw);
        if validator.problems.is_empty() {
            let mut config = config.expect("a config with no problems is complete");
            config.warnings = validator.warnings;
            Ok(config)
        } else {
            Err(invalid(validator.problems))
        }
    }

    pub fn target(&self, name: &str) -> Option<&Target> {
        self.targets.iter().find(|t| t.name == name)
    }
}

fn parse_raw(text: &str, lines: &LineIndex) -> Result<RawConfig, Problem> {
    let toml_problem = |path: String, error: toml::de::Error| Problem {
        path,
        line: error.span().map(|s| lines.line_of(s.start)),
        message: error.message().trim().to_owned(),
    };
    let deserializer =
        toml::Deserializer::parse(text).map_err(|e| toml_problem(String::new(), e))?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        // `Spanned` wraps values in a private field that means nothing to a user.
        let path = e
            .path()
            .to_string()
            .replace(".$__serde_spanned_private_value", "");
        toml_problem(
            if path == "." { String::new() } else { path },
            e.into_inner(),
        )
    })
}

/// Maps byte offsets to 1-based line numbers.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self { starts }
    }

    fn line_of(&self, offset: usize) -> usize {
        self.starts.partition_point(|&start| start <= offset)
    }
}

struct Validator<'a> {
    lines: &'a LineIndex,
    problems: Vec<Problem>,
    warnings: Vec<Problem>,
}

impl Validator<'_> {
    fn problem(
        &mut self,
        path: impl Into<String>,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) {
        self.problems.push(Problem {
            path: path.into(),
            line: span.map(|s| self.lines.line_of(s.start)),
            message: message.into(),
        });
    }

    fn config(&mut self, raw: RawConfig) -> Option<Config> {
        let prober = self.prober(raw.prober.unwrap_or_default());
        let database = self.database(raw.database.unwrap_or_default());
        if raw.targets.is_empty() {
            self.problem(
                "targets",
                None,
                "no [[targets]] configured; add at least one target to probe",
            );
        }
        let mut seen = HashSet::new();
        let targets: Vec<Option<Target>> = raw
            .targets
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                if !seen.insert(t.name.get_ref().clone()) {
                    let message = format!(
                        "duplicate target name `{}`; names must be unique",
                        t.name.get_ref()
                    );
                    self.problem(format!("targets[{i}].name"), Some(t.name.span()), message);
                }
                self.target(i, t)
            })
            .collect();
        let exclusions: Vec<Option<ConfiguredExclusion>> = raw
            .exclusions
            .into_iter()
            .enumerate()
            .map(|(i, e)| self.exclusion(i, e, &seen))
            .collect();
        Some(Config {
            prober: prober?,
            database: database?,
            targets: targets.into_iter().collect::<Option<_>>()?,
            exclusions: exclusions.into_iter().collect::<Option<_>>()?,
            warnings: Vec::new(),
        })
    }

    fn prober(&mut self, raw: RawProber) -> Option<ProberSettings> {
        let id = match raw.id {
            Some(id) => {
                if !is_identifier(id.get_ref()) {
                    self.problem(
                        "prober.id",
                        Some(id.span()),
                        "must be letters, digits, `-`, `_` or `.`",
                    );
                }
                id.into_inner()
            }
            None => default_prober_id(),
        };
        if let Some(url) = &raw.control_url
            && !(url.get_ref().starts_with("http://") || url.get_ref().starts_with("https://"))
        {
            self.problem(
                "prober.control_url",
                Some(url.span()),
                "must be an http:// or https:// URL",
            );
        }
        let data_dir = match raw.data_dir {
            Some(dir) if dir.get_ref().trim().is_empty() => {
                self.problem("prober.data_dir", Some(dir.span()), "must name a directory");
                return None;
            }
            Some(dir) => PathBuf::from(dir.into_inner()),
            None => PathBuf::from("."),
        };
        Some(ProberSettings {
            id,
            listen: raw.listen.map(|l| l.0),
            control_url: raw.control_url.map(Spanned::into_inner),
            data_dir,
        })
    }

    fn database(&mut self, raw: RawDatabase) -> Option<DatabaseSettings> {
        let url = raw
            .url
            .map(Spanned::into_inner)
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        let attempts_retention_days = match raw.attempts_retention_days {
            Some(days) if *days.get_ref() < MIN_RETENTION_DAYS => {
                let message = format!(
                    "{} days is too short: attempts must outlive their month's claim deadline by 30 days; use at least {MIN_RETENTION_DAYS}",
                    days.get_ref()
                );
                self.problem(
                    "database.attempts_retention_days",
                    Some(days.span()),
                    message,
                );
                return None;
            }
            Some(days) => days.into_inner(),
            None => DEFAULT_RETENTION_DAYS,
        };
        Some(DatabaseSettings {
            url,
            attempts_retention_days,
        })
    }

    fn target(&mut self, i: usize, raw: RawTarget) -> Option<Target> {
        let path = |field: &str| format!("targets[{i}].{field}");
        let name = raw.name.get_ref().clone();
        if !is_identifier(&name) {
            self.problem(
                path("name"),
                Some(raw.name.span()),
                "must be non-empty letters, digits, `-`, `_` or `.`",
            );
        }
        let interval = raw
            .interval
            .as_ref()
            .map_or(DEFAULT_INTERVAL, |d| d.get_ref().0);
        let timeout = raw
            .timeout
            .as_ref()
            .map_or(DEFAULT_TIMEOUT.min(interval), |d| d.get_ref().0);
        let interval_span = raw.interval.as_ref().map(Spanned::span);
        let timeout_span = raw
            .timeout
            .as_ref()
            .map(Spanned::span)
            .or_else(|| interval_span.clone());
        if interval.is_zero() || interval > MAX_INTERVAL {
            self.problem(
                path("interval"),
                interval_span,
                "must be longer than zero and at most 1h: the SLA is decided minute by minute",
            );
        }
        if timeout.is_zero() || timeout >= MAX_TIMEOUT {
            self.problem(
                path("timeout"),
                timeout_span.clone(),
                "must be above zero and below 60s: an attempt belongs to the minute it started in",
            );
        } else if timeout > interval {
            let message = format!(
                "{} is longer than interval {}; make timeout <= interval",
                humanize(timeout),
                humanize(interval)
            );
            self.problem(path("timeout"), timeout_span, message);
        }
        let provider = *raw.provider.get_ref();
        if provider == Provider::Tencent
            && !timeout.is_zero()
            && timeout < crate::probe::tencent::ANSWERS_WITHIN
        {
            let message = format!(
                "{} is shorter than the {} Tencent's REST API may take to answer: slow successes would be recorded as failures; use at least {}",
                humanize(timeout),
                humanize(crate::probe::tencent::ANSWERS_WITHIN),
                humanize(crate::probe::tencent::ANSWERS_WITHIN),
            );
            self.warnings.push(Problem {
                path: path("timeout"),
                line: raw
                    .timeout
                    .as_ref()
                    .map(|t| self.lines.line_of(t.span().start)),
                message,
            });
        }
        let operations = match raw.operations {
            Some(ops) => {
                let unique: BTreeSet<Kind> = ops.get_ref().iter().copied().collect();
                if ops.get_ref().is_empty() {
                    self.problem(
                        path("operations"),
                        Some(ops.span()),
                        "must list at least one of login, send_direct, send_group",
                    );
                } else if unique.len() != ops.get_ref().len() {
                    self.problem(
                        path("operations"),
                        Some(ops.span()),
                        "lists an operation twice",
                    );
                }
                ops.into_inner()
            }
            None => Kind::ALL.to_vec(),
        };
        let provider_span = raw.provider.span();
        if let Some(max) = &raw.max_sends_per_day
            && *max.get_ref() == 0
        {
            self.problem(
                path("max_sends_per_day"),
                Some(max.span()),
                "must be at least 1; leave it out for no limit",
            );
        }
        let sections = [
            (Provider::Tencent, raw.tencent.as_ref().map(Spanned::span)),
            (Provider::Matrix, raw.matrix.as_ref().map(Spanned::span)),
            (
                Provider::Simulator,
                raw.simulator.as_ref().map(Spanned::span),
            ),
        ];
        for (kind, span) in sections {
            if let Some(span) = span
                && kind != provider
            {
                let name = kind.as_str();
                self.problem(
                    path(name),
                    Some(span),
                    format!("[targets.{name}] is only for provider = \"{name}\""),
                );
            }
        }
        let settings = match provider {
            Provider::Tencent => raw
                .tencent
                .map(|s| (s.span(), ProviderSettings::Tencent(s.into_inner()))),
            Provider::Matrix => raw
                .matrix
                .map(|s| (s.span(), ProviderSettings::Matrix(s.into_inner()))),
            Provider::Simulator => Some(raw.simulator.map_or_else(
                || {
                    (
                        provider_span.clone(),
                        ProviderSettings::Simulator(SimulatorSettings::default()),
                    )
                },
                |s| (s.span(), ProviderSettings::Simulator(s.into_inner())),
            )),
        };
        let settings = match settings {
            Some((span, settings)) => {
                let section = provider.as_str();
                for (field, message) in settings.check() {
                    self.problem(
                        path(&format!("{section}.{field}")),
                        Some(span.clone()),
                        message,
                    );
                }
                for (field, secret) in settings.secrets() {
                    self.warn_plain_secret(path(&format!("{section}.{field}")), secret);
                }
                Some(settings)
            }
            None => {
                let name = provider.as_str();
                self.problem(
                    path(name),
                    Some(provider_span),
                    format!("provider = \"{name}\" needs a [targets.{name}] section"),
                );
                None
            }
        };
        if provider == Provider::Matrix {
            self.warnings.push(Problem {
                path: path("provider"),
                line: None,
                message: "matrix targets are not probed yet: `run` skips them; `import` and `sla` handle them".into(),
            });
        }
        let sla = self.sla(&path("sla"), raw.sla)?;
        Some(Target {
            name,
            provider: settings?,
            interval,
            timeout,
            operations,
            mode: raw.mode.unwrap_or_default(),
            max_sends_per_day: raw.max_sends_per_day.map(Spanned::into_inner),
            sla,
        })
    }

    fn warn_plain_secret(&mut self, path: String, secret: &Secret) {
        if matches!(secret, Secret::Plain(_)) {
            self.warnings.push(Problem {
                path,
                line: None,
                message: "plain-text secret in the config file; use { env = \"NAME\" } or { file = \"PATH\" }".into(),
            });
        }
    }

    fn sla(&mut self, path: &str, raw: Spanned<RawSla>) -> Option<SlaTerms> {
        let span = raw.span();
        let raw = raw.into_inner();
        if raw.monthly_fee.0.is_sign_negative() {
            self.problem(
                format!("{path}.monthly_fee"),
                Some(span.clone()),
                "must not be negative",
            );
        }
        if raw.currency.trim().is_empty() {
            self.problem(
                format!("{path}.currency"),
                Some(span.clone()),
                "must not be empty",
            );
        }
        let holidays: BTreeSet<NaiveDate> = raw.holidays.iter().map(|d| d.0).collect();
        let workdays: BTreeSet<NaiveDate> = raw.workdays.iter().map(|d| d.0).collect();
        if let Some(both) = holidays.intersection(&workdays).next() {
            self.problem(
                format!("{path}.workdays"),
                Some(span),
                format!("{both} is listed both as a holiday and as a workday"),
            );
        }
        Some(SlaTerms {
            calendar: ServiceCalendar::new(raw.service_start.0, raw.timezone.0),
            business_days: BusinessCalendar { holidays, workdays },
            monthly_fee: raw.monthly_fee.0,
            currency: raw.currency,
        })
    }

    fn exclusion(
        &mut self,
        i: usize,
        raw: RawExclusion,
        targets: &HashSet<String>,
    ) -> Option<ConfiguredExclusion> {
        let path = |field: &str| format!("exclusions[{i}].{field}");
        if !targets.contains(raw.target.get_ref()) {
            let message = format!("no target named `{}` in [[targets]]", raw.target.get_ref());
            self.problem(path("target"), Some(raw.target.span()), message);
        }
        let (start, end) = (raw.start.get_ref().0, raw.end.get_ref().0);
        if end <= start {
            self.problem(path("end"), Some(raw.end.span()), "must be after start");
        }
        if raw.reason.get_ref().trim().is_empty() {
            self.problem(
                path("reason"),
                Some(raw.reason.span()),
                "must say why the window is excluded",
            );
        }
        Some(ConfiguredExclusion {
            target: raw.target.into_inner(),
            window: ExclusionWindow { start, end },
            reason: raw.reason.into_inner(),
            announced_at: raw.announced_at.map(|a| a.0),
        })
    }
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn default_prober_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| is_identifier(h))
        .unwrap_or_else(|| "improbe".to_owned())
}

/// Formats a duration the way the config spells it.
pub fn humanize(d: Duration) -> String {
    if d.subsec_millis() != 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs())
    }
}

// --- The raw file shape: what serde reads before validation. ---

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    prober: Option<RawProber>,
    database: Option<RawDatabase>,
    #[serde(default)]
    targets: Vec<RawTarget>,
    #[serde(default)]
    exclusions: Vec<RawExclusion>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProber {
    id: Option<Spanned<String>>,
    listen: Option<ListenAddr>,
    control_url: Option<Spanned<String>>,
    data_dir: Option<Spanned<String>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    url: Option<Spanned<String>>,
    attempts_retention_days: Option<Spanned<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    name: Spanned<String>,
    provider: Spanned<Provider>,
    interval: Option<Spanned<DurationText>>,
    timeout: Option<Spanned<DurationText>>,
    operations: Option<Spanned<Vec<Kind>>>,
    mode: Option<SendMode>,
    max_sends_per_day: Option<Spanned<u32>>,
    tencent: Option<Spanned<TencentSettings>>,
    matrix: Option<Spanned<MatrixSettings>>,
    simulator: Option<Spanned<SimulatorSettings>>,
    sla: Spanned<RawSla>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSla {
    service_start: DateText,
    timezone: TimeZoneName,
    monthly_fee: Money,
    #[serde(default = "default_currency")]
    currency: String,
    #[serde(default)]
    holidays: Vec<DateText>,
    #[serde(default)]
    workdays: Vec<DateText>,
}

fn default_currency() -> String {
    "USD".to_owned()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExclusion {
    target: Spanned<String>,
    start: Spanned<InstantText>,
    end: Spanned<InstantText>,
    reason: Spanned<String>,
    announced_at: Option<InstantText>,
}

/// Implements `Deserialize` for a newtype read from a string by `parse`.
macro_rules! from_text {
    ($name:ident($inner:ty), $expected:literal, $parse:expr) => {
        struct $name($inner);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                let parse: fn(&str) -> Option<$inner> = $parse;
                parse(&text)
                    .map($name)
                    .ok_or_else(|| de::Error::custom(format!("`{text}` is not {}", $expected)))
            }
        }
    };
}

from_text!(
    DurationText(Duration),
    "a duration such as \"500ms\", \"5s\", \"2m\" or \"1h\"",
    parse_duration
);
from_text!(DateText(NaiveDate), "a date as YYYY-MM-DD", |s| {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
});
from_text!(
    TimeZoneName(Tz),
    "an IANA time zone such as \"Asia/Shanghai\"",
    |s| s.parse().ok()
);
from_text!(
    Money(Decimal),
    "a decimal amount such as \"1200.00\"",
    |s| s.parse().ok()
);
from_text!(
    ListenAddr(SocketAddr),
    "an address such as \"127.0.0.1:9464\"",
    |s| s.parse().ok()
);
from_text!(
    InstantText(DateTime<Utc>),
    "an RFC 3339 instant with an offset, such as \"2026-04-02T02:00:00+08:00\"",
    |s| {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
);

/// Parses `"500ms"`, `"5s"`, `"2m"`, `"1h"`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_secs(n.checked_mul(60)?)),
        "h" => Some(Duration::from_secs(n.checked_mul(3600)?)),
        _ => None,
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SecretVisitor;

        impl<'de> Visitor<'de> for SecretVisitor {
            type Value = Secret;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("{ env = \"NAME\" }, { file = \"PATH\" } or a string")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret::Plain(v.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Secret, A::Error> {
                let mut found = None;
                while let Some(key) = map.next_key::<String>()? {
                    let value: String = map.next_value()?;
                    let secret = match key.as_str() {
                        "env" => Secret::Env(value),
                        "file" => Secret::File(value.into()),
                        other => return Err(de::Error::unknown_field(other, &["env", "file"])),
                    };
                    if found.replace(secret).is_some() {
                        return Err(de::Error::custom("give either env or file, not both"));
                    }
                }
                found.ok_or_else(|| {
                    de::Error::custom("expected { env = \"NAME\" } or { file = \"PATH\" }")
                })
            }
        }

        d.deserialize_any(SecretVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[[targets]]
name = "t"
provider = "simulator"
[targets.sla]
service_start = "2026-03-17"
timezone = "Asia/Shanghai"
monthly_fee = "10"
"#;

    fn problems(text: &str) -> Vec<String> {
        match Config::parse(text, "test.toml") {
            Ok(_) => Vec::new(),
            Err(ConfigError::Invalid { problems, .. }) => {
                problems.iter().map(ToString::to_string).collect()
            }
            Err(other) => vec![other.to_string()],
        }
    }

    #[test]
    fn defaults_fill_what_is_left_out() {
        let config = Config::parse(MINIMAL, "test.toml").unwrap();
        let target = &config.targets[0];
        assert_eq!(target.interval, DEFAULT_INTERVAL);
        // The default timeout never exceeds the interval.
        assert_eq!(target.timeout, DEFAULT_INTERVAL.min(DEFAULT_TIMEOUT));
        assert_eq!(target.operations, Kind::ALL.to_vec());
        assert_eq!(target.sla.currency, "USD");
        assert_eq!(config.database.url, DEFAULT_DATABASE_URL);
        assert_eq!(
            config.database.attempts_retention_days,
            DEFAULT_RETENTION_DAYS
        );
        assert!(!config.prober.id.is_empty());
    }

    #[test]
    fn each_problem_names_its_path_and_line() {
        let cases = [
            (
                MINIMAL.replace(
                    "provider = \"simulator\"",
                    "provider = \"simulator\"\ncolour = \"red\"",
                ),
                "line 5: targets[0].colour: unknown field `colour`",
            ),
            (
                MINIMAL.replace("\"10\"", "\"ten\""),
                "line 8: targets[0].sla.monthly_fee: `ten` is not a decimal amount",
            ),
            (
                MINIMAL.replace(
                    "provider = \"simulator\"",
                    "provider = \"simulator\"\ntimeout = \"60s\"\ninterval = \"90s\"",
                ),
                "line 5: targets[0].timeout: must be above zero and below 60s",
            ),
            (
                MINIMAL.replace(
                    "provider = \"simulator\"",
                    "provider = \"simulator\"\ninterval = \"5 seconds\"",
                ),
                "line 5: targets[0].interval: `5 seconds` is not a duration",
            ),
            (
                MINIMAL.replace("provider = \"simulator\"", "provider = \"icq\""),
                "line 4: targets[0].provider: unknown variant `icq`",
            ),
            (
                format!("[database]\nattempts_retention_days = 90\n{MINIMAL}"),
                "line 2: database.attempts_retention_days: 90 days is too short",
            ),
            (
                MINIMAL.replace(
                    "provider = \"simulator\"",
                    "provider = \"simulator\"\noperations = [\"login\", \"login\"]",
                ),
                "line 5: targets[0].operations: lists an operation twice",
            ),
            (format!("{MINIMAL}\n[targets.sla]\n"), "duplicate key"),
            (
                "[[targets]]\nname = \"t\"".to_owned(),
                "targets[0]: missing field `provider`",
            ),
            (String::new(), "targets: no [[targets]] configured"),
            (
                MINIMAL.replace("provider = \"simulator\"", "provider = \"tencent\""),
                "line 4: targets[0].tencent: provider = \"tencent\" needs a [targets.tencent] section",
            ),
            (
                format!(
                    "{MINIMAL}[targets.matrix]\nhomeserver = \"https://m\"\nuser = \"@a:m\"\npassword = {{ env = \"P\" }}\ndirect_room = \"!d\"\ngroup_room = \"!g\"\n"
                ),
                "line 9: targets[0].matrix: [targets.matrix] is only for provider = \"matrix\"",
            ),
            (
                MINIMAL.replace("provider = \"simulator\"", "provider = \"tencent\"")
                    + &format!(
                        "[targets.tencent]\nendpoint = \"adminapisgp.im.qcloud.com\"\nsdk_app_id = 1\nadmin = \"{}\"\nsecret_key = {{ env = \"K\" }}\nsender = \"s\"\nrecipient = \"r\"\ngroup = \"g\"\n",
                        "a".repeat(70_000)
                    ),
                "line 9: targets[0].tencent.admin: must be a Tencent UserID of 1 to 32 bytes",
            ),
            (
                MINIMAL.replace("provider = \"simulator\"", "provider = \"tencent\"")
                    + "[targets.tencent]\nendpoint = \"adminapisgp.im.qcloud.com\"\nsdk_app_id = 1\nadmin = \"a\"\nsecret_key = { env = \"K\" }\nsender = \"s\"\nrecipient = \"r\"\ngroup = \"g\"\n",
                "line 9: targets[0].tencent.endpoint: must be an http:// or https:// URL",
            ),
        ];
        for (text, expected) in cases {
            let found = problems(&text);
            assert!(
                found.iter().any(|p| p.contains(expected)),
                "expected `{expected}` in {found:?}"
            );
        }
    }

    #[test]
    fn secrets_come_from_env_or_file_and_plain_ones_warn() {
        let tencent = |secret: &str| {
            MINIMAL.replace("provider = \"simulator\"", "provider = \"tencent\"")
                + &format!(
                    "[targets.tencent]\nendpoint = \"https://x\"\nsdk_app_id = 1\nadmin = \"a\"\nsecret_key = {secret}\nsender = \"s\"\nrecipient = \"r\"\ngroup = \"g\"\n"
                )
        };
        let env = Config::parse(&tencent("{ env = \"TIM_KEY\" }"), "t").unwrap();
        let ProviderSettings::Tencent(settings) = &env.targets[0].provider else {
            panic!("a tencent target: {:?}", env.targets[0].provider);
        };
        assert_eq!(settings.secret_key, Secret::Env("TIM_KEY".into()));
        assert!(env.warnings.is_empty());
        let plain = Config::parse(&tencent("\"hunter2\""), "t").unwrap();
        assert_eq!(plain.warnings.len(), 1);
        assert!(
            plain.warnings[0]
                .to_string()
                .contains("targets[0].tencent.secret_key")
        );
        assert!(
            !format!("{:?}", plain.targets[0].provider).contains("hunter2"),
            "Debug leaks the secret"
        );
        let both = problems(&tencent("{ env = \"A\", file = \"/b\" }"));
        assert!(
            both.iter().any(|p| p.contains("either env or file")),
            "{both:?}"
        );
    }

    #[test]
    fn a_tencent_timeout_under_its_answer_time_warns_with_its_line() {
        let tencent = |timeout: &str| {
            MINIMAL.replace(
                "provider = \"simulator\"",
                &format!("provider = \"tencent\"\ntimeout = \"{timeout}\""),
            ) + "[targets.tencent]\nendpoint = \"https://x\"\nsdk_app_id = 1\nadmin = \"a\"\nsecret_key = { env = \"K\" }\nsender = \"s\"\nrecipient = \"r\"\ngroup = \"g\"\n"
        };
        let short = Config::parse(&tencent("2500ms"), "t").unwrap();
        let warnings: Vec<String> = short.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("line 5: targets[0].timeout: 2500ms is shorter than the 3s"),
            "{warnings:?}"
        );
        let enough = Config::parse(&tencent("3s"), "t").unwrap();
        assert!(enough.warnings.is_empty(), "{:?}", enough.warnings);
        let simulator = Config::parse(
            &MINIMAL.replace(
                "provider = \"simulator\"",
                "provider = \"simulator\"\ntimeout = \"1s\"",
            ),
            "t",
        )
        .unwrap();
        assert!(
            simulator.warnings.is_empty(),
            "only Tencent's own answer time matters"
        );
    }

    #[test]
    fn durations_parse_in_their_units() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        for bad in ["", "s", "5", "5 s", "-5s", "5d"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
