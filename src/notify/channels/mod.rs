//! Where events go: one `[[notify]]` entry is one channel. Each kind is one
//! file that renders an [`Event`] in its receiver's format and sends it.

mod email;
mod pagerduty;
mod slack;
mod webhook;

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::events::{Event, EventKind};
use crate::secret::Secret;

pub use email::SmtpTls;
pub use pagerduty::DEFAULT_EVENTS_URL as PAGERDUTY_EVENTS_URL;
pub use webhook::signature as webhook_signature;

/// How long one delivery to a channel may take before it counts as failed.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Webhook,
    Slack,
    Email,
    Pagerduty,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Webhook => "webhook",
            ChannelKind::Slack => "slack",
            ChannelKind::Email => "email",
            ChannelKind::Pagerduty => "pagerduty",
        }
    }
}

/// One validated `[[notify]]` entry.
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    pub name: String,
    pub settings: ChannelSettings,
    /// `None`: every event kind.
    pub events: Option<Vec<EventKind>>,
    /// `None`: every target.
    pub targets: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
pub enum ChannelSettings {
    Webhook { url: Secret, secret: Option<Secret> },
    Slack { url: Secret },
    Email(EmailSettings),
    Pagerduty { routing_key: Secret, url: String },
}

#[derive(Debug, Clone)]
pub struct EmailSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub ca_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub from: String,
    pub to: Vec<String>,
}

impl ChannelSettings {
    pub fn kind(&self) -> ChannelKind {
        match self {
            ChannelSettings::Webhook { .. } => ChannelKind::Webhook,
            ChannelSettings::Slack { .. } => ChannelKind::Slack,
            ChannelSettings::Email(_) => ChannelKind::Email,
            ChannelSettings::Pagerduty { .. } => ChannelKind::Pagerduty,
        }
    }
}

impl ChannelSettings {
    /// Every secret of the channel, by its key in `[[notify]]`.
    pub fn secrets(&self) -> Vec<(&'static str, &Secret)> {
        match self {
            ChannelSettings::Webhook { url, secret } => std::iter::once(("url", url))
                .chain(secret.as_ref().map(|s| ("secret", s)))
                .collect(),
            ChannelSettings::Slack { url } => vec![("url", url)],
            ChannelSettings::Email(e) => e.password.iter().map(|p| ("password", p)).collect(),
            ChannelSettings::Pagerduty { routing_key, .. } => vec![("routing_key", routing_key)],
        }
    }
}

impl ChannelConfig {
    /// Whether this channel takes `kind` events about `target`.
    pub fn wants(&self, kind: EventKind, target: &str) -> bool {
        kind == EventKind::Test
            || (self.events.as_ref().is_none_or(|e| e.contains(&kind))
                && self
                    .targets
                    .as_ref()
                    .is_none_or(|t| t.iter().any(|n| n == target)))
    }
}

/// Why a delivery failed, in words safe for logs and the database: never a
/// URL (which may hold a token), a key or a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendFailure {
    pub message: String,
    /// The receiver refused this event for good (an HTTP 4xx other than
    /// 408 and 429, an SMTP 5xx): trying again would only hold back every
    /// later event of the channel.
    pub permanent: bool,
}

impl SendFailure {
    /// A failure worth retrying.
    pub fn transient(message: impl Into<String>) -> SendFailure {
        SendFailure {
            message: message.into(),
            permanent: false,
        }
    }

    /// A failure no retry can fix.
    pub fn permanent(message: impl Into<String>) -> SendFailure {
        SendFailure {
            message: message.into(),
            permanent: true,
        }
    }

    /// A transport error without the URL it was sent to.
    pub fn http(error: reqwest::Error) -> SendFailure {
        SendFailure::transient(format!("{:#}", anyhow::Error::from(error.without_url())))
    }

    /// A receiver's answer that was not a success. Its body is quoted up to
    /// 200 characters, control characters replaced.
    pub async fn status(response: reqwest::Response) -> SendFailure {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        let body: String = body
            .chars()
            .take(200)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let message = format!("answered HTTP {status}: {}", body.trim());
        let permanent = status.is_client_error()
            && status != reqwest::StatusCode::REQUEST_TIMEOUT
            && status != reqwest::StatusCode::TOO_MANY_REQUESTS;
        SendFailure { message, permanent }
    }
}

/// POSTs `body` as JSON; any 2xx is delivered.
async fn post_json(
    http: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
) -> Result<(), SendFailure> {
    let response = http
        .post(url)
        .json(body)
        .send()
        .await
        .map_err(SendFailure::http)?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(SendFailure::status(response).await)
    }
}

/// A channel ready to send: its secrets read, its client built.
pub struct Channel {
    pub config: ChannelConfig,
    transport: Transport,
}

enum Transport {
    Webhook(webhook::Webhook),
    Slack(slack::Slack),
    Email(Box<email::Email>),
    Pagerduty(pagerduty::Pagerduty),
}

impl Channel {
    /// Reads the channel's secrets and builds its client. Errors name the
    /// channel and where a secret was looked for, never its value.
    pub fn build(config: &ChannelConfig) -> anyhow::Result<Channel> {
        let http = || {
            reqwest::Client::builder()
                .user_agent(concat!("improbe/", env!("CARGO_PKG_VERSION")))
                .timeout(SEND_TIMEOUT)
                .build()
        };
        let reveal = |secret: &Secret, key: &str| {
            secret
                .reveal()
                .map_err(|e| anyhow::anyhow!("notify `{}` {key}: {e}", config.name))
        };
        let transport = match &config.settings {
            ChannelSettings::Webhook { url, secret } => Transport::Webhook(webhook::Webhook {
                http: http()?,
                url: reveal(url, "url")?,
                secret: secret.as_ref().map(|s| reveal(s, "secret")).transpose()?,
            }),
            ChannelSettings::Slack { url } => Transport::Slack(slack::Slack {
                http: http()?,
                url: reveal(url, "url")?,
            }),
            ChannelSettings::Email(settings) => {
                let password = settings
                    .password
                    .as_ref()
                    .map(|s| reveal(s, "password"))
                    .transpose()?;
                Transport::Email(Box::new(
                    email::Email::build(settings, password)
                        .map_err(|e| anyhow::anyhow!("notify `{}`: {e:#}", config.name))?,
                ))
            }
            ChannelSettings::Pagerduty { routing_key, url } => {
                Transport::Pagerduty(pagerduty::Pagerduty {
                    http: http()?,
                    url: url.clone(),
                    routing_key: reveal(routing_key, "routing_key")?,
                })
            }
        };
        Ok(Channel {
            config: config.clone(),
            transport,
        })
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Delivers one event, as [`Event::quoted`]; `Ok` only when the
    /// receiver accepted it.
    pub async fn send(&self, event: &Event) -> Result<(), SendFailure> {
        let event = &event.quoted();
        match &self.transport {
            Transport::Webhook(w) => w.send(event).await,
            Transport::Slack(s) => s.send(event).await,
            Transport::Email(e) => e.send(event).await,
            Transport::Pagerduty(p) => p.send(event).await,
        }
    }
}

/// The lines under an event's summary, for channels that show people more
/// than one line (Slack, email): the facts a reader acts on.
pub fn detail_lines(event: &Event) -> Vec<String> {
    let mut lines = Vec::new();
    match (&event.budget_line, event.service_month) {
        (Some(line), _) => lines.push(line.clone()),
        (None, Some(month)) => lines.push(format!(
            "Service Month {month}: {} of {} tolerated failure minutes used",
            event.failure_minutes, event.tolerated_minutes
        )),
        (None, None) => {}
    }
    if let Some(incident) = &event.incident {
        match (&incident.end, incident.minutes) {
            (Some(end), Some(minutes)) => lines.push(format!(
                "Incident: {} to {} ({minutes} min)",
                incident.start, end
            )),
            _ => lines.push(format!("Incident since {}", incident.start)),
        }
    }
    for error in &event.errors {
        let status = error
            .http_status
            .map(|s| format!("HTTP {s}"))
            .unwrap_or_default();
        let code = error.error_code.as_deref().unwrap_or("");
        lines.push(format!(
            "{} × {} {status} {code}: {}",
            error.count,
            error.outcome,
            error.samples.first().map_or("", String::as_str)
        ));
    }
    if let Some(budget) = &event.budget {
        lines.push(format!(
            "Availability {} %, credit {} % = {} {}",
            budget.availability_percent,
            budget.credit_percent,
            budget.credit_amount,
            budget.currency
        ));
    }
    if let Some(coverage) = &event.coverage {
        lines.push(format!(
            "Coverage {} since {}: {}",
            coverage.state, coverage.since, coverage.reason
        ));
    }
    if let Some(claim) = &event.claim {
        lines.push(format!(
            "Claim {} {} ({} %), window {} to {}",
            claim.credit_amount, claim.currency, claim.credit_percent, claim.opens, claim.deadline
        ));
    }
    lines
}
