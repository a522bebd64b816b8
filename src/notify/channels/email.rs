//! `kind = "email"`: one plain-text message per event over SMTP, STARTTLS
//! by default (lettre, on rustls).

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;

use super::{EmailSettings, SEND_TIMEOUT, SendFailure, detail_lines};
use crate::notify::events::Event;

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain TCP upgraded with STARTTLS, required (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Direct,
    /// No TLS: allowed only to a loopback address (a local relay, tests).
    None,
}

impl SmtpTls {
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::Starttls => 587,
            SmtpTls::Direct => 465,
            SmtpTls::None => 25,
        }
    }
}

pub(super) struct Email {
    mailer: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl Email {
    pub fn build(settings: &EmailSettings, password: Option<String>) -> anyhow::Result<Email> {
        let tls_parameters = || -> anyhow::Result<TlsParameters> {
            let mut builder = TlsParameters::builder(settings.host.clone());
            if let Some(path) = &settings.ca_file {
                let pem = std::fs::read(path)
                    .map_err(|e| anyhow::anyhow!("cannot read ca_file {}: {e}", path.display()))?;
                builder =
                    builder.add_root_certificate(Certificate::from_pem(&pem).map_err(|e| {
                        anyhow::anyhow!("ca_file {} holds no PEM certificate: {e}", path.display())
                    })?);
            }
            Ok(builder.build()?)
        };
        let tls = match settings.tls {
            SmtpTls::Starttls => Tls::Required(tls_parameters()?),
            SmtpTls::Direct => Tls::Wrapper(tls_parameters()?),
            SmtpTls::None => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            .port(settings.port)
            .tls(tls)
            .timeout(Some(SEND_TIMEOUT));
        if let (Some(user), Some(password)) = (&settings.username, password) {
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        let mailbox = |address: &str| -> anyhow::Result<Mailbox> {
            address
                .parse()
                .map_err(|e| anyhow::anyhow!("`{address}` is not an email address: {e}"))
        };
        Ok(Email {
            mailer: builder.build(),
            from: mailbox(&settings.from)?,
            to: settings
                .to
                .iter()
                .map(|a| mailbox(a))
                .collect::<anyhow::Result<_>>()?,
        })
    }

    pub async fn send(&self, event: &Event) -> Result<(), SendFailure> {
        let mut message = Message::builder()
            .from(self.from.clone())
            .subject(format!("[improbe] {}", event.summary))
            .header(ContentType::TEXT_PLAIN)
            .message_id(Some(format!("<{}@improbe>", message_id(&event.id))));
        for to in &self.to {
            message = message.to(to.clone());
        }
        let message = message
            .body(body(event))
            .map_err(|e| SendFailure::permanent(format!("cannot build the message: {e}")))?;
        self.mailer
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| SendFailure {
                message: format!("SMTP: {e}"),
                permanent: e.is_permanent(),
            })
    }
}

/// The message's text: the summary, the facts, the claim where there is one.
pub fn body(event: &Event) -> String {
    let mut text = format!("{}\n\n", event.summary);
    for line in detail_lines(event) {
        text.push_str(&format!("- {line}\n"));
    }
    if let Some(claim) = &event.claim {
        text.push_str("\n---\n\n");
        text.push_str(&claim.text);
    }
    text.push_str(&format!(
        "\nEvent {} ({}) at {}\n",
        event.id,
        event.event.as_str(),
        event.at
    ));
    text
}

/// An event id as a Message-ID's left part (letters, digits, `.`, `-`).
fn message_id(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '.'
            }
        })
        .collect()
}
