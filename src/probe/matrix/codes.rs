//! How a homeserver's answer is classified: one table of Matrix error codes
//! (`errcode`), read by every Matrix call. A 5xx, a timeout, a reset or
//! refused connection, and a body that is not a Matrix answer are the
//! homeserver's failure; the table names what is on our side.

use std::time::Duration;

use crate::attempt::InconclusiveReason::{self, Credentials, RequestRejected, Throttled};
use crate::probe::Fault;

/// Which call an answer came from: the same code can mean our credentials
/// on a login and our room setup on a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Login,
    Send,
}

/// (errcode, meaning on a login, meaning on a send). Codes not listed count
/// against the homeserver and are flagged in the report as unclassified.
const TABLE: &[(&str, InconclusiveReason, InconclusiveReason)] = &[
    // Wrong password on login; on a send, not in the room or not allowed to post.
    ("M_FORBIDDEN", Credentials, RequestRejected),
    ("M_USER_DEACTIVATED", Credentials, Credentials),
    ("M_USER_LOCKED", Credentials, Credentials),
    ("M_USER_SUSPENDED", Credentials, Credentials),
    // A token that could not be renewed (the probe re-logs in once first).
    ("M_UNKNOWN_TOKEN", Credentials, Credentials),
    ("M_MISSING_TOKEN", Credentials, Credentials),
    ("M_CONSENT_NOT_GIVEN", Credentials, RequestRejected),
    // Rate limits (`rc_login`, `rc_message`) and the plan's resource limits.
    ("M_LIMIT_EXCEEDED", Throttled, Throttled),
    ("M_RESOURCE_LIMIT_EXCEEDED", Throttled, Throttled),
    // Our request or our rooms: unknown room, malformed request.
    ("M_NOT_FOUND", RequestRejected, RequestRejected),
    ("M_BAD_JSON", RequestRejected, RequestRejected),
    ("M_NOT_JSON", RequestRejected, RequestRejected),
    ("M_INVALID_PARAM", RequestRejected, RequestRejected),
    ("M_MISSING_PARAM", RequestRejected, RequestRejected),
    ("M_TOO_LARGE", RequestRejected, RequestRejected),
    ("M_UNRECOGNIZED", RequestRejected, RequestRejected),
    ("M_BAD_STATE", RequestRejected, RequestRejected),
    ("M_GUEST_ACCESS_FORBIDDEN", Credentials, RequestRejected),
    ("M_INVALID_USERNAME", Credentials, Credentials),
];

/// Classifies an error answer: `status` is the HTTP status, `errcode` the
/// Matrix error code if the body was a Matrix error.
pub fn classify(call: Call, status: u16, errcode: Option<&str>) -> Fault {
    // The server's own errors fail whatever code they carry: a 500 with
    // M_FORBIDDEN is still the server failing.
    if status >= 500 {
        return Fault::Provider;
    }
    if let Some(code) = errcode
        && let Some((_, on_login, on_send)) = TABLE.iter().find(|(c, _, _)| *c == code)
    {
        return Fault::Ours(match call {
            Call::Login => *on_login,
            Call::Send => *on_send,
        });
    }
    match status {
        429 => Fault::Ours(Throttled),
        401 => Fault::Ours(Credentials),
        _ => Fault::Provider,
    }
}

/// Whether a failing answer's code is missing from the table: it counts
/// against the homeserver, but a claim should not rest on it unchecked.
pub fn is_unclassified(errcode: &str) -> bool {
    errcode.starts_with("M_") && !TABLE.iter().any(|(c, _, _)| *c == errcode)
}

/// How long a rate-limited caller is asked to wait: `retry_after_ms` in the
/// body, else the `Retry-After` header in seconds.
pub fn retry_after(body_ms: Option<u64>, header: Option<&str>) -> Option<Duration> {
    body_ms
        .map(Duration::from_millis)
        .or_else(|| header?.trim().parse::<u64>().ok().map(Duration::from_secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_code_means_credentials_on_login_and_setup_on_send() {
        assert_eq!(
            classify(Call::Login, 403, Some("M_FORBIDDEN")),
            Fault::Ours(Credentials)
        );
        assert_eq!(
            classify(Call::Send, 403, Some("M_FORBIDDEN")),
            Fault::Ours(RequestRejected)
        );
    }

    #[test]
    fn server_errors_and_unknown_codes_fail() {
        assert_eq!(classify(Call::Send, 502, None), Fault::Provider);
        assert_eq!(
            classify(Call::Send, 500, Some("M_FORBIDDEN")),
            Fault::Provider
        );
        assert_eq!(
            classify(Call::Send, 400, Some("M_UNKNOWN")),
            Fault::Provider
        );
        assert!(is_unclassified("M_UNKNOWN"));
        assert!(!is_unclassified("M_LIMIT_EXCEEDED"));
        // Not a Matrix code at all (e.g. a Tencent number): not ours to flag.
        assert!(!is_unclassified("70500"));
    }

    #[test]
    fn rate_limits_are_throttled_with_or_without_a_code() {
        assert_eq!(
            classify(Call::Login, 429, Some("M_LIMIT_EXCEEDED")),
            Fault::Ours(Throttled)
        );
        assert_eq!(classify(Call::Send, 429, None), Fault::Ours(Throttled));
        assert_eq!(
            retry_after(Some(1500), Some("9")),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(retry_after(None, Some("9")), Some(Duration::from_secs(9)));
        assert_eq!(retry_after(None, Some("soon")), None);
    }
}
