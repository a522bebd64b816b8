//! One probe attempt and its classification, as recorded in the database.

pub mod jsonl;
pub mod rollup;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::minute::Minute;

/// What an attempt exercised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Login,
    SendDirect,
    SendGroup,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Login, Kind::SendDirect, Kind::SendGroup];

    /// The small integer `attempts.kind` stores (migration 0009): its
    /// place in [`Kind::ALL`].
    pub fn code(self) -> i16 {
        self as i16
    }

    pub fn from_code(code: i16) -> Result<Kind, UnknownCode> {
        Kind::ALL
            .into_iter()
            .find(|kind| kind.code() == code)
            .ok_or(UnknownCode { what: "kind", code })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Login => "login",
            Kind::SendDirect => "send_direct",
            Kind::SendGroup => "send_group",
        }
    }
}

/// How an attempt ended, per docs/sla.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The provider accepted it.
    Ok,
    /// The provider failed it: counts towards an Apparent Failure.
    Fail,
    /// The cause is on the customer's side; never counts either way.
    Inconclusive,
}

impl Outcome {
    /// The small integer `attempts.outcome` stores (migration 0009): 0 ok,
    /// 1 fail, 2 inconclusive.
    pub fn code(self) -> i16 {
        self as i16
    }

    pub fn from_code(code: i16) -> Result<Outcome, UnknownCode> {
        [Outcome::Ok, Outcome::Fail, Outcome::Inconclusive]
            .into_iter()
            .find(|outcome| outcome.code() == code)
            .ok_or(UnknownCode {
                what: "outcome",
                code,
            })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Inconclusive => "inconclusive",
        }
    }
}

/// Why an attempt is `inconclusive`: the closed set every provider shares,
/// stored as its text in `attempts.reason`. Each names a cause on our side,
/// which the SLA excludes (docs/sla.md, "How improbe measures it").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InconclusiveReason {
    /// Our signature, key, password or account configuration was rejected.
    Credentials,
    /// The provider rejected the request as malformed or not permitted for
    /// our accounts (setup, permissions, content rules).
    RequestRejected,
    /// We sent more than our plan or the API allows.
    Throttled,
    /// Our own network was down (the control check failed).
    LocalNetwork,
    /// The prober itself ran out of a local resource (descriptors, memory,
    /// ephemeral ports) while making the attempt: see [`local_resource_fault`].
    Prober,
}

impl InconclusiveReason {
    pub const ALL: [InconclusiveReason; 5] = [
        InconclusiveReason::Credentials,
        InconclusiveReason::RequestRejected,
        InconclusiveReason::Throttled,
        InconclusiveReason::LocalNetwork,
        InconclusiveReason::Prober,
    ];

    /// The reason a stored word names. Imports before the reason was one of
    /// these words accepted any text: such a word names none of them and
    /// reads as no reason (the attempt's outcome, all that counts, is kept).
    pub fn from_stored(word: &str) -> Option<InconclusiveReason> {
        InconclusiveReason::ALL
            .into_iter()
            .find(|reason| reason.as_str() == word)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            InconclusiveReason::Credentials => "credentials",
            InconclusiveReason::RequestRejected => "request_rejected",
            InconclusiveReason::Throttled => "throttled",
            InconclusiveReason::LocalNetwork => "local_network",
            InconclusiveReason::Prober => "prober",
        }
    }
}

impl fmt::Display for InconclusiveReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the recipient account saw a send (docs/providers.md "Delivery confirmation").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Delivery {
    /// The recipient saw it, `after_ms` from the send's start (stored as
    /// `delivered_ms`; unknown only for an imported line that left it out).
    Confirmed { after_ms: Option<i64> },
    /// The recipient did not see it within the attempt's timeout.
    Missing,
}

impl Delivery {
    /// The word stored in `attempts.delivery` and written in the import format.
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Confirmed { .. } => "confirmed",
            Delivery::Missing => "missing",
        }
    }

    /// The small integer `attempts.delivery` stores (migration 0009): 0
    /// confirmed, 1 missing.
    pub fn code(self) -> i16 {
        match self {
            Delivery::Confirmed { .. } => 0,
            Delivery::Missing => 1,
        }
    }

    /// The delivery a stored `delivery` code and `delivered_ms` describe.
    pub fn from_code(code: i16, delivered_ms: Option<i64>) -> Result<Delivery, UnknownCode> {
        match code {
            0 => Ok(Delivery::Confirmed {
                after_ms: delivered_ms,
            }),
            1 => Ok(Delivery::Missing),
            _ => Err(UnknownCode {
                what: "delivery",
                code,
            }),
        }
    }

    /// When the recipient saw the send (`delivered_ms`).
    pub fn delivered_ms(self) -> Option<i64> {
        match self {
            Delivery::Confirmed { after_ms } => after_ms,
            Delivery::Missing => None,
        }
    }
}

/// Error for a stored code that names none of an enum's values.
#[derive(Debug, thiserror::Error)]
#[error("unknown stored {what} code {code}")]
pub struct UnknownCode {
    what: &'static str,
    code: i16,
}

/// Error for a word that is not one of an enum's spellings.
#[derive(Debug, thiserror::Error)]
#[error("unknown {what} `{got}`, expected one of: {expected}")]
pub struct UnknownWord {
    what: &'static str,
    got: String,
    expected: &'static str,
}

impl FromStr for Kind {
    type Err = UnknownWord;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownWord {
                what: "kind",
                got: s.to_owned(),
                expected: "login, send_direct, send_group",
            })
    }
}

impl FromStr for Outcome {
    type Err = UnknownWord;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Outcome::Ok, Outcome::Fail, Outcome::Inconclusive]
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| UnknownWord {
                what: "outcome",
                got: s.to_owned(),
                expected: "ok, fail, inconclusive",
            })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One login or send against one target, by one prober.
///
/// `started_at` is kept to the millisecond: that precision is what both
/// databases store, and together with target, prober and kind it identifies
/// the attempt, which is what makes re-imports idempotent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub target: String,
    pub prober: String,
    pub kind: Kind,
    pub started_at: DateTime<Utc>,
    pub latency_ms: Option<i64>,
    pub outcome: Outcome,
    pub http_status: Option<i32>,
    pub error_code: Option<String>,
    pub error: Option<String>,
    /// Why an attempt is inconclusive (e.g. `credentials`, `local_network`,
    /// `prober`).
    pub reason: Option<InconclusiveReason>,
    /// For sends whose delivery was checked: whether the recipient saw
    /// it, and when.
    pub delivery: Option<Delivery>,
}

impl Attempt {
    /// The UTC minute the attempt belongs to: the one in which it started.
    pub fn minute(&self) -> Minute {
        Minute::containing(&self.started_at)
    }

    pub fn started_at_ms(&self) -> i64 {
        self.started_at.timestamp_millis()
    }
}

/// The longest `error` kept, in bytes: enough for any provider's message and
/// its cause chain, and a bound on what one attempt can make every reader
/// (reports, notifications, `/metrics`) carry (docs/configuration.md "Hostile input").
pub const MAX_ERROR_BYTES: usize = 1024;
/// The longest `error_code` kept, in bytes.
pub const MAX_CODE_BYTES: usize = 64;
/// The longest name of a target, prober or channel, in bytes: names go into
/// URLs, metric labels and table columns.
pub const MAX_NAME_BYTES: usize = 64;
/// Appended where provider text was cut.
pub const CUT_MARK: &str = "…[cut]";

/// The most of one error that a report, claim or notification quotes, in
/// bytes: a sample is there to be recognised, the whole text is in the
/// database.
pub const QUOTE_BYTES: usize = 300;

/// `text` cut to at most `max` bytes on a character boundary, the cut marked
/// with [`CUT_MARK`] (which the limit includes).
pub fn bounded(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut cut = text;
    cut.truncate(cut_point(&cut, max));
    cut.push_str(CUT_MARK);
    cut
}

/// What a reader quotes of a stored error: at most [`QUOTE_BYTES`].
pub fn quoted(text: &str) -> String {
    if text.len() <= QUOTE_BYTES {
        return text.to_owned();
    }
    let mut quote = text[..cut_point(text, QUOTE_BYTES)].to_owned();
    quote.push_str(CUT_MARK);
    quote
}

/// Where to cut `text` (longer than `max`) so that it and the mark fit.
fn cut_point(text: &str, max: usize) -> usize {
    let mut end = max.saturating_sub(CUT_MARK.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}

impl Attempt {
    /// The attempt with its provider text bounded: what every way in (probe,
    /// import, spool) stores.
    pub fn with_bounded_text(mut self) -> Self {
        self.error = self.error.map(|e| bounded(e, MAX_ERROR_BYTES));
        self.error_code = self.error_code.map(|c| bounded(c, MAX_CODE_BYTES));
        self
    }
}

/// Whether an attempt's error text shows the prober itself out of a local
/// resource rather than the provider failing: too many open files (process
/// or system), no memory or buffer space, or no ephemeral port left. Every
/// transport's error chain ends in the operating system's own message, which
/// Rust renders as "... (os error N)", so one check covers every provider.
pub fn local_resource_fault(error: &str) -> bool {
    const LOCAL_ERRNOS: [i32; 5] = [
        12,  // ENOMEM
        23,  // ENFILE
        24,  // EMFILE
        99,  // EADDRNOTAVAIL: no ephemeral port left
        105, // ENOBUFS
    ];
    LOCAL_ERRNOS
        .iter()
        .any(|errno| error.contains(&format!("(os error {errno})")))
}

/// Truncates an instant to whole milliseconds, the precision attempts are kept in.
pub fn to_millis(instant: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(instant.timestamp_millis()).expect("in range")
}
