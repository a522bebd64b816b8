//! What the store takes and gives: the records of attempts written,
//! verdicts, heartbeats, exclusions, notifications and storage use.

use chrono::{DateTime, Utc};

use crate::attempt::Attempt;
use crate::minute::Minute;
use crate::sla::ExclusionWindow;
use crate::verdict::{OutcomeCounts, Verdict};

/// What one [`Store::ingest`] call changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestSummary {
    /// Attempts read from the source.
    pub attempts: u64,
    /// Attempts that were new; the rest were already stored.
    pub inserted: u64,
    /// Distinct target minutes whose verdict was re-decided.
    pub minutes_touched: u64,
}

/// One row of the `minute_verdicts` view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinuteVerdict {
    pub minute: Minute,
    pub verdict: Verdict,
    pub counts: OutcomeCounts,
    pub probers: i64,
}

/// One prober's minute: it was alive, and what its scheduler did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    pub prober: String,
    pub minute: Minute,
    pub scheduled: i64,
    pub started: i64,
    /// Starts skipped: too many in flight, minute already proven, or quota.
    pub skipped: i64,
    pub finished: i64,
}

/// How far one prober's stored attempts are complete: every attempt it
/// started before `complete_until` is in the database (docs/many-regions.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProberMark {
    pub prober: String,
    pub complete_until: DateTime<Utc>,
    /// When the prober last said so, on its own clock.
    pub reported_at: DateTime<Utc>,
}

/// What decides which minutes are settled: every prober's watermark, and the
/// earliest minute whose verdict still waits for re-decision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettlementFacts {
    pub marks: Vec<ProberMark>,
    pub earliest_pending: Option<Minute>,
}

/// Where an exclusion window came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExclusionSource {
    /// `[[exclusions]]` in the config file, synchronised on start.
    Config,
    /// `improbe exclusions add`.
    Cli,
}

impl ExclusionSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ExclusionSource::Config => "config",
            ExclusionSource::Cli => "cli",
        }
    }

    pub(super) fn parse(s: &str) -> Self {
        if s == "cli" {
            ExclusionSource::Cli
        } else {
            ExclusionSource::Config
        }
    }
}

/// An exclusion window to record from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewExclusion {
    pub target: String,
    pub window: ExclusionWindow,
    pub reason: String,
    pub announced_at: Option<DateTime<Utc>>,
    pub recorded_at: DateTime<Utc>,
    pub recorded_by: String,
}

/// An exclusion window as kept in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredExclusion {
    pub id: i64,
    pub target: String,
    pub window: ExclusionWindow,
    pub reason: String,
    pub announced_at: Option<DateTime<Utc>>,
    pub source: ExclusionSource,
    pub recorded_at: DateTime<Utc>,
    pub recorded_by: String,
}

impl StoredExclusion {
    /// The contract excludes only maintenance announced in advance.
    pub fn has_prior_notice(&self) -> bool {
        self.announced_at.is_some_and(|at| at < self.window.start)
    }
}

/// One event for one channel, to be written to the `notifications` outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification {
    /// Stable per event (docs/notifications.md): what makes a decision
    /// taken by several probers, or again after a restart, one row.
    pub event_key: String,
    pub channel: String,
    pub target: String,
    pub event: String,
    /// The event as JSON, as a webhook receives it (never a secret).
    pub payload: String,
    pub decided_by: String,
    pub created_at: DateTime<Utc>,
}

/// A notification leased to one prober for sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedNotification {
    pub id: i64,
    pub event_key: String,
    pub payload: String,
    /// Sending tries so far, this one included.
    pub tries: i64,
}

/// A row of the outbox as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredNotification {
    pub id: i64,
    pub event_key: String,
    pub channel: String,
    pub target: String,
    pub event: String,
    pub payload: String,
    pub tries: i64,
    pub sent_at: Option<DateTime<Utc>>,
    pub sent_by: Option<String>,
    /// Set when the receiver refused the event for good.
    pub gave_up_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// What becomes of a notification after a failed try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Due again at this instant; later events of the channel wait.
    RetryAt(DateTime<Utc>),
    /// Refused for good at this instant: never sent, and the channel moves on.
    GiveUp(DateTime<Utc>),
}

/// What one [`Store::compact`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactSummary {
    /// Successful attempts folded (their raw rows gone).
    pub folded: u64,
    /// Prober minutes whose folded successes were written or extended.
    pub rollups: u64,
    /// Raw attempts pruned past retention.
    pub pruned: u64,
    /// Target hours whose verdicts and buckets were packed.
    pub packed_hours: u64,
    /// The longest transaction it ran.
    pub longest_transaction: std::time::Duration,
    /// The longest a write of fresh attempts could have waited behind it:
    /// on SQLite its longest transaction (one writer at a time); on
    /// PostgreSQL the swap of a day partition, the only moment it holds a
    /// lock such writes wait for.
    pub longest_writer_wait: std::time::Duration,
}

/// One table's use of the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableUse {
    pub table: String,
    /// On disk, its indexes included.
    pub bytes: i64,
    pub rows: i64,
    /// Rows of the period asked for, where the table has a time column.
    pub recent_rows: Option<i64>,
}

/// What the database costs on disk ([`Store::storage_use`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageUse {
    pub tables: Vec<TableUse>,
    /// The whole database on disk (SQLite: the main file's pages).
    pub database_bytes: i64,
}

/// A source of attempts for [`Store::ingest`]; an `Err` item aborts the whole ingest.
pub type AttemptSource<'a> = dyn Iterator<Item = anyhow::Result<Attempt>> + Send + 'a;
