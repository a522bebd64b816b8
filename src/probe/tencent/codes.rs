//! Tencent Cloud IM error codes: the one table that says whose fault a code is.
//!
//! Server-side faults are `fail` (they count towards an Apparent Failure);
//! problems on our own side (credentials, configuration, malformed or
//! forbidden requests, our own throttling) are `inconclusive`, because the
//! SLA excludes the customer's faults. A code not listed here is `fail`, with
//! the code recorded, so an unknown server error is never hidden.

/// Whose fault a provider error code is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The provider's: counts towards an Apparent Failure.
    Provider,
    /// Ours, for the given reason: never counts, but is made loud.
    Ours(InconclusiveReason),
}

/// Why an attempt is inconclusive; stored in `attempts.reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InconclusiveReason {
    /// Signature, key or account configuration rejected.
    Credentials,
    /// The provider rejected the request as malformed or not permitted.
    RequestRejected,
    /// We sent more than our plan or the API allows.
    Throttled,
}

impl InconclusiveReason {
    pub fn as_str(self) -> &'static str {
        match self {
            InconclusiveReason::Credentials => "credentials",
            InconclusiveReason::RequestRejected => "request_rejected",
            InconclusiveReason::Throttled => "throttled",
        }
    }
}

use Fault::{Ours, Provider};
use InconclusiveReason::{Credentials, RequestRejected, Throttled};

/// Every code improbe knows, with its meaning per Tencent's error-code tables.
pub const CODES: &[(i64, Fault)] = &[
    // --- Server-side faults: the provider failed the request. ---
    (10002, Provider), // group service: internal server error, retry
    (20004, Provider), // one-to-one message: network error, retry
    (20005, Provider), // one-to-one message: internal server error, retry
    (60008, Provider), // REST: the service timed out handling the request
    (70169, Provider), // account service: internal timeout, retry
    (70202, Provider), // account service: internal timeout, retry
    (70500, Provider), // account service: internal server error
    (90992, Provider), // message service: internal error, retry
    (90994, Provider), // message service: internal error, retry
    (90995, Provider), // message service: internal server error, retry
    (91000, Provider), // message service: internal service error, retry
    // --- Our credentials or account configuration. ---
    (60004, Ours(Credentials)), // REST: request parameters invalid (signature check)
    (60005, Ours(Credentials)), // REST: UserID invalid
    (60006, Ours(Credentials)), // REST: SDKAppID unavailable or deactivated
    (60010, Ours(Credentials)), // REST: the request must come from the app administrator
    (60012, Ours(Credentials)), // REST: SDKAppID missing or request not from an administrator
    (60016, Ours(Credentials)), // REST: SDKAppID disabled
    (60017, Ours(Credentials)), // REST: request forbidden for this app
    (60020, Ours(Credentials)), // REST: the app's plan has expired (billing)
    (70001, Ours(Credentials)), // UserSig expired
    (70002, Ours(Credentials)), // UserSig empty
    (70003, Ours(Credentials)), // UserSig invalid: cannot be decoded
    (70005, Ours(Credentials)), // UserSig invalid: cannot be decoded
    (70009, Ours(Credentials)), // UserSig verification failed: wrong key
    (70013, Ours(Credentials)), // UserSig identifier does not match the requester
    (70014, Ours(Credentials)), // UserSig SDKAppID does not match the request
    (70016, Ours(Credentials)), // key not found for this SDKAppID
    (70020, Ours(Credentials)), // SDKAppID not found
    (70052, Ours(Credentials)), // UserSig invalidated (account kicked or disabled)
    // --- Requests the provider rejects as malformed or not permitted. ---
    (10010, Ours(RequestRejected)), // group does not exist or was dissolved
    (10015, Ours(RequestRejected)), // invalid group ID
    (10017, Ours(RequestRejected)), // sender is muted in the group
    (20003, Ours(RequestRejected)), // sender or recipient UserID invalid or not imported
    (20006, Ours(RequestRejected)), // blocked by the app's before-send callback
    (20007, Ours(RequestRejected)), // sender is on the recipient's blocklist
    (20009, Ours(RequestRejected)), // not friends while friend-only messaging is on
    (70107, Ours(RequestRejected)), // UserID does not exist
    (70402, Ours(RequestRejected)), // parameter invalid
    (70403, Ours(RequestRejected)), // operation requires the app administrator
    (90001, Ours(RequestRejected)), // JSON body could not be parsed
    (90002, Ours(RequestRejected)), // MsgBody malformed
    (90003, Ours(RequestRejected)), // To_Account missing or not registered
    (90005, Ours(RequestRejected)), // MsgRandom missing or invalid
    (90007, Ours(RequestRejected)), // MsgBody element type not supported
    (90008, Ours(RequestRejected)), // From_Account missing or not registered
    (90009, Ours(RequestRejected)), // request requires the app administrator
    (90010, Ours(RequestRejected)), // JSON body malformed
    (90012, Ours(RequestRejected)), // To_Account not registered or not imported
    (90026, Ours(RequestRejected)), // MsgLifeTime / offline-storage time invalid
    (90031, Ours(RequestRejected)), // SyncOtherMachine value invalid
    (90044, Ours(RequestRejected)), // MsgTimeStamp invalid
    (93000, Ours(RequestRejected)), // JSON payload too large
    // --- Throttling of our own traffic. ---
    (10006, Ours(Throttled)), // group operations too frequent
    (10023, Ours(Throttled)), // group messages too frequent
    (60007, Ours(Throttled)), // REST request rate limit reached
    (60011, Ours(Throttled)), // REST request frequency limit reached
    (60018, Ours(Throttled)), // batch request limit reached
    (60019, Ours(Throttled)), // per-interface frequency limit reached
    (70050, Ours(Throttled)), // too many failed or repeated account requests
];

/// Whose fault a non-zero `ErrorCode` is. Unknown codes are the provider's.
pub fn classify(code: i64) -> Fault {
    CODES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or(Provider, |(_, fault)| *fault)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_named_in_the_issue_is_classified_as_specified() {
        let provider = [
            20004, 20005, 10002, 70169, 70202, 70500, 60008, 90992, 90994, 90995, 91000,
        ];
        let credentials = [
            70001, 70002, 70003, 70005, 70009, 70013, 70014, 70016, 70020, 70052, 60004, 60005,
            60006, 60010, 60012, 60016, 60017, 60020,
        ];
        let rejected = [
            90001, 90002, 90003, 90005, 90007, 90008, 90009, 90010, 90012, 90026, 90031, 90044,
            93000, 20003, 20006, 20007, 20009, 10010, 10015, 10017, 70107, 70402, 70403,
        ];
        let throttled = [60007, 60011, 60018, 60019, 10006, 10023, 70050];
        for code in provider {
            assert_eq!(classify(code), Provider, "{code}");
        }
        for code in credentials {
            assert_eq!(classify(code), Ours(Credentials), "{code}");
        }
        for code in rejected {
            assert_eq!(classify(code), Ours(RequestRejected), "{code}");
        }
        for code in throttled {
            assert_eq!(classify(code), Ours(Throttled), "{code}");
        }
        let listed = provider.len() + credentials.len() + rejected.len() + throttled.len();
        assert_eq!(
            CODES.len(),
            listed,
            "the table holds a code the tests do not check"
        );
    }

    #[test]
    fn unknown_codes_are_the_providers() {
        assert_eq!(classify(99_999), Provider);
        assert_eq!(classify(-1), Provider);
    }
}
