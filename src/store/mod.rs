//! Storage: one [`Store`] trait, SQLite and PostgreSQL behind it. All SQL lives here.

pub mod changes;
mod connection;
mod postgres;
mod rollups;
mod sql;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use crate::attempt::Attempt;
use crate::attempt::rollup::{Rollup, RollupKey};
use crate::config::{ConfiguredExclusion, Pooler};
use crate::minute::{Minute, MinuteRange};
use crate::sla::{ExclusionWindow, MonthStatement, ObservedMinutes};
use crate::verdict::{OutcomeCounts, Verdict};

/// Attempts written in one statement. 10 columns × 1,000 rows stays well under
/// both backends' bind-parameter limits (SQLite 32,766, PostgreSQL 65,535).
const ATTEMPT_BATCH: usize = 1_000;

/// Minutes per `IN (...)` list when re-deciding verdicts.
const MINUTE_CHUNK: usize = 500;

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

    fn parse(s: &str) -> Self {
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

/// The database behind improbe. Both backends pass the same contract tests.
#[async_trait]
pub trait Store: Send + Sync {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Applies pending migrations; safe to run from several probers at once.
    async fn migrate(&self) -> StoreResult<()>;

    /// Writes attempts and re-decides the verdicts of every minute they
    /// touch, all in one transaction, under the touched targets' locks
    /// (an import): either every attempt is stored or none is.
    /// Attempts already stored (same target, prober, kind and start) are skipped.
    async fn ingest(&self, attempts: &mut AttemptSource<'_>) -> StoreResult<IngestSummary>;

    /// The daemon's write: stores attempts like [`Store::ingest`] and records
    /// the prober's watermark in the same transaction. On PostgreSQL it
    /// leaves the minutes' re-decision to [`Store::settle_pending`], so a
    /// write waits for no other prober; SQLite, one writer at a time anyway,
    /// re-decides in the same transaction. Empty `attempts`: only the
    /// watermark, if any.
    async fn store_attempts(
        &self,
        attempts: &[Attempt],
        watermark: Option<&ProberMark>,
    ) -> StoreResult<IngestSummary>;

    /// Re-decides the pending minutes of every target no other prober is
    /// re-deciding at this moment; never waits for one that is. Returns how
    /// many minutes were re-decided.
    async fn settle_pending(&self) -> StoreResult<u64>;

    /// Makes `wanted` (target → `slow_after` in milliseconds) the thresholds
    /// slow `ok` attempts are counted against. For each target whose
    /// threshold is new or changed, recounts every minute whose attempts
    /// are still stored, under the target's lock. A target left out keeps
    /// its stored rule. Returns the targets recounted.
    async fn apply_latency_rules(
        &self,
        wanted: &std::collections::BTreeMap<String, i64>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<String>>;

    /// Every prober's watermark and the earliest pending minute.
    async fn settlement_facts(&self) -> StoreResult<SettlementFacts>;

    /// Every target's stored counts of one minute, in one query.
    async fn minute_counts_at(&self, minute: Minute) -> StoreResult<Vec<(String, OutcomeCounts)>>;

    /// Makes the config's exclusion windows the database's `config` windows,
    /// re-deciding the minutes of any window that was added or removed.
    async fn sync_config_exclusions(
        &self,
        exclusions: &[ConfiguredExclusion],
        recorded_by: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Records an exclusion window from the command line and re-decides the
    /// minutes it covers. Returns its id.
    async fn add_exclusion(&self, exclusion: &NewExclusion) -> StoreResult<i64>;

    /// Removes a command-line exclusion window and re-decides its minutes.
    /// `Ok(None)`: no such window.
    async fn remove_exclusion(&self, id: i64) -> StoreResult<Option<StoredExclusion>>;

    /// Exclusion windows of one target (`None`: all targets), oldest first.
    async fn exclusions(&self, target: Option<&str>) -> StoreResult<Vec<StoredExclusion>>;

    /// Available and failure minutes of one target within `range`.
    async fn observed_minutes(
        &self,
        target: &str,
        range: MinuteRange,
    ) -> StoreResult<ObservedMinutes>;

    /// The stored verdicts of one target within `range`, by minute.
    async fn minute_verdicts(
        &self,
        target: &str,
        range: MinuteRange,
    ) -> StoreResult<Vec<MinuteVerdict>>;

    /// Upserts the `service_months` rows for these statements.
    async fn save_service_months(
        &self,
        statements: &[MonthStatement],
        now: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Answers when the database is reachable.
    async fn ping(&self) -> StoreResult<()>;

    /// Adds one prober's per-minute scheduler counts (a minute may be
    /// recorded in parts).
    async fn record_heartbeats(&self, beats: &[Heartbeat]) -> StoreResult<()>;

    /// Every prober's heartbeats within `range`, by minute then prober.
    async fn heartbeats(&self, range: MinuteRange) -> StoreResult<Vec<Heartbeat>>;

    /// Hands every stored attempt of `target` that started within `range` to
    /// `visit`, in a fixed order (start, prober, kind), without holding them
    /// all in memory. Returns how many there were.
    async fn visit_attempts(
        &self,
        target: &str,
        range: MinuteRange,
        visit: &mut (dyn FnMut(Attempt) + Send),
    ) -> StoreResult<u64>;

    /// Deletes the raw attempts and rollups of `target` that started
    /// before `before`; buckets and verdicts stay. Returns how many raw
    /// attempts were deleted.
    async fn prune_attempts(&self, target: &str, before: DateTime<Utc>) -> StoreResult<u64>;

    /// The storage round's work on the database (docs/operations.md
    /// "Retention"): the successful attempts that started before
    /// `fold_before` folded into per-minute rollups (src/attempt/rollup.rs),
    /// failures, inconclusive attempts and missing deliveries kept raw; and
    /// for each `(target, before)` of `prune`, its raw attempts and folded
    /// successes before that instant deleted. In short transactions;
    /// idempotent.
    async fn compact(
        &self,
        fold_before: Option<Minute>,
        prune: &[(String, DateTime<Utc>)],
    ) -> StoreResult<CompactSummary>;

    /// The evidence of `target` within `range` as one snapshot: its raw
    /// attempts handed to `visit` as [`Store::visit_attempts`] does, and
    /// its folded successes returned, by minute, prober and kind.
    async fn visit_evidence(
        &self,
        target: &str,
        range: MinuteRange,
        visit: &mut (dyn FnMut(Attempt) + Send),
    ) -> StoreResult<Vec<(RollupKey, Rollup)>>;

    /// Each table's bytes and rows, and the rows each gained since `since`.
    async fn storage_use(&self, since: DateTime<Utc>) -> StoreResult<StorageUse>;

    /// The whole database's bytes on disk, without counting rows.
    async fn database_bytes(&self) -> StoreResult<i64>;

    /// Gives space freed by folding and pruning back to the file system, in
    /// steps; returns the longest step (how long a write could wait).
    async fn reclaim_space(&self) -> StoreResult<std::time::Duration>;

    /// How many attempts are stored (all targets).
    async fn attempt_count(&self) -> StoreResult<i64>;

    /// Writes events to the outbox; an (event, channel) already there is
    /// left as it is. Returns how many rows were new.
    async fn enqueue_notifications(&self, rows: &[NewNotification]) -> StoreResult<u64>;

    /// Leases the oldest unsent notification of `channel` to `prober` until
    /// `lease_until`, if it is due and nobody else holds it. Never skips
    /// ahead of an older row, so a channel gets its events in order.
    async fn claim_notification(
        &self,
        channel: &str,
        prober: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<ClaimedNotification>>;

    /// Marks a leased notification sent. `false`: the lease was lost.
    async fn notification_sent(
        &self,
        id: i64,
        prober: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// Gives a leased notification back after a failed try, to be retried
    /// or given up.
    async fn notification_failed(
        &self,
        id: i64,
        prober: &str,
        error: &str,
        after: AfterFailure,
    ) -> StoreResult<()>;

    /// Gives back every lease `prober` holds (at a stop).
    async fn release_notifications(&self, prober: &str) -> StoreResult<()>;

    /// Unsent notifications per channel.
    async fn pending_notifications(&self) -> StoreResult<Vec<(String, i64)>>;

    /// The outbox, oldest first (`None`: every channel).
    async fn notifications(&self, channel: Option<&str>) -> StoreResult<Vec<StoredNotification>>;
}

/// Opens the database a URL names: `sqlite://FILE` or `postgres://...`,
/// reached directly.
pub async fn open(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    open_through(url, Pooler::None).await
}

/// Opens the database a URL names, through `pooler` if it is PostgreSQL
/// (`[database] pooler`).
pub async fn open_through(url: &str, pooler: Pooler) -> anyhow::Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    } else if is_postgres(url) {
        Ok(Arc::new(PostgresStore::connect(url, pooler).await?))
    } else {
        anyhow::bail!(
            "unsupported database URL `{}`: use sqlite://FILE or postgres://USER@HOST/DB",
            redact_url(url)
        )
    }
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// What is wrong with a PostgreSQL URL's parameters (`sslmode`, a CA file
/// that cannot be read, a parameter improbe would ignore), found without
/// connecting; `None` for a good one, or another database's URL.
pub fn url_problem(url: &str) -> Option<String> {
    if !is_postgres(url) {
        return None;
    }
    postgres::connect_options(url)
        .err()
        .map(|e| format!("{e:#}"))
}

/// What a database needs before attempts go in or figures come out: the
/// schema, the config's exclusion windows, and no minute left pending.
pub async fn prepare(
    store: &dyn Store,
    config: &crate::config::Config,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    store
        .migrate()
        .await
        .with_context(|| format!("cannot migrate the {} database", store.backend()))?;
    store
        .sync_config_exclusions(&config.exclusions, &config.prober.id, now)
        .await
        .context("cannot record the config's exclusion windows")?;
    let recounted = store
        .apply_latency_rules(&config.latency_rules(), now)
        .await
        .context("cannot record the contracts' latency rules")?;
    if !recounted.is_empty() {
        tracing::info!(targets = ?recounted, "latency rule changed: slow successes recounted from the stored attempts");
    }
    // Minutes a stopped or crashed prober left pending are re-decided before
    // anything reads them (targets another prober is re-deciding are its).
    store
        .settle_pending()
        .await
        .context("cannot re-decide pending minutes")?;
    Ok(())
}

/// Whether an error from [`prepare`] or any store call means the database
/// cannot be used now (retry: [`StoreError::is_unavailable`]) rather than
/// answered with a refusal (give up).
pub fn is_unavailable(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<StoreError>()
        .is_some_and(StoreError::is_unavailable)
}

/// Like [`open`], except that PostgreSQL is not contacted: the store
/// connects on first use, so the daemon starts probing (and spooling) at
/// once, whether or not the database answers. The daemon's first
/// [`prepare`] tells a server that is down (retried) from one that answers
/// and refuses (wrong password, unknown database: an error).
pub async fn open_or_wait(url: &str, pooler: Pooler) -> anyhow::Result<Arc<dyn Store>> {
    if is_postgres(url) {
        return Ok(Arc::new(PostgresStore::connect_lazy(url, pooler)?));
    }
    open(url).await
}

/// What went wrong with the database, decided once where the driver's error
/// is first seen: callers choose between waiting (unavailable) and giving
/// up (refused) by matching, not by digging through error chains.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database did not answer at all: refused or lost connection, timed
    /// out, or a server shutting down or still starting up. An outage: retry.
    #[error("the database does not answer: {0}")]
    Unreachable(#[source] sqlx::Error),
    /// TLS with the database failed: its certificate does not verify, it
    /// refused ours, or it offers no TLS. Named for what it is, never as an
    /// outage; retried like one, since a certificate renewed on the server
    /// fixes it without improbe (docs/many-regions.md "TLS to PostgreSQL").
    #[error("{0}: {1}")]
    Tls(TlsProblem, sqlx::Error),
    /// Statements prepared on one server connection were missing, or
    /// another client's, on the next: a pooler in transaction mode that
    /// improbe was not told of.
    #[error(
        "prepared statements do not survive from one transaction to the next here: the database is reached \
         through a connection pooler in transaction mode; set `[database] pooler = \"transaction\"` \
         (docs/many-regions.md \"Through a connection pooler\")"
    )]
    PoolerInTransactionMode(#[source] sqlx::Error),
    /// The database answered with an error: wrong password, unknown database,
    /// missing privilege, a failed statement. Retrying will not help.
    #[error("the database refused: {0}")]
    Refused(#[source] sqlx::Error),
    /// Anything else: data that does not decode, a failed attempt source.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Why TLS with the database failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsProblem {
    #[error(
        "the database's certificate is not signed by a CA improbe trusts: give the URL's sslrootcert the CA that signed it"
    )]
    UnknownIssuer,
    #[error(
        "the database's certificate is not valid for the host name in the URL (sslmode=verify-full checks it): \
         connect by a name the certificate holds"
    )]
    WrongHostName,
    #[error("the database's certificate has expired")]
    Expired,
    #[error("the database's certificate is not valid yet: check this machine's clock")]
    NotValidYet,
    #[error("the database's certificate does not verify: {0}")]
    BadCertificate(String),
    #[error(
        "the database refused improbe's client certificate (the URL's sslcert and sslkey): TLS alert {0}"
    )]
    ClientCertificateRefused(String),
    #[error("the database does not offer TLS, and the URL's sslmode requires it")]
    NoTlsOffered,
    #[error("TLS with the database failed: {0}")]
    Other(String),
}

impl TlsProblem {
    /// The TLS problem `error` reports, if it is one: sqlx hands rustls's
    /// errors over as its `Tls` error or, from the handshake, as I/O.
    fn of(error: &sqlx::Error) -> Option<TlsProblem> {
        use tokio_rustls::rustls;
        let tls: &(dyn std::error::Error + 'static) = match error {
            sqlx::Error::Tls(inner) => inner.as_ref(),
            sqlx::Error::Io(io) => io.get_ref()?,
            _ => return None,
        };
        let Some(rustls_error) = tls.downcast_ref::<rustls::Error>() else {
            return match error {
                sqlx::Error::Tls(inner) if inner.to_string().contains("does not support TLS") => {
                    Some(TlsProblem::NoTlsOffered)
                }
                sqlx::Error::Tls(inner) => Some(TlsProblem::Other(inner.to_string())),
                _ => None,
            };
        };
        use rustls::{AlertDescription as Alert, CertificateError as Cert};
        Some(match rustls_error {
            // A bad signature: a CA of the same name, not the one that
            // signed it (a CA rotated on one side only).
            rustls::Error::InvalidCertificate(Cert::UnknownIssuer | Cert::BadSignature) => {
                TlsProblem::UnknownIssuer
            }
            rustls::Error::InvalidCertificate(
                Cert::NotValidForName | Cert::NotValidForNameContext { .. },
            ) => TlsProblem::WrongHostName,
            rustls::Error::InvalidCertificate(Cert::Expired | Cert::ExpiredContext { .. }) => {
                TlsProblem::Expired
            }
            rustls::Error::InvalidCertificate(
                Cert::NotValidYet | Cert::NotValidYetContext { .. },
            ) => TlsProblem::NotValidYet,
            rustls::Error::InvalidCertificate(other) => {
                TlsProblem::BadCertificate(format!("{other:?}"))
            }
            rustls::Error::AlertReceived(
                alert @ (Alert::BadCertificate
                | Alert::UnknownCA
                | Alert::CertificateRequired
                | Alert::CertificateExpired
                | Alert::CertificateRevoked
                | Alert::CertificateUnknown
                | Alert::AccessDenied),
            ) => TlsProblem::ClientCertificateRefused(format!("{alert:?}")),
            other => TlsProblem::Other(other.to_string()),
        })
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// The database cannot be used now and may be later without a change
    /// of ours: it does not answer, or TLS with it fails. Attempts wait in
    /// the spool meanwhile.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unreachable(_) | StoreError::Tls(..))
    }

    /// The database's disk is full: SQLite's `SQLITE_FULL` (13, also as the
    /// extended codes built on it), PostgreSQL's SQLSTATE 53100. Writes
    /// wait in memory and in the spool until space returns.
    pub fn is_disk_full(&self) -> bool {
        let (StoreError::Refused(sqlx::Error::Database(e))
        | StoreError::Unreachable(sqlx::Error::Database(e))) = self
        else {
            return false;
        };
        e.code().is_some_and(|code| {
            code == "53100" || code.parse::<i64>().is_ok_and(|n| n & 0xff == 13)
        })
    }

    /// Why a write failed, as the `reason` label of
    /// `improbe_database_write_errors_total`.
    pub fn write_error_reason(&self) -> WriteErrorReason {
        if self.is_disk_full() {
            WriteErrorReason::DiskFull
        } else if matches!(self, StoreError::Tls(..)) {
            WriteErrorReason::Tls
        } else if self.is_unavailable() {
            WriteErrorReason::Unreachable
        } else {
            WriteErrorReason::Refused
        }
    }
}

/// Why a database write failed (`improbe_database_write_errors_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteErrorReason {
    /// The database's disk is full.
    DiskFull,
    /// The database did not answer.
    Unreachable,
    /// TLS with the database failed (`TlsProblem`).
    Tls,
    /// The database answered with another error.
    Refused,
    /// No answer within the write's time limit.
    Timeout,
}

impl WriteErrorReason {
    pub const ALL: [WriteErrorReason; 5] = [
        WriteErrorReason::DiskFull,
        WriteErrorReason::Unreachable,
        WriteErrorReason::Tls,
        WriteErrorReason::Refused,
        WriteErrorReason::Timeout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WriteErrorReason::DiskFull => "disk_full",
            WriteErrorReason::Unreachable => "unreachable",
            WriteErrorReason::Tls => "tls",
            WriteErrorReason::Refused => "refused",
            WriteErrorReason::Timeout => "timeout",
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if let Some(problem) = TlsProblem::of(&error) {
            return StoreError::Tls(problem, error);
        }
        // sqlx names its prepared statements `sqlx_s_N`: one that already
        // exists, does not, or takes other parameters was prepared in
        // another session than the one that runs it.
        if let sqlx::Error::Database(e) = &error
            && e.message().contains("prepared statement \"sqlx_s_")
        {
            return StoreError::PoolerInTransactionMode(error);
        }
        let unreachable = match &error {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => true,
            // SQLSTATE class 08 (connection exception) and 57P01-57P03 (admin
            // or crash shutdown, cannot connect now): the server is going away
            // or not back yet, which is an outage, not a configuration error.
            sqlx::Error::Database(e) => e.code().is_some_and(|code| {
                code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03")
            }),
            _ => false,
        };
        if unreachable {
            StoreError::Unreachable(error)
        } else {
            StoreError::Refused(error)
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        match error {
            sqlx::migrate::MigrateError::Execute(e) => e.into(),
            other => StoreError::Other(other.into()),
        }
    }
}

/// A URL with every credential replaced, for logs and errors: the password
/// in the user part (whatever it contains, `@` included), any query
/// parameter named like a credential ([`is_credential_name`]) and the
/// fragment. The one function every URL improbe prints goes through
/// (database, control check). A URL that does not parse is not shown at
/// all, since what it hides cannot be known.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        return "(a URL that does not parse; not shown)".to_owned();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    if parsed
        .query_pairs()
        .any(|(key, _)| is_credential_name(&key))
    {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(key, value)| {
                let secret = is_credential_name(&key);
                let value = if secret {
                    "***".into()
                } else {
                    value.into_owned()
                };
                (key.into_owned(), value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    if parsed.fragment().is_some() {
        parsed.set_fragment(Some("***"));
    }
    parsed.to_string()
}

/// Whether a query parameter's name says it may carry a credential:
/// `password`, `sslpassword`, `token`, `access_token`, `key`, `apikey`,
/// `secret`, `auth`, `signature`, `sig`, ... (any case).
fn is_credential_name(name: &str) -> bool {
    const CREDENTIAL_WORDS: [&str; 7] = [
        "pass",
        "token",
        "key",
        "secret",
        "auth",
        "sig",
        "credential",
    ];
    let name = name.to_ascii_lowercase();
    CREDENTIAL_WORDS.iter().any(|word| name.contains(word))
}

/// Whether a statement of `rows` rows is worth keeping prepared: the sizes
/// that repeat (a full batch or chunk, a single row). See `sql.rs`.
fn keep_prepared(rows: usize) -> bool {
    rows == ATTEMPT_BATCH || rows == MINUTE_CHUNK || rows == 1
}

/// Splits a range into whole UTC hours (served by the roll-up) and the
/// partial-hour edges at either end (served minute by minute).
fn split_by_hours(range: MinuteRange) -> (std::ops::Range<i64>, [MinuteRange; 2]) {
    let first_full_hour = (range.start.0 + 59).div_euclid(60);
    let end_full_hour = range.end.0.div_euclid(60);
    if first_full_hour >= end_full_hour {
        return (0..0, [range, MinuteRange::new(range.end, range.end)]);
    }
    (
        first_full_hour..end_full_hour,
        [
            MinuteRange::new(range.start, Minute(first_full_hour * 60)),
            MinuteRange::new(Minute(end_full_hour * 60), range.end),
        ],
    )
}

/// A batch of attempts as the JSON array a one-statement write reads, each
/// with its minute.
fn attempts_json(batch: &[Attempt]) -> String {
    #[derive(serde::Serialize)]
    struct Row<'a> {
        target: &'a str,
        prober: &'a str,
        kind: i16,
        started_at_ms: i64,
        minute: i64,
        latency_ms: Option<i64>,
        outcome: i16,
        http_status: Option<i32>,
        error_code: Option<&'a str>,
        error: Option<&'a str>,
        reason: Option<&'a str>,
        delivery: Option<i16>,
        delivered_ms: Option<i64>,
    }
    let rows: Vec<Row> = batch
        .iter()
        .map(|a| Row {
            target: &a.target,
            prober: &a.prober,
            kind: a.kind.code(),
            started_at_ms: a.started_at_ms(),
            minute: a.minute().0,
            latency_ms: a.latency_ms,
            outcome: a.outcome.code(),
            http_status: a.http_status,
            error_code: a.error_code.as_deref(),
            error: a.error.as_deref(),
            reason: a.reason.map(crate::attempt::InconclusiveReason::as_str),
            delivery: a.delivery.map(crate::attempt::Delivery::code),
            delivered_ms: a.delivery.and_then(crate::attempt::Delivery::delivered_ms),
        })
        .collect();
    serde_json::to_string(&rows).expect("attempts serialise")
}

fn millis_to_instant(ms: i64) -> anyhow::Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| anyhow::anyhow!("stored instant {ms} ms is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_split_keeps_every_minute_once() {
        for (start, end) in [
            (0, 600),
            (30, 95),
            (61, 119),
            (59, 61),
            (-90, 150),
            (120, 120),
        ] {
            let range = MinuteRange::new(Minute(start), Minute(end));
            let (hours, edges) = split_by_hours(range);
            let covered = (hours.end - hours.start) * 60 + edges[0].len() + edges[1].len();
            assert_eq!(covered, range.len(), "{start}..{end}");
            assert!(
                edges
                    .iter()
                    .all(|e| e.is_empty() || (range.start <= e.start && e.end <= range.end))
            );
        }
    }

    #[test]
    fn passwords_never_leave_a_url() {
        assert_eq!(
            redact_url("postgres://u:s3cret@db/x"),
            "postgres://u:***@db/x"
        );
        assert_eq!(redact_url("postgres://u@db/x"), "postgres://u@db/x");
        assert_eq!(redact_url("sqlite://improbe.db"), "sqlite://improbe.db");
        // A password with `@`, or in the query, never shows.
        let at = redact_url("postgres://u:S3@T@host/db");
        assert!(!at.contains("S3") && !at.contains("T@"), "{at}");
        let query = redact_url("postgres://u@127.0.0.1:9/db?password=S3CRET&sslmode=require");
        assert!(!query.contains("S3CRET"), "{query}");
        assert!(query.contains("sslmode=require"), "{query}");
        let control = redact_url("https://user:S3CRET@example.net/ping");
        assert_eq!(control, "https://user:***@example.net/ping");
        assert!(!redact_url("postgres://u:S3CRET@[bad").contains("S3CRET"));
        for hostile in [
            "postgres://u@h/db?sslpassword=S3CRET",
            "https://h/x?access_token=S3CRET&x=1",
            "https://h/x?apiKey=S3CRET",
            "https://h/x?X-Amz-Signature=S3CRET",
            "https://h/x?Auth=S3CRET",
            "https://h/x#token=S3CRET",
            "https://u:S3%40CRET%3A@h/x",
            "https://u:S3CRET:more@h/x",
            "postgres://u:S3CRET@h:notaport/db",
            "S3CRET",
        ] {
            let shown = redact_url(hostile);
            assert!(!shown.contains("S3"), "{hostile} shown as {shown}");
        }
        assert!(redact_url("https://h/x?access_token=S&x=1").contains("x=1"));
    }
}

#[cfg(test)]
mod error_tests {
    use super::*;

    #[test]
    fn a_database_that_does_not_answer_is_told_from_one_that_refuses() {
        let lost = StoreError::from(sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        assert!(lost.is_unavailable());
        assert!(StoreError::from(sqlx::Error::PoolTimedOut).is_unavailable());
        let refused = StoreError::from(sqlx::Error::RowNotFound);
        assert!(matches!(refused, StoreError::Refused(_)));
        // Context added by callers does not hide the kind.
        let wrapped = anyhow::Error::from(StoreError::from(sqlx::Error::PoolTimedOut))
            .context("cannot migrate");
        assert!(is_unavailable(&wrapped));
        assert!(!is_unavailable(
            &anyhow::Error::from(refused).context("cannot migrate")
        ));
    }
}
