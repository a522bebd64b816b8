//! Probes: one folder per provider. A probe performs one attempt and reports
//! its outcome; the scheduler owns timing, deadlines and recording.
//!
//! Adding a provider touches only its own folder (settings and their
//! [`Adapter`], the probe, its error-code table, its setup) and the lists
//! docs/layout.md "Adding a provider" names.

pub mod calls;
pub mod delivery;
mod fault;
pub mod http;
mod lenient;
pub mod matrix;
pub mod simulator;
pub mod tencent;
pub mod xmpp;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use crate::attempt::{Delivery, InconclusiveReason, Kind, Outcome};
use crate::clock::Clock;
use crate::secret::Secret;
use delivery::DeliveryMode;
pub use fault::Fault;
pub use lenient::Lenient;

/// Which provider a target uses: `provider = "..."` in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Tencent,
    Matrix,
    Xmpp,
    Simulator,
    Http,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Tencent => "tencent",
            Provider::Matrix => "matrix",
            Provider::Xmpp => "xmpp",
            Provider::Simulator => "simulator",
            Provider::Http => "http",
        }
    }
}

/// A target's provider with its settings, so a target cannot hold the
/// settings of another provider or lack its own.
#[derive(Debug, Clone)]
pub enum ProviderSettings {
    Tencent(tencent::TencentSettings),
    Matrix(matrix::MatrixSettings),
    Xmpp(xmpp::XmppSettings),
    Simulator(simulator::SimulatorSettings),
    Http(Box<http::HttpSettings>),
}

/// The one dispatch on the provider: everything a target does with its
/// provider goes through the settings' [`Adapter`].
impl std::ops::Deref for ProviderSettings {
    type Target = dyn Adapter;

    fn deref(&self) -> &(dyn Adapter + 'static) {
        match self {
            ProviderSettings::Tencent(s) => s,
            ProviderSettings::Matrix(s) => s,
            ProviderSettings::Xmpp(s) => s,
            ProviderSettings::Simulator(s) => s,
            ProviderSettings::Http(s) => s.as_ref(),
        }
    }
}

/// What a provider's settings do, implemented once in each provider's
/// folder (docs/layout.md "Adding a provider").
#[async_trait]
pub trait Adapter: Send + Sync {
    fn kind(&self) -> Provider;

    /// How long a healthy provider may take to answer: a shorter `timeout`
    /// gets a warning, since it would record slow successes as failures.
    fn answers_within(&self) -> Option<Duration>;

    /// What is wrong with the settings, as (field in the provider's section, message).
    fn check(&self) -> Vec<(&'static str, String)>;

    /// The secrets the settings hold, by field, so plain-text ones can be warned about.
    fn secrets(&self) -> Vec<(&'static str, &Secret)>;

    /// The probe that logs in and sends for a target.
    fn probe(&self, context: &ProbeContext) -> anyhow::Result<Arc<dyn Probe>>;

    /// Whether the provider confirms delivery through a recipient account,
    /// as `delivery = "require"` needs.
    fn confirms_delivery(&self) -> bool;

    /// Prepares the provider for probing (`improbe setup`), idempotently,
    /// and says what was done; `None` for a provider with nothing to set up.
    async fn setup(&self) -> Option<anyhow::Result<Vec<String>>>;

    /// Whether a failed attempt's provider error code is missing from the
    /// provider's classification table: it counts against the provider (an
    /// outage must not be hidden), but a claim should not rest on it unchecked.
    fn is_unclassified_code(&self, error_code: &str) -> bool;
}

/// What one attempt found. A failed attempt is data, not an `Err`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOutcome {
    pub outcome: Outcome,
    pub http_status: Option<i32>,
    pub error_code: Option<String>,
    pub error: Option<String>,
    /// Why an attempt is inconclusive.
    pub reason: Option<InconclusiveReason>,
    /// For a send whose delivery was checked: whether the recipient saw it,
    /// and after how long from the send's start.
    pub delivery: Option<Delivery>,
    /// When the provider answered, if the probe went on waiting after that
    /// (for delivery): the attempt's latency is the answer's, not the wait's.
    pub answered_after: Option<Duration>,
}

impl ProbeOutcome {
    pub fn ok(http_status: Option<i32>) -> Self {
        Self {
            outcome: Outcome::Ok,
            http_status,
            error_code: None,
            error: None,
            reason: None,
            delivery: None,
            answered_after: None,
        }
    }

    pub fn fail(
        http_status: Option<i32>,
        error_code: Option<String>,
        error: impl Into<String>,
    ) -> Self {
        Self {
            outcome: Outcome::Fail,
            http_status,
            error_code,
            error: Some(error.into()),
            reason: None,
            delivery: None,
            answered_after: None,
        }
    }

    pub fn inconclusive(
        reason: InconclusiveReason,
        http_status: Option<i32>,
        error_code: Option<String>,
        error: impl Into<String>,
    ) -> Self {
        Self {
            outcome: Outcome::Inconclusive,
            http_status,
            error_code,
            error: Some(error.into()),
            reason: Some(reason),
            delivery: None,
            answered_after: None,
        }
    }

    /// The attempt's deadline passed: a failure in the minute it started.
    pub fn timed_out(after: std::time::Duration) -> Self {
        Self::fail(
            None,
            None,
            format!("timeout after {}", crate::text::humanize(after)),
        )
    }
}

/// A transport error with its cause chain, e.g. "error sending request:
/// client error (Connect): tcp connect error: Connection refused". Strip the
/// URL first (`without_url`) where it may carry a signature.
pub fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The process's HTTP clients, shared by every target: building one parses the
/// TLS root store, and one pool serves all targets of an endpoint.
#[derive(Clone)]
pub(crate) struct HttpClients {
    pub pooled: reqwest::Client,
    /// Keeps no idle connection, so every call opens a new one (DNS, TCP, TLS).
    pub unpooled: reqwest::Client,
}

impl HttpClients {
    pub fn shared() -> anyhow::Result<HttpClients> {
        static SHARED: std::sync::OnceLock<HttpClients> = std::sync::OnceLock::new();
        if let Some(clients) = SHARED.get() {
            return Ok(clients.clone());
        }
        let built = HttpClients {
            pooled: http_client(true)?,
            unpooled: http_client(false)?,
        };
        Ok(SHARED.get_or_init(|| built).clone())
    }
}

fn http_client(pool: bool) -> anyhow::Result<reqwest::Client> {
    let builder =
        reqwest::Client::builder().user_agent(concat!("improbe/", env!("CARGO_PKG_VERSION")));
    let builder = if pool {
        builder
    } else {
        // A connection that carries one request and closes needs no TCP
        // keepalive: four socket options fewer per login (docs/performance.md).
        builder
            .pool_max_idle_per_host(0)
            .tcp_keepalive(None)
            .tcp_keepalive_interval(None)
            .tcp_keepalive_retries(None)
    };
    Ok(builder.build()?)
}

/// What a provider's probe is built with, besides its own settings.
#[derive(Clone)]
pub struct ProbeContext {
    pub clock: Arc<dyn Clock>,
    pub target: String,
    pub prober: String,
    /// The attempt's deadline (`timeout`), for probes that wait for delivery.
    pub timeout: Duration,
    pub delivery: DeliveryMode,
}

/// One provider's way of logging in and sending.
#[async_trait]
pub trait Probe: Send + Sync {
    async fn attempt(&self, kind: Kind) -> ProbeOutcome;
}
