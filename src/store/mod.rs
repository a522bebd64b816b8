//! Storage: one [`Store`] trait, SQLite and PostgreSQL behind it. All SQL lives here.

pub mod changes;
mod connection;
mod error;
mod postgres;
mod records;
mod sql;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use error::{
    StoreError, StoreResult, TlsProblem, WriteErrorReason, is_unavailable, redact_url,
};
pub use postgres::PostgresStore;
pub use records::{
    AfterFailure, AttemptSource, ClaimedNotification, CompactSummary, ExclusionSource, Heartbeat,
    IngestSummary, MinuteVerdict, NewExclusion, NewNotification, ProberMark, SettlementFacts,
    StorageUse, StoredExclusion, StoredNotification, TableUse,
};
pub use sqlite::SqliteStore;

use crate::attempt::Attempt;
use crate::attempt::rollup::{Rollup, RollupKey};
use crate::config::{ConfiguredExclusion, Pooler};
use crate::minute::{Minute, MinuteRange};
use crate::sla::{MonthStatement, ObservedMinutes};
use crate::verdict::OutcomeCounts;

/// Attempts written in one statement. 10 columns × 1,000 rows stays well under
/// both backends' bind-parameter limits (SQLite 32,766, PostgreSQL 65,535).
const ATTEMPT_BATCH: usize = 1_000;

/// Minutes per `IN (...)` list when re-deciding verdicts.
const MINUTE_CHUNK: usize = 500;

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

/// Whether a statement of `rows` rows is worth keeping prepared: the sizes
/// that repeat (a full batch or chunk, a single row). See `sql/mod.rs`.
fn keep_prepared(rows: usize) -> bool {
    rows == ATTEMPT_BATCH || rows == MINUTE_CHUNK || rows == 1
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
