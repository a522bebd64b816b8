//! Raw TOML shapes to typed settings: every problem with its TOML path and line.

use std::fmt::Write as _;

use serde::Deserialize;
use toml::de::{DeTable, DeValue};

use super::raw::*;
use super::*;

/// Validates config text; `origin` names it in errors (usually the file path).
pub(super) fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
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
        contracts: BTreeMap::new(),
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

fn parse_raw(text: &str, lines: &LineIndex) -> Result<RawConfig, Problem> {
    let toml_problem = |path: String, error: toml::de::Error| Problem {
        path,
        line: error.span().map(|s| lines.line_of(s.start)),
        message: error.message().trim().to_owned(),
    };
    let deserializer =
        toml::de::Deserializer::parse(text).map_err(|e| toml_problem(String::new(), e))?;
    // The config is read without tracking paths and an error's TOML path is
    // found afterwards from its span, in the document parsed again: a
    // path-tracking wrapper around the deserialiser compiled every config
    // shape a second time, about 0.4 MB of machine code that a running
    // prober keeps resident (docs/performance.md, memory).
    RawConfig::deserialize(deserializer).map_err(|e| {
        let path = e
            .span()
            .and_then(|span| path_at(DeTable::parse(text).ok()?.get_ref(), &span))
            .unwrap_or_default();
        toml_problem(path, e)
    })
}

/// The TOML path (`targets[0].sla.timezone`) of the innermost key or value
/// whose text holds `span`; `None` for the document itself.
fn path_at(table: &DeTable<'_>, span: &Range<usize>) -> Option<String> {
    let mut path = String::new();
    table_path(table, span, &mut path).then_some(path)
}

fn table_path(table: &DeTable<'_>, span: &Range<usize>, path: &mut String) -> bool {
    for (key, value) in table {
        let mark = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key.get_ref());
        if value_path(value, span, path) || holds(&key.span(), span) {
            return true;
        }
        path.truncate(mark);
    }
    false
}

fn value_path(value: &Spanned<DeValue<'_>>, span: &Range<usize>, path: &mut String) -> bool {
    match value.get_ref() {
        DeValue::Table(table) if table_path(table, span, path) => return true,
        DeValue::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let mark = path.len();
                let _ = write!(path, "[{index}]");
                if value_path(item, span, path) {
                    return true;
                }
                path.truncate(mark);
            }
        }
        _ => {}
    }
    holds(&value.span(), span)
}

fn holds(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
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

pub(super) struct Validator<'a> {
    lines: &'a LineIndex,
    problems: Vec<Problem>,
    warnings: Vec<Problem>,
    /// Every contract a target may name: the built-in ones and `[contracts.*]`.
    pub(super) contracts: BTreeMap<String, Arc<Contract>>,
}

impl Validator<'_> {
    pub(super) fn problem(
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
        self.contracts(raw.contracts);
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
        let mut channels = HashSet::new();
        let notify: Vec<Option<ChannelConfig>> = raw
            .notify
            .into_iter()
            .enumerate()
            .map(|(i, n)| {
                if !channels.insert(n.name.get_ref().clone()) {
                    let message = format!(
                        "duplicate channel name `{}`; names must be unique",
                        n.name.get_ref()
                    );
                    self.problem(format!("notify[{i}].name"), Some(n.name.span()), message);
                }
                self.channel(i, n, &seen)
            })
            .collect();
        Some(Config {
            prober: prober?,
            database: database?,
            targets: targets.into_iter().collect::<Option<_>>()?,
            exclusions: exclusions.into_iter().collect::<Option<_>>()?,
            notify: notify.into_iter().collect::<Option<_>>()?,
            contracts: self.contracts.clone(),
            warnings: Vec::new(),
        })
    }

    fn prober(&mut self, raw: RawProber) -> Option<ProberSettings> {
        let id = match raw.id {
            Some(id) => {
                if !is_identifier(id.get_ref()) {
                    self.problem("prober.id", Some(id.span()), NAME_RULE);
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
        let web = raw.web.map(|web| self.web(web)).unwrap_or_default();
        let start_burst = match raw.start_burst {
            Some(burst) if !(1..=MAX_START_BURST).contains(burst.get_ref()) => {
                let message = format!(
                    "{} is not a number of starts from 1 to {MAX_START_BURST}",
                    burst.get_ref()
                );
                self.problem("prober.start_burst", Some(burst.span()), message);
                return None;
            }
            Some(burst) => burst.into_inner() as usize,
            None => DEFAULT_START_BURST,
        };
        Some(ProberSettings {
            id,
            listen: raw.listen.map(|l| l.0),
            control_url: raw.control_url.map(Spanned::into_inner),
            data_dir,
            web,
            start_burst,
        })
    }

    fn web(&mut self, raw: Spanned<RawWeb>) -> WebSettings {
        let span = raw.span();
        let raw = raw.into_inner();
        let tls = match (raw.tls_cert_file, raw.tls_key_file) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert_file: PathBuf::from(cert.into_inner()),
                key_file: PathBuf::from(key.into_inner()),
            }),
            (None, None) => None,
            (Some(_), None) | (None, Some(_)) => {
                self.problem(
                    "prober.web",
                    Some(span),
                    "`tls_cert_file` and `tls_key_file` go together",
                );
                None
            }
        };
        let mut users = BTreeMap::new();
        for (user, hash) in raw.basic_auth_users {
            if user.is_empty() || user.contains(':') {
                self.problem(
                    format!("prober.web.basic_auth_users.{user}"),
                    Some(hash.span()),
                    "a user name must be non-empty and hold no `:`",
                );
            }
            if !is_bcrypt_hash(hash.get_ref()) {
                self.problem(
                    format!("prober.web.basic_auth_users.{user}"),
                    Some(hash.span()),
                    "must be a bcrypt hash ($2b$..., as `htpasswd -nbB user password` prints after the colon), never the password itself",
                );
            }
            users.insert(user, hash.into_inner());
        }
        WebSettings {
            tls,
            basic_auth_users: users,
        }
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
            Some(days) if *days.get_ref() > MAX_RETENTION_DAYS => {
                // A larger count would overflow the retention arithmetic
                // and stop retention for good.
                let message = format!(
                    "{} days is more than improbe can count back from today; use at most {MAX_RETENTION_DAYS} (100 years)",
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
        let raw_window_days = match raw.raw_window_days {
            Some(days) if *days.get_ref() > attempts_retention_days => {
                let message = format!(
                    "{} days is longer than attempts_retention_days ({attempts_retention_days}): successes would be pruned before they are folded; use at most {attempts_retention_days}",
                    days.get_ref()
                );
                self.problem("database.raw_window_days", Some(days.span()), message);
                return None;
            }
            Some(days) => days.into_inner(),
            None => DEFAULT_RAW_WINDOW_DAYS.min(attempts_retention_days),
        };
        let pooler = match raw.pooler {
            Some(pooler) if *pooler.get_ref() != Pooler::None && url.starts_with("sqlite:") => {
                let message =
                    "a connection pooler stands in front of PostgreSQL only; this `url` is SQLite";
                self.problem("database.pooler", Some(pooler.span()), message.to_owned());
                return None;
            }
            Some(pooler) => pooler.into_inner(),
            None => Pooler::None,
        };
        Some(DatabaseSettings {
            url,
            attempts_retention_days,
            raw_window_days,
            pooler,
        })
    }

    fn target(&mut self, i: usize, mut raw: RawTarget) -> Option<Target> {
        let sections = raw.provider_sections();
        let path = |field: &str| format!("targets[{i}].{field}");
        let name = raw.name.get_ref().clone();
        if !is_identifier(&name) {
            self.problem(path("name"), Some(raw.name.span()), NAME_RULE);
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
        let login_interval = raw.login_interval.as_ref().map(|d| d.get_ref().0);
        if let Some(login_interval) = login_interval
            && (login_interval < interval || login_interval > MAX_LOGIN_INTERVAL)
        {
            self.problem(
                path("login_interval"),
                raw.login_interval.as_ref().map(Spanned::span),
                format!(
                    "must be at least interval ({}) and at most 1d",
                    humanize(interval)
                ),
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
        let mut chosen = None;
        for (span, settings) in sections {
            let kind = settings.kind();
            if kind == provider {
                chosen = Some((span, settings));
            } else {
                let name = kind.as_str();
                self.problem(
                    path(name),
                    Some(span),
                    format!("[targets.{name}] is only for provider = \"{name}\""),
                );
            }
        }
        // The simulator's section may be left out: it has a default endpoint.
        let settings = chosen.or_else(|| {
            (provider == Provider::Simulator).then(|| {
                (
                    provider_span.clone(),
                    ProviderSettings::Simulator(SimulatorSettings::default()),
                )
            })
        });
        if let Some(within) = settings.as_ref().and_then(|(_, s)| s.answers_within())
            && !timeout.is_zero()
            && timeout < within
        {
            let message = format!(
                "{} is shorter than the {} the {} provider may take to answer: slow successes would be recorded as failures; use at least {}",
                humanize(timeout),
                humanize(within),
                provider.as_str(),
                humanize(within),
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
                    Some(provider_span.clone()),
                    format!("provider = \"{name}\" needs a [targets.{name}] section"),
                );
                None
            }
        };
        let delivery = raw.delivery.unwrap_or_default();
        if delivery == DeliveryMode::Require
            && settings.as_ref().is_some_and(|s| !s.confirms_delivery())
        {
            self.problem(
                path("delivery"),
                Some(provider_span.clone()),
                format!(
                    "\"require\" needs a provider that confirms delivery with a recipient account; provider = \"{}\" here does not",
                    provider.as_str()
                ),
            );
        }
        let sla = self.sla(&path("sla"), raw.sla)?;
        self.check_period_alignment(&path("sla.contract"), &sla);
        Some(Target {
            name,
            provider: settings?,
            interval,
            login_interval,
            timeout,
            operations,
            mode: raw.mode.unwrap_or_default(),
            delivery,
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
        if raw.monthly_fee.0 > Decimal::from(MAX_MONTHLY_FEE) {
            self.problem(
                format!("{path}.monthly_fee"),
                Some(span.clone()),
                format!("must be at most {MAX_MONTHLY_FEE}"),
            );
        }
        if !is_currency_code(&raw.currency) {
            self.problem(
                format!("{path}.currency"),
                Some(span.clone()),
                format!(
                    "`{}` is not an ISO 4217 code: use three capital letters, such as USD or CNY",
                    raw.currency.escape_debug()
                ),
            );
        }
        let contract = self.contract_named(path, raw.contract.as_ref())?;
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
            calendar: ServiceCalendar::new(raw.service_start.0, raw.timezone.0)
                .with_period(contract.period),
            business_days: BusinessCalendar { holidays, workdays },
            monthly_fee: raw.monthly_fee.0,
            currency: raw.currency,
            contract,
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

impl Validator<'_> {
    fn channel(
        &mut self,
        i: usize,
        raw: RawNotify,
        targets: &HashSet<String>,
    ) -> Option<ChannelConfig> {
        let path = |field: &str| format!("notify[{i}].{field}");
        let name = raw.name.get_ref().clone();
        if !is_identifier(&name) {
            self.problem(path("name"), Some(raw.name.span()), NAME_RULE);
        }
        let kind = *raw.kind.get_ref();
        // Keys that belong to other kinds are mistakes, not silently ignored.
        let allowed: &[&str] = match kind {
            ChannelKind::Webhook => &["url", "secret"],
            ChannelKind::Slack => &["url"],
            ChannelKind::Pagerduty => &["routing_key", "url"],
            ChannelKind::Email => &[
                "server", "tls", "ca_file", "username", "password", "from", "to",
            ],
        };
        let present = [
            ("url", raw.url.as_ref().map(Spanned::span)),
            ("secret", raw.secret.as_ref().map(Spanned::span)),
            ("routing_key", raw.routing_key.as_ref().map(Spanned::span)),
            ("server", raw.server.as_ref().map(Spanned::span)),
            ("tls", raw.tls.as_ref().map(Spanned::span)),
            ("ca_file", raw.ca_file.as_ref().map(Spanned::span)),
            ("username", raw.username.as_ref().map(Spanned::span)),
            ("password", raw.password.as_ref().map(Spanned::span)),
            ("from", raw.from.as_ref().map(Spanned::span)),
            ("to", raw.to.as_ref().map(Spanned::span)),
        ];
        for (key, span) in present {
            if let Some(span) = span
                && !allowed.contains(&key)
            {
                let message = format!("`{key}` does not apply to kind = \"{}\"", kind.as_str());
                self.problem(path(key), Some(span), message);
            }
        }
        let kind_span = raw.kind.span();
        // The key's value, or the problem that it is missing, named once.
        let required = |validator: &mut Self, key: &str, value: &Option<Spanned<Secret>>| {
            let found = value.as_ref().map(|v| v.get_ref().clone());
            if found.is_none() {
                let message = format!("kind = \"{}\" needs `{key}`", kind.as_str());
                validator.problem(path(key), Some(kind_span.clone()), message);
            }
            found
        };
        let settings = match kind {
            ChannelKind::Webhook => {
                required(self, "url", &raw.url).map(|url| ChannelSettings::Webhook {
                    url,
                    secret: raw.secret.clone().map(Spanned::into_inner),
                })
            }
            ChannelKind::Slack => {
                required(self, "url", &raw.url).map(|url| ChannelSettings::Slack { url })
            }
            ChannelKind::Pagerduty => {
                let url = match raw.url.clone().map(Spanned::into_inner) {
                    None => Some(crate::notify::channels::PAGERDUTY_EVENTS_URL.to_owned()),
                    Some(Secret::Plain(url)) => Some(url),
                    Some(_) => {
                        self.problem(
                            path("url"),
                            raw.url.as_ref().map(Spanned::span),
                            "the Events API URL is not a secret: write it as a string",
                        );
                        None
                    }
                };
                let routing_key = required(self, "routing_key", &raw.routing_key);
                routing_key
                    .zip(url)
                    .map(|(routing_key, url)| ChannelSettings::Pagerduty { routing_key, url })
            }
            ChannelKind::Email => self.email(i, &raw),
        };
        for (key, secret) in [
            ("url", &raw.url),
            ("secret", &raw.secret),
            ("routing_key", &raw.routing_key),
            ("password", &raw.password),
        ] {
            if let Some(secret) = secret
                && !(key == "url" && kind == ChannelKind::Pagerduty)
            {
                self.warn_plain_secret(path(key), secret.get_ref());
            }
        }
        if let Some(list) = &raw.targets {
            for (j, target) in list.get_ref().iter().enumerate() {
                if !targets.contains(target.get_ref()) {
                    let message = format!("no target named `{}` in [[targets]]", target.get_ref());
                    self.problem(
                        format!("notify[{i}].targets[{j}]"),
                        Some(target.span()),
                        message,
                    );
                }
            }
        }
        if let Some(events) = &raw.events
            && events.get_ref().contains(&EventKind::Test)
        {
            self.problem(
                path("events"),
                Some(events.span()),
                "`test` events always pass; list only the others",
            );
        }
        Some(ChannelConfig {
            name,
            settings: settings?,
            events: raw.events.map(Spanned::into_inner),
            targets: raw.targets.map(|t| {
                t.into_inner()
                    .into_iter()
                    .map(Spanned::into_inner)
                    .collect()
            }),
        })
    }

    fn email(&mut self, i: usize, raw: &RawNotify) -> Option<ChannelSettings> {
        let path = |field: &str| format!("notify[{i}].{field}");
        let tls = raw
            .tls
            .as_ref()
            .map_or(SmtpTls::default(), |t| *t.get_ref());
        for (key, found) in [
            ("server", raw.server.is_some()),
            ("from", raw.from.is_some()),
            ("to", raw.to.is_some()),
        ] {
            if !found {
                self.problem(
                    path(key),
                    Some(raw.kind.span()),
                    format!("kind = \"email\" needs `{key}`"),
                );
            }
        }
        let (Some(server), Some(from), Some(to)) = (&raw.server, &raw.from, &raw.to) else {
            return None;
        };
        let (host, port) = match server.get_ref().rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && !port.contains(']') => {
                match port.parse::<u16>() {
                    Ok(port) => (host.trim_matches(['[', ']']).to_owned(), port),
                    Err(_) => {
                        self.problem(
                            path("server"),
                            Some(server.span()),
                            "must be HOST or HOST:PORT",
                        );
                        return None;
                    }
                }
            }
            _ => (
                server.get_ref().trim_matches(['[', ']']).to_owned(),
                tls.default_port(),
            ),
        };
        if tls == SmtpTls::None && !is_loopback(&host) {
            self.problem(
                path("tls"),
                raw.tls.as_ref().map(Spanned::span),
                "\"none\" sends mail and passwords in clear text: allowed only to a loopback address; use \"starttls\" or \"direct\"",
            );
        }
        if raw.username.is_some() != raw.password.is_some() {
            self.problem(
                path("password"),
                Some(raw.kind.span()),
                "`username` and `password` go together",
            );
        }
        if to.get_ref().is_empty() {
            self.problem(
                path("to"),
                Some(to.span()),
                "must name at least one address",
            );
        }
        for (key, address) in std::iter::once(("from", from))
            .map(|a| (a.0.to_owned(), a.1.get_ref().clone(), a.1.span()))
            .chain(
                to.get_ref()
                    .iter()
                    .enumerate()
                    .map(|(j, a)| (format!("to[{j}]"), a.clone(), to.span())),
            )
            .map(|(k, a, span)| (k, (a, span)))
        {
            if address.0.parse::<lettre::message::Mailbox>().is_err() {
                self.problem(
                    path(&key),
                    Some(address.1),
                    format!("`{}` is not an email address", address.0),
                );
            }
        }
        Some(ChannelSettings::Email(EmailSettings {
            host,
            port,
            tls,
            ca_file: raw.ca_file.as_ref().map(|f| PathBuf::from(f.get_ref())),
            username: raw.username.as_ref().map(|u| u.get_ref().clone()),
            password: raw.password.as_ref().map(|p| p.get_ref().clone()),
            from: from.get_ref().clone(),
            to: to.get_ref().clone(),
        }))
    }
}

/// A name that is safe in a URL path segment, a metric label and a file
/// name: letters, digits, `-`, `_` and `.`, at most [`MAX_NAME_BYTES`], and
/// not only dots (`/report/..` would leave the page).
fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME_BYTES
        && s.chars().any(|c| c != '.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A bcrypt hash as `htpasswd -B` and Prometheus' web config write it.
fn is_bcrypt_hash(s: &str) -> bool {
    s.parse::<bcrypt::HashParts>().is_ok()
}

/// A currency as ISO 4217 spells it: three capital letters.
fn is_currency_code(s: &str) -> bool {
    s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase())
}

fn default_prober_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| is_identifier(h))
        .unwrap_or_else(|| "improbe".to_owned())
}
