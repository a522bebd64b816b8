//! The TOML file's shapes as serde reads them, before validation, and the
//! small value types read from strings (durations, dates, zones, money).

use super::*;

// --- The raw file shape: what serde reads before validation. ---

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) prober: Option<RawProber>,
    pub(super) database: Option<RawDatabase>,
    #[serde(default)]
    pub(super) targets: Vec<RawTarget>,
    #[serde(default)]
    pub(super) exclusions: Vec<RawExclusion>,
    #[serde(default)]
    pub(super) notify: Vec<RawNotify>,
    #[serde(default)]
    pub(super) contracts: std::collections::BTreeMap<String, Spanned<RawContract>>,
}

/// `[contracts.NAME]` (docs/contracts.md).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawContract {
    pub(super) period: Spanned<PeriodName>,
    pub(super) interval: Option<Spanned<DurationText>>,
    pub(super) down_when: Option<Spanned<DownWhenName>>,
    pub(super) error_rate_above: Option<Spanned<Percent>>,
    pub(super) slow_after: Option<Spanned<DurationText>>,
    pub(super) commitment: Spanned<Percent>,
    #[serde(default)]
    pub(super) credits: Vec<Spanned<RawCredit>>,
    pub(super) claim_opens: Option<Spanned<ClaimOpensName>>,
    pub(super) claim_days: Option<Spanned<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCredit {
    pub(super) below: Percent,
    pub(super) percent: u32,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum PeriodName {
    ServiceMonth,
    CalendarMonth,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum DownWhenName {
    AllFailed,
    ErrorRate,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum ClaimOpensName {
    PeriodEnd,
    FifthBusinessDay,
}

/// One `[[notify]]` entry: the keys of every channel kind, checked against
/// its `kind` after reading.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotify {
    pub(super) name: Spanned<String>,
    pub(super) kind: Spanned<ChannelKind>,
    pub(super) events: Option<Spanned<Vec<EventKind>>>,
    pub(super) targets: Option<Spanned<Vec<Spanned<String>>>>,
    /// webhook, slack, pagerduty (there: the Events API, for a proxy).
    pub(super) url: Option<Spanned<Secret>>,
    /// webhook: the HMAC-SHA256 key.
    pub(super) secret: Option<Spanned<Secret>>,
    /// pagerduty.
    pub(super) routing_key: Option<Spanned<Secret>>,
    /// email: `host:port` (the port defaults by `tls`).
    pub(super) server: Option<Spanned<String>>,
    pub(super) tls: Option<Spanned<SmtpTls>>,
    pub(super) ca_file: Option<Spanned<String>>,
    pub(super) username: Option<Spanned<String>>,
    pub(super) password: Option<Spanned<Secret>>,
    pub(super) from: Option<Spanned<String>>,
    pub(super) to: Option<Spanned<Vec<String>>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProber {
    pub(super) id: Option<Spanned<String>>,
    pub(super) listen: Option<ListenAddr>,
    pub(super) control_url: Option<Spanned<String>>,
    pub(super) data_dir: Option<Spanned<String>>,
    pub(super) start_burst: Option<Spanned<u32>>,
    pub(super) web: Option<Spanned<RawWeb>>,
}

/// `[prober.web]`: protection of the HTTP surface.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWeb {
    pub(super) tls_cert_file: Option<Spanned<String>>,
    pub(super) tls_key_file: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) basic_auth_users: std::collections::BTreeMap<String, Spanned<String>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDatabase {
    pub(super) url: Option<Spanned<String>>,
    pub(super) attempts_retention_days: Option<Spanned<u32>>,
    pub(super) raw_window_days: Option<Spanned<u32>>,
    pub(super) pooler: Option<Spanned<super::Pooler>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTarget {
    pub(super) name: Spanned<String>,
    pub(super) provider: Spanned<Provider>,
    pub(super) interval: Option<Spanned<DurationText>>,
    pub(super) login_interval: Option<Spanned<DurationText>>,
    pub(super) timeout: Option<Spanned<DurationText>>,
    pub(super) operations: Option<Spanned<Vec<Kind>>>,
    pub(super) mode: Option<SendMode>,
    pub(super) delivery: Option<DeliveryMode>,
    pub(super) max_sends_per_day: Option<Spanned<u32>>,
    pub(super) tencent: Option<Spanned<TencentSettings>>,
    pub(super) matrix: Option<Spanned<MatrixSettings>>,
    pub(super) xmpp: Option<Spanned<XmppSettings>>,
    pub(super) simulator: Option<Spanned<SimulatorSettings>>,
    pub(super) http: Option<Spanned<HttpSettings>>,
    pub(super) sla: Spanned<RawSla>,
}

impl RawTarget {
    /// Every provider section the target has, whichever its `provider`:
    /// the one list of `[targets.<provider>]` sections.
    pub(super) fn provider_sections(&mut self) -> Vec<(std::ops::Range<usize>, ProviderSettings)> {
        fn section<T>(
            found: &mut Vec<(std::ops::Range<usize>, ProviderSettings)>,
            section: Option<Spanned<T>>,
            settings: fn(T) -> ProviderSettings,
        ) {
            if let Some(s) = section {
                found.push((s.span(), settings(s.into_inner())));
            }
        }
        let mut found = Vec::new();
        section(&mut found, self.tencent.take(), ProviderSettings::Tencent);
        section(&mut found, self.matrix.take(), ProviderSettings::Matrix);
        section(&mut found, self.xmpp.take(), ProviderSettings::Xmpp);
        section(
            &mut found,
            self.simulator.take(),
            ProviderSettings::Simulator,
        );
        section(&mut found, self.http.take(), |s| {
            ProviderSettings::Http(Box::new(s))
        });
        found
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSla {
    pub(super) service_start: DateText,
    pub(super) timezone: TimeZoneName,
    pub(super) monthly_fee: Money,
    #[serde(default = "default_currency")]
    pub(super) currency: String,
    #[serde(default)]
    pub(super) holidays: Vec<DateText>,
    #[serde(default)]
    pub(super) workdays: Vec<DateText>,
    pub(super) contract: Option<Spanned<String>>,
}

fn default_currency() -> String {
    "USD".to_owned()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExclusion {
    pub(super) target: Spanned<String>,
    pub(super) start: Spanned<InstantText>,
    pub(super) end: Spanned<InstantText>,
    pub(super) reason: Spanned<String>,
    pub(super) announced_at: Option<InstantText>,
}

/// Implements `Deserialize` for a newtype read from a string by `parse`.
macro_rules! from_text {
    ($name:ident($inner:ty), $expected:literal, $parse:expr) => {
        pub(super) struct $name(pub(super) $inner);

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
    Percent(Decimal),
    "a percentage as a decimal string such as \"99.95\"",
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
