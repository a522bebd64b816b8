//! Tencent Cloud IM error codes: the one table that says whose fault a code is.
//!
//! Server-side faults are `fail` (they count towards an Apparent Failure);
//! problems on our own side (credentials, configuration, malformed or
//! forbidden requests, content rules, our own throttling) are
//! `inconclusive`, because the SLA excludes the customer's faults. A claim is
//! only as strong as its weakest failure minute, so every code Tencent
//! publishes for the calls improbe makes (`account_check`, `sendmsg`,
//! `send_group_msg`, and setup's `account_import`, `create_group`,
//! `get_group_info`, `add_group_member`) is listed here with its published
//! meaning. A code not listed is `fail`, so an unknown server error is never
//! hidden, and is made loud instead (see `super::classify_reply`).
//!
//! Deliberately left to the default, because no call improbe makes can
//! receive them: group codes for operations improbe never performs (10009,
//! the owner may not leave; 10024, already done; 10030, recall) and
//! relationship-chain codes (30xxx).

use std::ops::RangeInclusive;

use crate::attempt::InconclusiveReason;
use crate::probe::Fault;

use Fault::{Ours, Provider};
use InconclusiveReason::{Credentials, RequestRejected, Throttled};

/// Every single code improbe knows, with its meaning per Tencent's tables.
pub const CODES: &[(i64, Fault)] = &[
    // --- REST, any call (60xxx). ---
    (60002, Ours(RequestRejected)), // HTTP parsing error: check the URL format
    (60003, Ours(RequestRejected)), // the request's JSON could not be parsed
    (60004, Ours(Credentials)),     // the URL or JSON holds an invalid account or signature
    (60005, Ours(Credentials)),     // the URL or JSON holds an invalid UserID
    (60006, Ours(Credentials)),     // SDKAppID unavailable or deactivated
    (60007, Ours(Throttled)),       // REST request rate limit reached
    (60008, Provider),              // the service timed out handling the request
    (60009, Ours(RequestRejected)), // request resource error: check the URL
    (60010, Ours(Credentials)),     // the request must come from the app administrator
    (60011, Ours(Throttled)),       // SDKAppID request frequency limit reached
    (60012, Ours(Credentials)),     // SDKAppID missing from the URL or not an administrator
    (60013, Provider),              // the service's response JSON could not be parsed
    (60014, Provider),              // the service timed out exchanging account IDs
    (60015, Ours(RequestRejected)), // account type error in the body: UserIDs are strings
    (60016, Ours(Credentials)),     // SDKAppID disabled
    (60017, Ours(Credentials)),     // request forbidden for this app
    (60018, Ours(Throttled)),       // too many requests, retry later
    (60019, Ours(Throttled)),       // too many requests, retry later
    (60020, Ours(Credentials)),     // the app's plan has expired or lacks the feature (billing)
    (60021, Ours(Credentials)),     // the caller's IP address is not in the app's allowlist
    // --- Account service and UserSig (70xxx): login and setup. ---
    (70001, Ours(Credentials)),     // UserSig expired
    (70002, Ours(Credentials)),     // UserSig empty
    (70003, Ours(Credentials)),     // UserSig invalid: cannot be decoded
    (70005, Ours(Credentials)),     // UserSig invalid: base64 cannot be decoded
    (70009, Ours(Credentials)),     // UserSig verification failed: wrong key
    (70013, Ours(Credentials)),     // UserSig identifier does not match the requester
    (70014, Ours(Credentials)),     // UserSig SDKAppID does not match the request
    (70016, Ours(Credentials)),     // verification key not found for this SDKAppID
    (70020, Ours(Credentials)),     // SDKAppID not found
    (70050, Ours(Credentials)),     // locked out after repeated failed UserSig checks
    (70051, Ours(Credentials)),     // the account is on the app's blocklist
    (70052, Ours(Credentials)),     // UserSig invalidated (account kicked or disabled)
    (70107, Ours(RequestRejected)), // UserID does not exist
    (70114, Ours(RequestRejected)), // the request is restricted for security reasons
    (70169, Provider),              // account service: internal timeout, retry
    (70202, Provider),              // account service: internal timeout, retry
    (70206, Ours(RequestRejected)), // invalid number of accounts in a batch request
    (70398, Ours(RequestRejected)), // the app's account-count limit is reached (setup)
    (70402, Ours(RequestRejected)), // parameter invalid
    (70403, Ours(RequestRejected)), // operation requires the app administrator
    (70500, Provider),              // account service: internal server error
    // --- One-to-one messages, `openim/sendmsg` (20xxx, 90xxx). ---
    (20001, Ours(RequestRejected)), // the request could not be parsed
    (20002, Ours(Credentials)),     // internal authentication failed: UserSig or A2 invalid
    (20003, Ours(RequestRejected)), // sender or recipient UserID invalid or not imported
    (20004, Provider),              // network error, retry
    (20005, Provider),              // internal server error, retry
    (20006, Ours(RequestRejected)), // blocked by the app's before-send callback
    (20007, Ours(RequestRejected)), // the sender is on the recipient's blocklist
    (20009, Ours(RequestRejected)), // not friends while friend-only messaging is on
    (20010, Ours(RequestRejected)), // the sender is not the recipient's friend (one-way)
    (20011, Ours(RequestRejected)), // the recipient is not the sender's friend (one-way)
    (20012, Ours(RequestRejected)), // the sender is muted
    (90001, Ours(RequestRejected)), // JSON body could not be parsed
    (90002, Ours(RequestRejected)), // MsgBody malformed
    (90003, Ours(RequestRejected)), // To_Account missing or not registered
    (90005, Ours(RequestRejected)), // MsgRandom missing or invalid
    (90006, Ours(RequestRejected)), // MsgTimeStamp missing or invalid
    (90007, Ours(RequestRejected)), // MsgBody element type not supported
    (90008, Ours(RequestRejected)), // From_Account missing or not registered
    (90009, Ours(RequestRejected)), // the request requires the app administrator
    (90010, Ours(RequestRejected)), // JSON body malformed
    (90011, Ours(RequestRejected)), // batch message: too many recipients (at most 500)
    (90012, Ours(RequestRejected)), // To_Account not registered or not imported
    (90026, Ours(RequestRejected)), // offline-storage time invalid (at most 7 days)
    (90031, Ours(RequestRejected)), // SyncOtherMachine value invalid
    (90044, Ours(RequestRejected)), // MsgLifeTime is not an integer
    (90048, Ours(RequestRejected)), // the requested account does not exist
    (90992, Provider),              // message service: internal error, retry
    (90994, Provider),              // message service: internal error, retry
    (90995, Provider),              // message service: internal server error, retry
    (91000, Provider),              // message service: internal service error, retry
    (93000, Ours(RequestRejected)), // JSON payload too large
    // --- Groups, `send_group_msg` and setup (10xxx, 80xxx). ---
    (10002, Provider),              // group service: internal server error, retry
    (10003, Ours(RequestRejected)), // invalid command word
    (10004, Ours(RequestRejected)), // invalid parameter
    (10005, Ours(RequestRejected)), // too many members in one request
    (10006, Ours(Throttled)),       // group operations too frequent
    (10007, Ours(RequestRejected)), // insufficient permission: the operator may not do this in this group
    (10008, Ours(Credentials)),     // invalid request: the signature check may have failed
    (10010, Ours(RequestRejected)), // the group does not exist or was dissolved
    (10011, Ours(RequestRejected)), // JSON body could not be parsed
    (10012, Ours(RequestRejected)), // the operator's UserID is invalid
    (10013, Ours(RequestRejected)), // the account is already a member (setup treats it as done)
    (10014, Ours(RequestRejected)), // the group is full
    (10015, Ours(RequestRejected)), // invalid group ID
    (10016, Ours(RequestRejected)), // the app's own callback rejected the operation
    (10017, Ours(RequestRejected)), // the sender is muted in the group
    (10019, Ours(RequestRejected)), // the UserID does not exist
    (10021, Ours(RequestRejected)), // the group ID is already in use (setup)
    (10023, Ours(Throttled)),       // group messages too frequent
    (10025, Ours(RequestRejected)), // the group ID was used by its owner before (setup)
    (10026, Ours(RequestRejected)), // this command is disabled for the SDKAppID
    (80001, Ours(RequestRejected)), // content moderation: the text holds sensitive words
    (80002, Ours(RequestRejected)), // the message is too long (at most 8,000 bytes)
];

/// Ranges of codes with one meaning.
pub const RANGES: &[(RangeInclusive<i64>, Fault)] = &[
    // One-to-one messages: custom codes returned by the app's own
    // before-send callback, i.e. the app's (our) own decision.
    (120_001..=130_000, Ours(RequestRejected)),
];

/// Whose fault a non-zero `ErrorCode` is, if Tencent's tables say.
pub fn lookup(code: i64) -> Option<Fault> {
    CODES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, fault)| *fault)
        .or_else(|| {
            RANGES
                .iter()
                .find(|(range, _)| range.contains(&code))
                .map(|(_, fault)| *fault)
        })
}

/// Whose fault a non-zero `ErrorCode` is. Unknown codes are the provider's:
/// an outage must never be hidden.
pub fn classify(code: i64) -> Fault {
    lookup(code).unwrap_or(Provider)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_named_in_the_issues_is_classified_as_specified() {
        let provider = [
            20004, 20005, 10002, 60008, 60013, 60014, 70169, 70202, 70500, 90992, 90994, 90995,
            91000,
        ];
        let credentials = [
            10008, 20002, 60004, 60005, 60006, 60010, 60012, 60016, 60017, 60020, 60021, 70001,
            70002, 70003, 70005, 70009, 70013, 70014, 70016, 70020, 70050, 70051, 70052,
        ];
        let rejected = [
            10003, 10004, 10005, 10007, 10010, 10011, 10012, 10013, 10014, 10015, 10016, 10017,
            10019, 10021, 10025, 10026, 20001, 20003, 20006, 20007, 20009, 20010, 20011, 20012,
            60002, 60003, 60009, 60015, 70107, 70114, 70206, 70398, 70402, 70403, 80001, 80002,
            90001, 90002, 90003, 90005, 90006, 90007, 90008, 90009, 90010, 90011, 90012, 90026,
            90031, 90044, 90048, 93000,
        ];
        let throttled = [10006, 10023, 60007, 60011, 60018, 60019];
        for code in provider {
            assert_eq!(lookup(code), Some(Provider), "{code}");
        }
        for code in credentials {
            assert_eq!(lookup(code), Some(Ours(Credentials)), "{code}");
        }
        for code in rejected {
            assert_eq!(lookup(code), Some(Ours(RequestRejected)), "{code}");
        }
        for code in throttled {
            assert_eq!(lookup(code), Some(Ours(Throttled)), "{code}");
        }
        let listed = provider.len() + credentials.len() + rejected.len() + throttled.len();
        assert_eq!(
            CODES.len(),
            listed,
            "the table holds a code the tests do not check"
        );
    }

    #[test]
    fn each_code_is_listed_once() {
        let mut codes: Vec<i64> = CODES.iter().map(|(c, _)| *c).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), CODES.len());
        assert!(
            codes
                .iter()
                .all(|c| RANGES.iter().all(|(r, _)| !r.contains(c))),
            "a single code also falls in a range"
        );
    }

    #[test]
    fn callback_codes_are_the_apps_own_decision() {
        for code in [120_001, 125_000, 130_000] {
            assert_eq!(lookup(code), Some(Ours(RequestRejected)), "{code}");
        }
        assert_eq!(lookup(120_000), None);
        assert_eq!(lookup(130_001), None);
    }

    #[test]
    fn unknown_codes_are_the_providers() {
        assert_eq!(lookup(99_999), None);
        assert_eq!(classify(99_999), Provider);
        assert_eq!(classify(-1), Provider);
    }
}
