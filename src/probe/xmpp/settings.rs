//! `[targets.xmpp]` and its checks.

use std::path::PathBuf;

use serde::Deserialize;

use crate::secret::Secret;
use crate::text::is_loopback;

/// How the client-to-server connection is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum XmppTls {
    /// Plain TCP upgraded with STARTTLS, required (port 5222).
    #[default]
    Starttls,
    /// TLS from the first byte (XEP-0368, port 5223).
    Direct,
    /// No TLS: allowed only to a loopback address, for tests.
    None,
}

/// `[targets.xmpp]`: an XMPP server's client-to-server service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XmppSettings {
    /// The probing account, e.g. `improbe@example.org`.
    pub jid: String,
    pub password: Secret,
    /// `host:port` to connect to; default: the JID's domain, port 5222
    /// (5223 with `tls = "direct"`).
    #[serde(default)]
    pub server: Option<String>,
    #[serde(default)]
    pub tls: XmppTls,
    /// An extra trust anchor (PEM) beside the public roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// A second account that confirms delivery.
    #[serde(default)]
    pub recipient: Option<String>,
    #[serde(default)]
    pub recipient_password: Option<Secret>,
    /// The group chat room (XEP-0045), e.g. `probe@conference.example.org`.
    #[serde(default)]
    pub group_room: Option<String>,
}

impl XmppSettings {
    /// What is wrong with the section, as (field, message).
    pub(super) fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if bare_jid(&self.jid).is_none() {
            problems.push(("jid", "must be a bare JID like improbe@example.org".into()));
        }
        problems.extend(crate::probe::delivery::check_recipient(
            self.recipient.as_deref(),
            self.recipient_password.as_ref(),
            &self.jid,
            |jid| bare_jid(jid).is_some(),
            "improbe-rx@example.org",
        ));
        if let Some(room) = &self.group_room
            && bare_jid(room).is_none()
        {
            problems.push((
                "group_room",
                "must be a room JID like probe@conference.example.org".into(),
            ));
        }
        match self.address() {
            Err(e) => problems.push(("server", e)),
            Ok((host, _)) if self.tls == XmppTls::None && !is_loopback(&host) => problems.push((
                "tls",
                "\"none\" sends the password in clear text: allowed only to a loopback server; use \"starttls\" or \"direct\"".into(),
            )),
            Ok(_) => {}
        }
        problems
    }

    /// The JID's domain, which TLS certificates are checked against.
    pub fn domain(&self) -> &str {
        self.jid.split_once('@').map_or(&self.jid, |(_, d)| d)
    }

    /// Where to connect: `server`, or the JID's domain on the default port.
    pub fn address(&self) -> Result<(String, u16), String> {
        let default_port = if self.tls == XmppTls::Direct {
            5223
        } else {
            5222
        };
        let Some(server) = &self.server else {
            return Ok((self.domain().to_owned(), default_port));
        };
        match server.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && !port.contains(']') => port
                .parse::<u16>()
                .map(|p| (host.trim_matches(['[', ']']).to_owned(), p))
                .map_err(|_| "must be HOST or HOST:PORT".to_owned()),
            _ => Ok((server.trim_matches(['[', ']']).to_owned(), default_port)),
        }
    }

    /// The room, or what to do to get one.
    pub fn room(&self) -> anyhow::Result<&str> {
        self.group_room.as_deref().ok_or_else(|| {
            anyhow::anyhow!(
                "[targets.xmpp] needs group_room; `improbe setup` creates the room you name there"
            )
        })
    }
}

/// `local@domain` with both parts, and no resource.
fn bare_jid(text: &str) -> Option<(&str, &str)> {
    let (local, domain) = text.split_once('@')?;
    (!local.is_empty() && !domain.is_empty() && !domain.contains('/') && !domain.contains('@'))
        .then_some((local, domain))
}
