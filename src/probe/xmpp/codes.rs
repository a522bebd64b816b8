//! What an XMPP server's answers mean for the SLA, in one table: which
//! conditions are the provider's failure, which are about our account or
//! configuration (inconclusive), and which are rate limits.

use std::io;

use crate::attempt::InconclusiveReason;
use crate::probe::{Fault, ProbeOutcome};

use Fault::{Ours, Provider};
use InconclusiveReason::{Credentials, RequestRejected, Throttled};

/// Every defined condition improbe knows, from SASL failures (RFC 6120
/// 6.5), stream errors (4.9.3) and stanza errors (8.3.3). The same name can
/// appear in more than one of them and counts the same way.
const CONDITIONS: &[(&str, Fault)] = &[
    // The server is broken, overloaded or going away: the provider's failure.
    ("internal-server-error", Provider),
    ("remote-server-timeout", Provider),
    ("remote-server-not-found", Provider),
    ("service-unavailable", Provider),
    ("system-shutdown", Provider),
    ("connection-timeout", Provider),
    ("reset", Provider),
    ("undefined-condition", Provider),
    ("temporary-auth-failure", Provider),
    ("aborted", Provider),
    ("recipient-unavailable", Provider),
    // Our credentials: the account, the password, the certificate we trust.
    ("not-authorized", Ours(Credentials)),
    ("account-disabled", Ours(Credentials)),
    ("credentials-expired", Ours(Credentials)),
    ("invalid-authzid", Ours(Credentials)),
    ("invalid-mechanism", Ours(Credentials)),
    ("encryption-required", Ours(Credentials)),
    ("mechanism-too-weak", Ours(Credentials)),
    // Rate limits and quotas.
    ("policy-violation", Ours(Throttled)),
    ("resource-constraint", Ours(Throttled)),
    // Our room, our recipient, our request.
    ("forbidden", Ours(RequestRejected)),
    ("not-allowed", Ours(RequestRejected)),
    ("item-not-found", Ours(RequestRejected)),
    ("registration-required", Ours(RequestRejected)),
    ("not-acceptable", Ours(RequestRejected)),
    ("bad-request", Ours(RequestRejected)),
    ("jid-malformed", Ours(RequestRejected)),
    ("conflict", Ours(RequestRejected)),
    ("host-unknown", Ours(RequestRejected)),
    ("improper-addressing", Ours(RequestRejected)),
];

/// A condition's class; an unknown one fails (an outage must not hide
/// behind a name we have not seen) and is flagged as unclassified.
pub fn class(condition: &str) -> Fault {
    CONDITIONS
        .iter()
        .find(|(name, _)| *name == condition)
        .map_or(Provider, |(_, class)| *class)
}

pub fn is_unclassified(condition: &str) -> bool {
    !CONDITIONS.iter().any(|(name, _)| *name == condition)
}

/// A defined condition's name as XMPP writes it, from xmpp-parsers' enum
/// (`NotAuthorized` → `not-authorized`; variants with data keep their name).
pub fn condition_name(condition: &dyn std::fmt::Debug) -> String {
    let debug = format!("{condition:?}");
    let name = debug
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or_default();
    let mut kebab = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                kebab.push('-');
            }
            kebab.push(c.to_ascii_lowercase());
        } else {
            kebab.push(c);
        }
    }
    kebab
}

/// Why a call did not succeed.
#[derive(Debug)]
pub enum CallError {
    /// The server answered with a defined condition (SASL, stream or stanza).
    Condition { condition: String, text: String },
    /// The server's certificate is not one we trust: our configuration
    /// (`ca_file`), not their outage.
    Untrusted(String),
    /// The connection failed, dropped or timed out.
    Transport(String),
}

impl CallError {
    pub fn condition(condition: String, text: impl Into<String>) -> CallError {
        CallError::Condition {
            condition,
            text: text.into(),
        }
    }

    /// An I/O error, told apart: a certificate we refuse is ours to fix.
    pub fn io(error: &io::Error) -> CallError {
        // `io::Error::source` skips the error it wraps: start from that one.
        let mut source: Option<&(dyn std::error::Error + 'static)> = match error.get_ref() {
            Some(inner) => Some(inner),
            None => Some(error),
        };
        while let Some(e) = source {
            if let Some(tls) = e.downcast_ref::<tokio_rustls::rustls::Error>()
                && matches!(
                    tls,
                    tokio_rustls::rustls::Error::InvalidCertificate(_)
                        | tokio_rustls::rustls::Error::InvalidCertRevocationList(_)
                )
            {
                return CallError::Untrusted(format!(
                    "the server's certificate is not trusted: {tls}"
                ));
            }
            source = e.source();
        }
        CallError::Transport(error.to_string())
    }

    /// One of tokio-xmpp's errors.
    pub fn from_xmpp(error: &tokio_xmpp::Error) -> CallError {
        use tokio_xmpp::error::AuthError;
        match error {
            tokio_xmpp::Error::Io(e) => CallError::io(e),
            tokio_xmpp::Error::Auth(AuthError::Fail(condition)) => {
                CallError::condition(condition_name(condition), "SASL authentication failed")
            }
            tokio_xmpp::Error::Auth(AuthError::NoMechanism) => CallError::condition(
                "invalid-mechanism".to_owned(),
                "the server offers no SASL mechanism improbe can use",
            ),
            tokio_xmpp::Error::StreamError(e) => CallError::condition(
                condition_name(&e.0.condition),
                format!("stream error from the server: {}", e.0),
            ),
            other => CallError::Transport(other.to_string()),
        }
    }

    /// The attempt's outcome, `doing` saying which step failed.
    pub fn outcome(&self, doing: &str) -> ProbeOutcome {
        match self {
            CallError::Condition { condition, text } => {
                let error = format!("{doing}: {condition}: {text}");
                class(condition).outcome(None, Some(condition.clone()), error)
            }
            CallError::Untrusted(text) => ProbeOutcome::inconclusive(
                Credentials,
                None,
                Some("untrusted-certificate".to_owned()),
                format!("{doing}: {text} (set ca_file if the server uses a private CA)"),
            ),
            CallError::Transport(text) => {
                ProbeOutcome::fail(None, None, format!("{doing}: {text}"))
            }
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Condition { condition, text } => write!(f, "{condition}: {text}"),
            CallError::Untrusted(text) | CallError::Transport(text) => f.write_str(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_are_named_as_xmpp_writes_them() {
        use tokio_xmpp::parsers::stanza_error::DefinedCondition;
        assert_eq!(
            condition_name(&DefinedCondition::ServiceUnavailable),
            "service-unavailable"
        );
        assert_eq!(condition_name(&DefinedCondition::Forbidden), "forbidden");
        assert_eq!(
            condition_name(&tokio_xmpp::parsers::sasl::DefinedCondition::NotAuthorized),
            "not-authorized"
        );
    }

    #[test]
    fn each_condition_counts_as_the_table_says() {
        assert_eq!(class("service-unavailable"), Provider);
        assert_eq!(class("not-authorized"), Ours(Credentials));
        assert_eq!(class("policy-violation"), Ours(Throttled));
        assert_eq!(class("item-not-found"), Ours(RequestRejected));
        assert_eq!(class("something-new"), Provider);
        assert!(is_unclassified("something-new"));
        assert!(!is_unclassified("forbidden"));
    }
}
