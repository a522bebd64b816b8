//! One probe attempt and its classification, as recorded in the database.

pub mod jsonl;

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

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Login => "login",
            Kind::SendDirect => "send_direct",
            Kind::SendGroup => "send_group",
        }
    }
}

/// How an attempt ended, per SLA.md.
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
/// which the SLA excludes (SLA.md, "How improbe measures it").
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
}

impl InconclusiveReason {
    pub fn as_str(self) -> &'static str {
        match self {
            InconclusiveReason::Credentials => "credentials",
            InconclusiveReason::RequestRejected => "request_rejected",
            InconclusiveReason::Throttled => "throttled",
            InconclusiveReason::LocalNetwork => "local_network",
        }
    }
}

impl fmt::Display for InconclusiveReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the recipient account saw a send (README "Delivery confirmation").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// The recipient saw it; `delivered_ms` says when.
    Confirmed,
    /// The recipient did not see it within the attempt's timeout.
    Missing,
}

impl Delivery {
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Confirmed => "confirmed",
            Delivery::Missing => "missing",
        }
    }
}

impl FromStr for Delivery {
    type Err = UnknownWord;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Delivery::Confirmed, Delivery::Missing]
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| UnknownWord {
                what: "delivery",
                got: s.to_owned(),
                expected: "confirmed, missing",
            })
    }
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
    /// Why an attempt is inconclusive (e.g. `credentials`, `local_network`).
    pub reason: Option<String>,
    /// For sends whose delivery was checked: whether the recipient saw it.
    pub delivery: Option<Delivery>,
    /// From the send's start to the recipient seeing it.
    pub delivered_ms: Option<i64>,
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

/// Truncates an instant to whole milliseconds, the precision attempts are kept in.
pub fn to_millis(instant: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(instant.timestamp_millis()).expect("in range")
}
