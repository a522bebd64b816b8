//! The Store implementation both backends share: one implementation over
//! sqlx's `Database`, with what differs between the dialects (transaction
//! start, per-target locks, the one-statement write, the typed
//! `service_months` upsert, the migrations) in [`Dialect`], which
//! `sqlite.rs` and `postgres.rs` implement.
//!
//! Statements built with `QueryBuilder` hold a number of rows that varies
//! with the batch, so each row count is a statement of its own: only the
//! sizes that repeat are kept in sqlx's per-connection statement cache
//! (`keep_prepared`), where SQLite would otherwise hold every such prepared
//! program (tens of kilobytes for a batch) for as long as the cache does.

use sqlx::database::HasStatementCache;
use sqlx::migrate::{Migrate, Migrator};
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

use super::connection::{Db, Tx};

/// The most UTC days one write (an import) may add partitions for: each
/// holds a few locks until the write commits, and PostgreSQL's lock table
/// has room for some 6,400 by default.
const MAX_NEW_DAYS_PER_WRITE: usize = 400;

/// What one backend's SQL says differently; the rest is [`SqlStore`]'s.
pub trait Dialect: Database + HasStatementCache {
    /// `Store::backend`: "sqlite" or "postgres".
    const BACKEND: &'static str;
    /// Starts a write transaction.
    const BEGIN_WRITE: &'static str;
    /// Starts a read-only transaction whose reads all see one snapshot.
    const BEGIN_SNAPSHOT: &'static str;
    /// Takes the per-target locks of a JSON list of names, in one fixed
    /// order; `None` where the database admits one writer at a time.
    const LOCK_TARGETS: Option<&'static str>;
    /// The targets with pending minutes whose locks are free now.
    const TRY_LOCK_PENDING_TARGETS: &'static str;
    /// Serialises changes to the exclusion windows; `None` as for targets.
    const LOCK_EXCLUSIONS: Option<&'static str>;
    /// A whole write in one statement, where the dialect can.
    const STORE_AT_ONCE: Option<&'static str>;
    /// Whether the daemon's writes leave re-decision to the settle loop.
    const DEFER_REDECISION: bool;
    /// The `service_months` upsert, with the dialect's casts.
    const SAVE_SERVICE_MONTH: &'static str;
    /// Each table's bytes on disk, indexes included: rows of (name, bytes).
    const TABLE_BYTES: &'static str;
    /// The whole database's bytes on disk.
    const DATABASE_BYTES: &'static str;
    /// Answers non-zero when the database must be converted once before
    /// [`Self::RECLAIM_STEP`] can give space back.
    const NEEDS_CONVERSION: Option<&'static str>;
    /// That conversion.
    const CONVERT: &'static [&'static str];
    /// Gives some freed pages back to the file system, in a transaction of
    /// its own short enough for a writer to wait behind.
    const RECLAIM_STEP: Option<&'static str>;
    /// Pages freed and not given back yet.
    const FREE_PAGES: Option<&'static str>;
    /// Run once the pages are given back.
    const AFTER_RECLAIM: &'static [&'static str];
    /// Creates the missing `attempts` partitions of the UTC days (since
    /// the epoch) of JSON array $1, where attempts are partitioned by day.
    const ENSURE_DAYS: Option<&'static str>;
    /// The names of the day partitions, where attempts are partitioned.
    const DAY_PARTITIONS: Option<&'static str>;
    /// Locks day partition $1 against writes, and against another storage
    /// round, until the transaction ends.
    const LOCK_DAY: Option<&'static str>;
    /// Replaces day partition $1 (days since the epoch) by a copy without
    /// its successes ($2 true) and without the attempts of the targets of
    /// the JSON object $3 (target -> milliseconds) that started before
    /// their instant. Answers the rows it had and the rows it kept.
    const REWRITE_DAY: Option<&'static str>;

    fn migrator() -> &'static Migrator;
    /// Taken before migrating, in the migrations' transaction, where the
    /// migrations run in one (`Self::migrator` takes no lock of its own);
    /// `None`: the migrator's own locking.
    const MIGRATION_LOCK: Option<&'static str>;
    /// Drops every prepared statement of the session, where statements
    /// can be prepared by name.
    const FORGET_PREPARED: Option<&'static str>;

    /// How many rows a statement changed (each driver has its own result type).
    fn rows_affected(result: Self::QueryResult) -> u64;
}

/// A value both stored and read back: what every bound column type is.
pub trait Value<DB: Database>: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> {}

impl<DB: Database, T> Value<DB> for T where
    T: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>
{
}

/// The store on one backend: a pool for writes and one for reads, so
/// neither can starve the other.
pub struct SqlStore<DB: Database> {
    pub(super) pool: Db<DB>,
    pub(super) readers: Db<DB>,
    /// UTC days (since the epoch) whose `attempts` partition this process
    /// knows exists, where the dialect partitions by day.
    known_days: std::sync::Mutex<BTreeSet<i64>>,
}

impl<DB: Dialect> SqlStore<DB> {
    /// `unnamed`: every statement unprepared and in a transaction, for a
    /// pooler in transaction mode (`connection.rs`).
    pub(super) fn new(pool: sqlx::Pool<DB>, readers: sqlx::Pool<DB>, unnamed: bool) -> Self {
        SqlStore {
            pool: Db::new(pool, unnamed),
            readers: Db::new(readers, unnamed),
            known_days: Default::default(),
        }
    }
}

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Row};

use crate::attempt::rollup::{Rollup, RollupKey};
use crate::attempt::{Attempt, Delivery, InconclusiveReason, Kind, Outcome};
use crate::config::ConfiguredExclusion;
use crate::minute::{Minute, MinuteRange};
use crate::sla::{ExcludedMinutes, ExclusionWindow, MonthStatement, ObservedMinutes, tiers};
use crate::store::{
    ATTEMPT_BATCH, AfterFailure, AttemptSource, ClaimedNotification, CompactSummary,
    ExclusionSource, Heartbeat, IngestSummary, MINUTE_CHUNK, MinuteVerdict, NewExclusion,
    NewNotification, ProberMark, SettlementFacts, StorageUse, Store, StoreResult, StoredExclusion,
    StoredNotification, keep_prepared, millis_to_instant, split_by_hours,
};
use crate::verdict::{self, OutcomeCounts, Verdict};

// What sqlx needs to run these statements on `DB`. Rust does not carry
// bounds on other types (`i64: Value<DB>`) from a trait to its users, so
// this impl and the `Store` impl below each state them.
impl<DB> SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    i64: Value<DB>,
    i16: Value<DB>,
    Option<i16>: Value<DB>,
    String: Value<DB>,
    Vec<u8>: Value<DB>,
    Option<i32>: Value<DB>,
    Option<i64>: Value<DB>,
    Option<String>: Value<DB>,
    for<'a> &'a str: Type<DB> + Encode<'a, DB> + ColumnIndex<DB::Row>,
    for<'a> Option<&'a str>: Type<DB> + Encode<'a, DB>,
    for<'a> &'a [u8]: Type<DB> + Encode<'a, DB> + Decode<'a, DB>,
    usize: ColumnIndex<DB::Row>,
{
    /// Starts a write transaction. It takes no lock shared by the
    /// fleet: what must happen one at a time takes the per-target
    /// locks of [`Self::lock_targets`] (docs/many-regions.md).
    async fn begin_write(&self) -> StoreResult<Tx<'static, DB>> {
        Ok(self.pool.begin_with(DB::BEGIN_WRITE).await?)
    }

    /// Waits for the locks of `targets`, taken in one statement in
    /// one fixed order (so two callers cannot deadlock), held until
    /// the transaction ends. A target's verdicts and roll-up change
    /// only under its lock, so a re-decision reads what every
    /// earlier one wrote.
    async fn lock_targets(tx: &mut Tx<'_, DB>, targets: &BTreeSet<String>) -> StoreResult<()> {
        if let (Some(lock), false) = (DB::LOCK_TARGETS, targets.is_empty()) {
            let list = serde_json::to_string(targets).map_err(anyhow::Error::from)?;
            sqlx::query(lock).bind(list).execute(tx.on()).await?;
        }
        Ok(())
    }

    /// Serialises changes to the exclusion windows themselves (two
    /// probers syncing the same config at start). Never taken on the
    /// attempt write path.
    async fn lock_exclusions(tx: &mut Tx<'_, DB>) -> StoreResult<()> {
        if let Some(lock) = DB::LOCK_EXCLUSIONS {
            sqlx::query(lock).execute(tx.on()).await?;
        }
        Ok(())
    }

    /// The attempts of `batch` not stored yet (nor repeated earlier in the
    /// batch). Runs inside the savepoint of [`Self::store_new`]: a key
    /// that another transaction inserts meanwhile makes the insert
    /// fail, which fails the whole write (nothing is counted twice).
    async fn unseen<'b>(
        tx: &mut Tx<'_, DB>,
        batch: &[&'b Attempt],
    ) -> StoreResult<Vec<&'b Attempt>> {
        let mut spans: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
        for a in batch {
            let ms = a.started_at_ms();
            let span = spans.entry(a.target.as_str()).or_insert((ms, ms));
            *span = (span.0.min(ms), span.1.max(ms));
        }
        let mut stored: HashMap<&str, HashSet<(String, i16, i64)>> = HashMap::new();
        for (target, (first, last)) in spans {
            let rows = sqlx::query(
                "SELECT prober, kind, started_at_ms FROM attempts \
                 WHERE target = $1 AND started_at_ms >= $2 AND started_at_ms <= $3",
            )
            .bind(target)
            .bind(first)
            .bind(last)
            .fetch_all(tx.on())
            .await?;
            let keys = rows
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                .collect::<Result<HashSet<_>, sqlx::Error>>()?;
            stored.insert(target, keys);
        }
        let mut seen = HashSet::with_capacity(batch.len());
        Ok(batch
            .iter()
            .copied()
            .filter(|a| {
                let key = (
                    a.target.as_str(),
                    a.prober.as_str(),
                    a.kind,
                    a.started_at_ms(),
                );
                let known = stored.get(key.0).is_some_and(|keys| {
                    !keys.is_empty() && keys.contains(&(a.prober.clone(), a.kind.code(), key.3))
                });
                !known && seen.insert(key)
            })
            .collect())
    }

    /// Inserts attempts; returns how many rows were written. With
    /// `skip_stored`, attempts already stored are skipped, not errors.
    async fn insert_attempts(
        tx: &mut Tx<'_, DB>,
        attempts: &[&Attempt],
        skip_stored: bool,
    ) -> StoreResult<u64> {
        let mut insert = QueryBuilder::<DB>::new(
            "INSERT INTO attempts (target, prober, kind, started_at_ms, latency_ms, outcome, \
             http_status, error_code, error, reason, delivery, delivered_ms) ",
        );
        insert.push_values(attempts, |mut row, a| {
            row.push_bind(a.target.clone())
                .push_bind(a.prober.clone())
                .push_bind(a.kind.code())
                .push_bind(a.started_at_ms())
                .push_bind(a.latency_ms)
                .push_bind(a.outcome.code())
                .push_bind(a.http_status)
                .push_bind(a.error_code.clone())
                .push_bind(a.error.clone())
                .push_bind(a.reason.map(InconclusiveReason::as_str))
                .push_bind(a.delivery.map(Delivery::code))
                .push_bind(a.delivery.and_then(Delivery::delivered_ms));
        });
        if skip_stored {
            insert.push(" ON CONFLICT (target, started_at_ms, prober, kind) DO NOTHING");
        }
        Ok(insert
            .build()
            .persistent(keep_prepared(attempts.len()))
            .execute(tx.on())
            .await
            .map(DB::rows_affected)?)
    }

    /// Adds new attempts to the per-prober minute buckets (an upsert
    /// that increments, never a read-modify-write). Each prober has
    /// its own rows, so probers never wait on each other here.
    async fn add_to_buckets(
        tx: &mut Tx<'_, DB>,
        buckets: &BTreeMap<(String, Minute, String), OutcomeCounts>,
    ) -> StoreResult<()> {
        if buckets.is_empty() {
            return Ok(());
        }
        let mut upsert = QueryBuilder::<DB>::new(
            "INSERT INTO minute_buckets (target, minute, prober, ok_attempts, fail_attempts, inconclusive_attempts, slow_ok_attempts) ",
        );
        upsert.push_values(buckets, |mut row, ((target, minute, prober), counts)| {
            row.push_bind(target.clone())
                .push_bind(minute.0)
                .push_bind(prober.clone())
                .push_bind(counts.ok)
                .push_bind(counts.fail)
                .push_bind(counts.inconclusive)
                .push_bind(counts.slow_ok);
        });
        upsert.push(
            " ON CONFLICT (target, minute, prober) DO UPDATE SET \
             ok_attempts = minute_buckets.ok_attempts + excluded.ok_attempts, \
             fail_attempts = minute_buckets.fail_attempts + excluded.fail_attempts, \
             inconclusive_attempts = minute_buckets.inconclusive_attempts + excluded.inconclusive_attempts, \
             slow_ok_attempts = minute_buckets.slow_ok_attempts + excluded.slow_ok_attempts",
        );
        upsert
            .build()
            .persistent(keep_prepared(buckets.len()))
            .execute(tx.on())
            .await?;
        Ok(())
    }

    /// Appends minutes whose buckets changed to `pending_minutes`:
    /// plain inserts, which never wait on another prober's rows.
    async fn mark_pending(tx: &mut Tx<'_, DB>, minutes: &[(String, Minute)]) -> StoreResult<()> {
        for chunk in minutes.chunks(MINUTE_CHUNK) {
            let mut insert =
                QueryBuilder::<DB>::new("INSERT INTO pending_minutes (target, minute) ");
            insert.push_values(chunk, |mut row, (target, minute)| {
                row.push_bind(target.clone()).push_bind(minute.0);
            });
            insert
                .build()
                .persistent(keep_prepared(chunk.len()))
                .execute(tx.on())
                .await?;
        }
        Ok(())
    }

    async fn save_watermark<'e, E: sqlx::Executor<'e, Database = DB>>(
        executor: E,
        mark: &ProberMark,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO prober_watermarks (prober, complete_until_ms, reported_at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (prober) DO UPDATE SET reported_at_ms = excluded.reported_at_ms, \
             complete_until_ms = CASE WHEN excluded.complete_until_ms > prober_watermarks.complete_until_ms \
             THEN excluded.complete_until_ms ELSE prober_watermarks.complete_until_ms END",
        )
        .bind(&mark.prober)
        .bind(mark.complete_until.timestamp_millis())
        .bind(mark.reported_at.timestamp_millis())
        .execute(executor)
        .await?;
        Ok(())
    }

    /// Every target's latency threshold (a small table), read once per batch.
    async fn load_latency_rules(
        tx: &mut Tx<'_, DB>,
    ) -> StoreResult<crate::store::changes::LatencyRules> {
        let rows = sqlx::query("SELECT target, slow_after_ms FROM latency_rules")
            .fetch_all(tx.on())
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Recounts the slow `ok` of every bucket of `target` whose
    /// attempts are still stored, against `slow_after_ms`, then
    /// re-decides those minutes so the verdicts carry the new
    /// counts. Buckets older than the oldest stored attempt keep
    /// theirs: their attempts were pruned (docs/contracts.md).
    async fn recount_slow(
        tx: &mut Tx<'_, DB>,
        target: &str,
        slow_after_ms: i64,
    ) -> StoreResult<()> {
        let oldest: Option<i64> =
            sqlx::query_scalar("SELECT MIN(started_at_ms) FROM attempts WHERE target = $1")
                .bind(target)
                .fetch_one(tx.on())
                .await?;
        let oldest_raw = oldest
            .map(|ms| millis_to_instant(ms).map(|at| Minute::containing(&at).0))
            .transpose()?;
        let oldest_folded = Self::oldest_rollup(tx, target).await?;
        let Some(from) = oldest_raw.into_iter().chain(oldest_folded).min() else {
            return Ok(());
        };
        let from = Minute(from);
        // Minutes are whole UTC minutes of Unix time (`Minute`), so a
        // bucket's attempts are those started in [minute * 60000, + 60000).
        sqlx::query(
            "UPDATE minute_buckets SET slow_ok_attempts = (SELECT COUNT(*) FROM attempts \
             WHERE attempts.target = minute_buckets.target AND attempts.prober = minute_buckets.prober \
             AND attempts.started_at_ms >= minute_buckets.minute * 60000 \
             AND attempts.started_at_ms < (minute_buckets.minute + 1) * 60000 \
             AND attempts.outcome = 0 AND attempts.latency_ms > $2) \
             WHERE target = $1 AND minute >= $3",
        )
        .bind(target)
        .bind(slow_after_ms)
        .bind(from.0)
        .execute(tx.on())
        .await?;
        Self::recount_slow_folded(tx, target, slow_after_ms).await?;
        Self::redecide_range(tx, target, MinuteRange::new(from, Minute(i64::MAX))).await
    }

    /// Every target's exclusion windows (a small table), read once per transaction.
    async fn load_exclusions(tx: &mut Tx<'_, DB>) -> StoreResult<HashMap<String, ExcludedMinutes>> {
        let rows = sqlx::query("SELECT target, start_ms, end_ms FROM exclusions")
            .fetch_all(tx.on())
            .await?;
        let mut windows: HashMap<String, Vec<ExclusionWindow>> = HashMap::new();
        for r in rows {
            let window = ExclusionWindow {
                start: millis_to_instant(r.try_get(1)?)?,
                end: millis_to_instant(r.try_get(2)?)?,
            };
            windows.entry(r.try_get(0)?).or_default().push(window);
        }
        Ok(windows
            .into_iter()
            .map(|(target, w)| (target, ExcludedMinutes::new(w)))
            .collect())
    }

    /// Appends `(target, minute) IN (VALUES ...)` for a chunk of minutes.
    fn push_minute_list(query: &mut QueryBuilder<DB>, chunk: &[(String, Minute)]) {
        query.push("(target, minute) IN (VALUES ");
        let mut list = query.separated(", ");
        for (target, minute) in chunk {
            list.push("(");
            list.push_bind_unseparated(target.clone());
            list.push_unseparated(", ");
            list.push_bind_unseparated(minute.0);
            list.push_unseparated(")");
        }
        query.push(")");
    }

    /// Each given target minute's buckets (one per prober), summed.
    pub(super) fn bucket_sums_query(chunk: &[(String, Minute)]) -> QueryBuilder<DB> {
        let mut sums = QueryBuilder::<DB>::new(
            "SELECT target, minute, CAST(SUM(ok_attempts) AS BIGINT), CAST(SUM(fail_attempts) AS BIGINT), \
             CAST(SUM(inconclusive_attempts) AS BIGINT), CAST(COUNT(*) AS BIGINT), \
             CAST(SUM(slow_ok_attempts) AS BIGINT) FROM minute_buckets WHERE ",
        );
        Self::push_minute_list(&mut sums, chunk);
        sums.push(" GROUP BY target, minute");
        sums
    }

    /// Each given target minute's recorded verdict.
    pub(super) fn verdicts_query(chunk: &[(String, Minute)]) -> QueryBuilder<DB> {
        let mut previous =
            QueryBuilder::<DB>::new("SELECT target, minute, verdict FROM verdicts WHERE ");
        Self::push_minute_list(&mut previous, chunk);
        previous
    }

    /// Re-decides the verdict of each given target minute from its
    /// buckets and the target's exclusion windows, and moves the hourly
    /// roll-up by exactly the change. The caller holds the targets' locks.
    async fn redecide(
        tx: &mut Tx<'_, DB>,
        minutes: &[(String, Minute)],
        exclusions: &HashMap<String, ExcludedMinutes>,
    ) -> StoreResult<()> {
        let none = ExcludedMinutes::default();
        for chunk in minutes.chunks(MINUTE_CHUNK) {
            let mut decided = Vec::with_capacity(chunk.len());
            for row in Self::bucket_sums_query(chunk)
                .build()
                .persistent(keep_prepared(chunk.len()))
                .fetch_all(tx.on())
                .await?
            {
                let target: String = row.try_get(0)?;
                let minute = Minute(row.try_get(1)?);
                let counts = OutcomeCounts {
                    ok: row.try_get(2)?,
                    fail: row.try_get(3)?,
                    inconclusive: row.try_get(4)?,
                    slow_ok: row.try_get(6)?,
                };
                let probers: i64 = row.try_get(5)?;
                let excluded = exclusions.get(&target).unwrap_or(&none).contains(minute);
                decided.push((
                    target,
                    minute,
                    verdict::decide(counts, excluded),
                    counts,
                    probers,
                ));
            }
            if decided.is_empty() {
                continue;
            }

            let mut previous = HashMap::with_capacity(chunk.len());
            for row in Self::verdicts_query(chunk)
                .build()
                .persistent(keep_prepared(chunk.len()))
                .fetch_all(tx.on())
                .await?
            {
                let word: String = row.try_get(2)?;
                let key: (String, i64) = (row.try_get(0)?, row.try_get(1)?);
                previous.insert(key, word.parse::<Verdict>().map_err(anyhow::Error::msg)?);
            }

            let changed = crate::store::changes::hourly_deltas(
                decided
                    .iter()
                    .map(|(target, minute, new, _, _)| (target.as_str(), *minute, *new)),
                &previous,
            );

            let mut upsert = QueryBuilder::<DB>::new(
                "INSERT INTO verdicts (target, minute, verdict, ok_attempts, fail_attempts, inconclusive_attempts, probers, \
                 slow_ok_attempts) ",
            );
            upsert.push_values(
                &decided,
                |mut row, (target, minute, verdict, counts, probers)| {
                    row.push_bind(target.as_str())
                        .push_bind(minute.0)
                        .push_bind(verdict.as_str())
                        .push_bind(counts.ok)
                        .push_bind(counts.fail)
                        .push_bind(counts.inconclusive)
                        .push_bind(*probers)
                        .push_bind(counts.slow_ok);
                },
            );
            upsert.push(
                " ON CONFLICT (target, minute) DO UPDATE SET verdict = excluded.verdict, \
                 ok_attempts = excluded.ok_attempts, fail_attempts = excluded.fail_attempts, \
                 inconclusive_attempts = excluded.inconclusive_attempts, probers = excluded.probers, \
                 slow_ok_attempts = excluded.slow_ok_attempts",
            );
            upsert
                .build()
                .persistent(keep_prepared(decided.len()))
                .execute(tx.on())
                .await?;

            if changed.is_empty() {
                continue;
            }
            let mut rollup = QueryBuilder::<DB>::new(
                "INSERT INTO verdict_hours (target, hour, available_minutes, failure_minutes) ",
            );
            rollup.push_values(&changed, |mut row, ((target, hour), delta)| {
                row.push_bind(*target)
                    .push_bind(*hour)
                    .push_bind(delta.available)
                    .push_bind(delta.failure);
            });
            rollup.push(
                " ON CONFLICT (target, hour) DO UPDATE SET \
                 available_minutes = verdict_hours.available_minutes + excluded.available_minutes, \
                 failure_minutes = verdict_hours.failure_minutes + excluded.failure_minutes",
            );
            rollup
                .build()
                .persistent(keep_prepared(changed.len()))
                .execute(tx.on())
                .await?;
        }
        Ok(())
    }

    /// Re-decides every stored minute of a target inside `range`.
    async fn redecide_range(
        tx: &mut Tx<'_, DB>,
        target: &str,
        range: MinuteRange,
    ) -> StoreResult<()> {
        let rows = sqlx::query(
            "SELECT minute FROM verdicts WHERE target = $1 AND minute >= $2 AND minute < $3",
        )
        .bind(target)
        .bind(range.start.0)
        .bind(range.end.0)
        .fetch_all(tx.on())
        .await?;
        let minutes = rows
            .iter()
            .map(|r| r.try_get(0).map(|m| (target.to_owned(), Minute(m))))
            .collect::<Result<Vec<_>, _>>()?;
        let exclusions = Self::load_exclusions(tx).await?;
        Self::redecide(tx, &minutes, &exclusions).await
    }

    /// Stores the new attempts of a batch. The daemon's attempts are all
    /// new, so one plain insert usually does; when some were stored
    /// before (a re-import), a savepoint undoes it and only the unseen
    /// ones are inserted.
    async fn store_new<'b>(
        tx: &mut Tx<'_, DB>,
        batch: &'b [Attempt],
    ) -> StoreResult<Vec<&'b Attempt>> {
        let mut all: Vec<&Attempt> = batch.iter().collect();
        let folded = Self::already_folded(tx, &all).await?;
        if !folded.is_empty() {
            all.retain(|a| {
                !(crate::attempt::rollup::is_foldable(a)
                    && folded.contains(&(a.target.clone(), a.minute().0, a.prober.clone())))
            });
            if all.is_empty() {
                return Ok(all);
            }
        }
        sqlx::query("SAVEPOINT improbe_batch")
            .execute(tx.on())
            .await?;
        if Self::insert_attempts(tx, &all, true).await? == all.len() as u64 {
            sqlx::query("RELEASE SAVEPOINT improbe_batch")
                .execute(tx.on())
                .await?;
            return Ok(all);
        }
        sqlx::query("ROLLBACK TO SAVEPOINT improbe_batch")
            .execute(tx.on())
            .await?;
        sqlx::query("RELEASE SAVEPOINT improbe_batch")
            .execute(tx.on())
            .await?;
        let new = Self::unseen(tx, &all).await?;
        if !new.is_empty() {
            Self::insert_attempts(tx, &new, false).await?;
        }
        Ok(new)
    }

    /// Stores a batch's new attempts in their buckets, then either
    /// re-decides their minutes at once under their targets' locks
    /// (`locked`: the targets already locked in this transaction,
    /// `exclusions` read after the last lock was taken), or, with
    /// `locked` `None`, marks them pending. Returns the targets touched.
    async fn store_batch(
        tx: &mut Tx<'_, DB>,
        batch: &[Attempt],
        summary: &mut IngestSummary,
        mut now: Option<(&mut BTreeSet<String>, &mut HashMap<String, ExcludedMinutes>)>,
    ) -> StoreResult<BTreeSet<String>> {
        if let Some((locked, exclusions)) = now.as_mut() {
            // Locked before anything is stored, so a storage round folding
            // these targets cannot delete an attempt this batch finds
            // stored, nor this batch store one the round has folded.
            let batch_targets: BTreeSet<String> = batch.iter().map(|a| a.target.clone()).collect();
            let new_targets: BTreeSet<String> = batch_targets.difference(locked).cloned().collect();
            if !new_targets.is_empty() {
                // Locks taken batch by batch are in one order within a
                // batch only; two imports crossing could deadlock, which
                // PostgreSQL breaks by failing one (it commits nothing,
                // and can be run again).
                Self::lock_targets(tx, &new_targets).await?;
                locked.extend(new_targets);
                **exclusions = Self::load_exclusions(tx).await?;
            }
        }
        let new = Self::store_new(tx, batch).await?;
        summary.attempts += batch.len() as u64;
        summary.inserted += new.len() as u64;
        if new.is_empty() {
            return Ok(BTreeSet::new());
        }
        let rules = Self::load_latency_rules(tx).await?;
        let buckets = crate::store::changes::bucket_counts(new, &rules);
        Self::add_to_buckets(tx, &buckets).await?;
        let touched = crate::store::changes::touched_minutes(&buckets);
        summary.minutes_touched += touched.len() as u64;
        let targets: BTreeSet<String> = touched.iter().map(|(target, _)| target.clone()).collect();
        match now {
            Some((_, exclusions)) => Self::redecide(tx, &touched, exclusions).await?,
            None => Self::mark_pending(tx, &touched).await?,
        }
        Ok(targets)
    }

    /// Stores attempts in one transaction, so either all are stored
    /// or none. `settle_now` (an import): their minutes are
    /// re-decided in the same transaction, under their targets'
    /// locks. Otherwise (the daemon) they are marked pending and no
    /// lock is taken: the round trips (one statement on PostgreSQL)
    /// do not grow with the number of probers or targets.
    async fn store_on(
        &self,
        conn: &mut sqlx::pool::PoolConnection<DB>,
        attempts: &mut AttemptSource<'_>,
        watermark: Option<&ProberMark>,
        settle_now: bool,
    ) -> StoreResult<IngestSummary> {
        let mut first = Vec::new();
        if DB::STORE_AT_ONCE.is_some() && !settle_now {
            for attempt in (&mut *attempts).take(ATTEMPT_BATCH + 1) {
                first.push(attempt?);
            }
            if first.len() <= ATTEMPT_BATCH {
                let days = self.unknown_days(&first);
                if !days.is_empty() {
                    self.ensure_days(&self.pool, &days).await?;
                }
                return self.store_at_once(conn, &first, watermark).await;
            }
        }
        let mut rest = first.into_iter().map(Ok).chain(attempts);
        let attempts: &mut AttemptSource<'_> = &mut rest;
        let mut tx = self.pool.begin_on(conn, DB::BEGIN_WRITE).await?;
        let mut summary = IngestSummary::default();
        let (mut locked, mut exclusions) = (BTreeSet::new(), HashMap::new());
        let mut batch = Vec::with_capacity(ATTEMPT_BATCH);
        loop {
            batch.clear();
            for attempt in (&mut *attempts).take(ATTEMPT_BATCH) {
                // An error drops `tx`, which rolls everything back.
                batch.push(attempt?);
            }
            if batch.is_empty() {
                break;
            }
            let days = self.unknown_days(&batch);
            if !days.is_empty() {
                self.ensure_days(tx.on(), &days).await?;
            }
            let now = settle_now.then_some((&mut locked, &mut exclusions));
            Self::store_batch(&mut tx, &batch, &mut summary, now).await?;
        }
        if let Some(mark) = watermark {
            Self::save_watermark(tx.on(), mark).await?;
        }
        tx.commit().await?;
        Ok(summary)
    }

    /// The days of `batch` whose `attempts` partition this process has not
    /// seen yet, where attempts are partitioned by day.
    fn unknown_days(&self, batch: &[Attempt]) -> Vec<i64> {
        if DB::ENSURE_DAYS.is_none() {
            return Vec::new();
        }
        let days: BTreeSet<i64> = batch
            .iter()
            .map(|a| a.started_at_ms().div_euclid(86_400_000))
            .collect();
        let known = self.known_days.lock().expect("not poisoned");
        days.difference(&known).copied().collect()
    }

    /// Makes sure the partitions of `days` exist, on `executor`: the
    /// transaction that will write them (a transaction routes its rows by
    /// the partitions it saw when it first wrote, so a day attached by
    /// another connection meanwhile would not be seen), or the pool.
    /// Attaching takes a lock that writers do not wait for.
    async fn ensure_days<'e, E: Executor<'e, Database = DB>>(
        &self,
        executor: E,
        days: &[i64],
    ) -> StoreResult<()> {
        let Some(ensure) = DB::ENSURE_DAYS else {
            return Ok(());
        };
        if days.len() > MAX_NEW_DAYS_PER_WRITE {
            return Err(anyhow::anyhow!(
                "these attempts fall on {} UTC days new to the database; one write may add at most \
                 {MAX_NEW_DAYS_PER_WRITE} (each is a partition, locked until the write commits): \
                 import them in parts",
                days.len()
            )
            .into());
        }
        let list = serde_json::to_string(days).map_err(anyhow::Error::from)?;
        sqlx::query(ensure).bind(list).execute(executor).await?;
        self.known_days
            .lock()
            .expect("not poisoned")
            .extend(days.iter().copied());
        Ok(())
    }

    /// [`Self::store_on`] for a batch that fits one statement, on a
    /// backend that can (PostgreSQL: one round trip).
    async fn store_at_once(
        &self,
        conn: &mut sqlx::pool::PoolConnection<DB>,
        batch: &[Attempt],
        watermark: Option<&ProberMark>,
    ) -> StoreResult<IngestSummary> {
        let sql = DB::STORE_AT_ONCE.expect("checked by the caller");
        let write = sqlx::query(sql)
            .bind(crate::store::attempts_json(batch))
            .bind(watermark.map(|m| m.prober.clone()))
            .bind(watermark.map(|m| m.complete_until.timestamp_millis()))
            .bind(watermark.map(|m| m.reported_at.timestamp_millis()));
        // Behind a transaction pooler a statement runs in a transaction
        // (connection.rs): three round trips more than the one it takes
        // otherwise.
        let row = if self.pool.unnamed() {
            let mut tx = self.pool.begin_on(conn, DB::BEGIN_WRITE).await?;
            let row = write.fetch_one(tx.on()).await?;
            tx.commit().await?;
            row
        } else {
            write.fetch_one(&mut **conn).await?
        };
        let inserted: i64 = row.try_get(0)?;
        let minutes: i64 = row.try_get(1)?;
        Ok(IngestSummary {
            attempts: batch.len() as u64,
            inserted: inserted as u64,
            minutes_touched: minutes as u64,
        })
    }

    /// Re-decides the pending minutes of every target whose lock is
    /// free now, leaving the others to the prober that holds them.
    /// Deletes exactly the pending rows it read, so a mark appended
    /// meanwhile is re-decided by the next pass. Returns the minutes
    /// re-decided.
    async fn settle_free_targets(&self) -> StoreResult<u64> {
        // Usually nothing is pending on SQLite: no write transaction
        // (and no write lock) just to find that out.
        let any: Option<i64> = sqlx::query_scalar("SELECT seq FROM pending_minutes LIMIT 1")
            .fetch_optional(&self.readers)
            .await?;
        if any.is_none() {
            return Ok(0);
        }
        let mut tx = self.begin_write().await?;
        let locked: Vec<String> = sqlx::query_scalar(DB::TRY_LOCK_PENDING_TARGETS)
            .fetch_all(tx.on())
            .await?;
        let mut seqs = Vec::new();
        let mut minutes = BTreeSet::new();
        for chunk in locked.chunks(MINUTE_CHUNK) {
            let mut pending = QueryBuilder::<DB>::new(
                "SELECT seq, target, minute FROM pending_minutes WHERE target IN (",
            );
            let mut list = pending.separated(", ");
            for target in chunk {
                list.push_bind(target.clone());
            }
            pending.push(")");
            for row in pending
                .build()
                .persistent(keep_prepared(chunk.len()))
                .fetch_all(tx.on())
                .await?
            {
                seqs.push(row.try_get::<i64, _>(0)?);
                minutes.insert((row.try_get::<String, _>(1)?, Minute(row.try_get(2)?)));
            }
        }
        if seqs.is_empty() {
            tx.commit().await?;
            return Ok(0);
        }
        let minutes: Vec<(String, Minute)> = minutes.into_iter().collect();
        let exclusions = Self::load_exclusions(&mut tx).await?;
        Self::redecide(&mut tx, &minutes, &exclusions).await?;
        for chunk in seqs.chunks(ATTEMPT_BATCH) {
            let mut delete = QueryBuilder::<DB>::new("DELETE FROM pending_minutes WHERE seq IN (");
            let mut list = delete.separated(", ");
            for seq in chunk {
                list.push_bind(*seq);
            }
            delete.push(")");
            delete
                .build()
                .persistent(keep_prepared(chunk.len()))
                .execute(tx.on())
                .await?;
        }
        tx.commit().await?;
        Ok(minutes.len() as u64)
    }

    /// Hands the attempts of `target` within `range` to `visit`, in order
    /// (start, prober, kind), streamed from `executor`.
    async fn visit_attempts_on<'e, E: Executor<'e, Database = DB>>(
        executor: E,
        target: &str,
        range: MinuteRange,
        visit: &mut (dyn FnMut(Attempt) + Send),
    ) -> StoreResult<u64> {
        use futures_util::TryStreamExt;
        let mut rows = sqlx::query(
            "SELECT prober, kind, started_at_ms, latency_ms, outcome, http_status, error_code, error, reason, \
             delivery, delivered_ms \
             FROM attempts WHERE target = $1 AND started_at_ms >= $2 AND started_at_ms < $3 \
             ORDER BY started_at_ms, prober, kind",
        )
        .bind(target)
        .bind(range.start.0 * 60_000)
        .bind(range.end.0 * 60_000)
        .fetch(executor);
        let mut visited = 0;
        while let Some(row) = rows.try_next().await? {
            let kind: i16 = row.try_get("kind")?;
            let outcome: i16 = row.try_get("outcome")?;
            let delivered_ms: Option<i64> = row.try_get("delivered_ms")?;
            visit(Attempt {
                target: target.to_owned(),
                prober: row.try_get("prober")?,
                kind: Kind::from_code(kind).map_err(anyhow::Error::from)?,
                started_at: millis_to_instant(row.try_get("started_at_ms")?)?,
                latency_ms: row.try_get("latency_ms")?,
                outcome: Outcome::from_code(outcome).map_err(anyhow::Error::from)?,
                http_status: row.try_get::<Option<i32>, _>("http_status")?,
                error_code: row.try_get("error_code")?,
                error: row.try_get("error")?,
                reason: row
                    .try_get::<Option<String>, _>("reason")?
                    .and_then(|word| InconclusiveReason::from_stored(&word)),
                delivery: row
                    .try_get::<Option<i16>, _>("delivery")?
                    .map(|code| Delivery::from_code(code, delivered_ms))
                    .transpose()
                    .map_err(anyhow::Error::from)?,
            });
            visited += 1;
        }
        Ok(visited)
    }

    /// [`Self::store_on`] on a connection of its own; a connection
    /// that failed a write may be left unusable (SQLite after an I/O
    /// error keeps failing), so it is replaced.
    async fn store_attempts_from(
        &self,
        attempts: &mut AttemptSource<'_>,
        watermark: Option<&ProberMark>,
        settle_now: bool,
    ) -> StoreResult<IngestSummary> {
        let mut conn = self.pool.acquire().await?;
        let result = self
            .store_on(&mut conn, attempts, watermark, settle_now)
            .await;
        if result.is_err() {
            conn.close_on_drop();
            // A day partition dropped by retention meanwhile is created
            // again on the next try.
            self.known_days.lock().expect("not poisoned").clear();
        }
        result
    }
}

#[async_trait]
impl<DB> Store for SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Connection: Migrate,
    DB::Arguments: IntoArguments<DB>,
    i64: Value<DB>,
    i16: Value<DB>,
    Option<i16>: Value<DB>,
    String: Value<DB>,
    Vec<u8>: Value<DB>,
    Option<i32>: Value<DB>,
    Option<i64>: Value<DB>,
    Option<String>: Value<DB>,
    for<'a> &'a str: Type<DB> + Encode<'a, DB> + ColumnIndex<DB::Row>,
    for<'a> Option<&'a str>: Type<DB> + Encode<'a, DB>,
    for<'a> &'a [u8]: Type<DB> + Encode<'a, DB> + Decode<'a, DB>,
    usize: ColumnIndex<DB::Row>,
{
    fn backend(&self) -> &'static str {
        DB::BACKEND
    }

    async fn migrate(&self) -> StoreResult<()> {
        let migrator = DB::migrator();
        // Running the migrator takes a lock every prober waits for in
        // turn, even with nothing to do: a fleet restarting together
        // would queue for it across the distance. One read first says
        // whether there is anything to do (the table is absent on a
        // new database: then there is).
        let applied: Option<Vec<i64>> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.pool)
                .await
                .ok();
        if let Some(applied) = applied {
            let applied: HashSet<i64> = applied.into_iter().collect();
            if migrator.iter().all(|m| applied.contains(&m.version)) {
                return Ok(());
            }
        }
        let Some(lock) = DB::MIGRATION_LOCK else {
            migrator.run(self.pool.pool()).await?;
            return Ok(());
        };
        // All in one transaction, under a transaction-scoped lock: sqlx's
        // own lock is a session lock, which a pooler in transaction mode
        // would leave on whichever server connection took it.
        let mut conn = self.pool.acquire().await?;
        let result = async {
            let mut tx = self.pool.begin_on(&mut conn, DB::BEGIN_WRITE).await?;
            sqlx::query(lock).execute(tx.on()).await?;
            migrator.run_direct(None, tx.connection(), false).await?;
            if let (true, Some(forget)) = (self.pool.unnamed(), DB::FORGET_PREPARED) {
                // The migrator prepares named statements: gone with the
                // transaction's server connection's, and with this
                // connection, which believes they exist.
                tx.connection().execute(forget).await?;
            }
            tx.commit().await?;
            StoreResult::Ok(())
        }
        .await;
        if self.pool.unnamed() {
            conn.close_on_drop();
        }
        result
    }

    async fn ingest(&self, attempts: &mut AttemptSource<'_>) -> StoreResult<IngestSummary> {
        self.store_attempts_from(attempts, None, true).await
    }

    async fn store_attempts(
        &self,
        attempts: &[Attempt],
        watermark: Option<&ProberMark>,
    ) -> StoreResult<IngestSummary> {
        match (attempts.is_empty(), watermark) {
            (true, None) => Ok(IngestSummary::default()),
            (true, Some(mark)) => {
                // One statement, no transaction: one round trip.
                Self::save_watermark(&self.pool, mark).await?;
                Ok(IngestSummary::default())
            }
            (false, _) => {
                let mut source = attempts.iter().cloned().map(Ok);
                self.store_attempts_from(&mut source, watermark, !DB::DEFER_REDECISION)
                    .await
            }
        }
    }

    async fn settle_pending(&self) -> StoreResult<u64> {
        self.settle_free_targets().await
    }

    async fn apply_latency_rules(
        &self,
        wanted: &BTreeMap<String, i64>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<String>> {
        // Without a latency rule in the config there is nothing to
        // record (rows of earlier rules stay), so no query at all.
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let stored: BTreeMap<String, i64> =
            sqlx::query("SELECT target, slow_after_ms FROM latency_rules")
                .fetch_all(&self.readers)
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<_, sqlx::Error>>()?;
        let changed: BTreeSet<String> = wanted
            .iter()
            .filter(|(target, ms)| stored.get(*target) != Some(ms))
            .map(|(target, _)| target.clone())
            .collect();
        if changed.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_write().await?;
        Self::lock_targets(&mut tx, &changed).await?;
        for target in &changed {
            let slow_after_ms = wanted[target];
            sqlx::query(
                "INSERT INTO latency_rules (target, slow_after_ms, recorded_at_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (target) DO UPDATE SET slow_after_ms = excluded.slow_after_ms, \
                 recorded_at_ms = excluded.recorded_at_ms",
            )
            .bind(target)
            .bind(slow_after_ms)
            .bind(now.timestamp_millis())
            .execute(tx.on())
            .await?;
            Self::recount_slow(&mut tx, target, slow_after_ms).await?;
        }
        tx.commit().await?;
        Ok(changed.into_iter().collect())
    }

    async fn settlement_facts(&self) -> StoreResult<SettlementFacts> {
        let rows = sqlx::query("SELECT prober, complete_until_ms, reported_at_ms FROM prober_watermarks ORDER BY prober")
            .fetch_all(&self.readers)
            .await?;
        let mut marks = Vec::with_capacity(rows.len());
        for r in rows {
            marks.push(ProberMark {
                prober: r.try_get(0)?,
                complete_until: millis_to_instant(r.try_get(1)?)?,
                reported_at: millis_to_instant(r.try_get(2)?)?,
            });
        }
        let earliest_pending: Option<i64> =
            sqlx::query_scalar("SELECT MIN(minute) FROM pending_minutes")
                .fetch_one(&self.readers)
                .await?;
        Ok(SettlementFacts {
            marks,
            earliest_pending: earliest_pending.map(Minute),
        })
    }

    async fn minute_counts_at(&self, minute: Minute) -> StoreResult<Vec<(String, OutcomeCounts)>> {
        let rows = sqlx::query(
            "SELECT target, ok_attempts, fail_attempts, inconclusive_attempts, slow_ok_attempts FROM verdicts \
             WHERE minute = $1 ORDER BY target",
        )
        .bind(minute.0)
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|r| {
                let counts = OutcomeCounts {
                    ok: r.try_get(1)?,
                    fail: r.try_get(2)?,
                    inconclusive: r.try_get(3)?,
                    slow_ok: r.try_get(4)?,
                };
                Ok((r.try_get(0)?, counts))
            })
            .collect()
    }

    async fn sync_config_exclusions(
        &self,
        wanted: &[ConfiguredExclusion],
        recorded_by: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        Self::lock_exclusions(&mut tx).await?;
        let rows = sqlx::query(
            "SELECT id, target, start_ms, end_ms, reason, announced_at_ms FROM exclusions WHERE source = 'config'",
        )
        .fetch_all(tx.on())
        .await?;
        let mut stored = Vec::with_capacity(rows.len());
        for row in rows {
            let key = (
                row.try_get(1)?,
                row.try_get(2)?,
                row.try_get(3)?,
                row.try_get(4)?,
                row.try_get(5)?,
            );
            stored.push((row.try_get::<i64, _>(0)?, key));
        }
        let (delete, insert) = crate::store::changes::config_window_changes(stored, wanted);
        let targets: BTreeSet<String> = delete
            .iter()
            .map(|(_, key)| key.0.clone())
            .chain(insert.iter().map(|e| e.target.clone()))
            .collect();
        Self::lock_targets(&mut tx, &targets).await?;
        let mut changed: Vec<(String, ExclusionWindow)> = Vec::new();
        for (id, (target, start_ms, end_ms, _, _)) in delete {
            sqlx::query("DELETE FROM exclusions WHERE id = $1")
                .bind(id)
                .execute(tx.on())
                .await?;
            changed.push((
                target,
                ExclusionWindow {
                    start: millis_to_instant(start_ms)?,
                    end: millis_to_instant(end_ms)?,
                },
            ));
        }
        for exclusion in insert {
            sqlx::query(
                "INSERT INTO exclusions (target, start_ms, end_ms, reason, announced_at_ms, source, recorded_at_ms, recorded_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&exclusion.target)
            .bind(exclusion.window.start.timestamp_millis())
            .bind(exclusion.window.end.timestamp_millis())
            .bind(&exclusion.reason)
            .bind(exclusion.announced_at.map(|a| a.timestamp_millis()))
            .bind(ExclusionSource::Config.as_str())
            .bind(now.timestamp_millis())
            .bind(recorded_by)
            .execute(tx.on())
            .await?;
            changed.push((exclusion.target.clone(), exclusion.window));
        }
        for (target, window) in changed {
            Self::redecide_range(&mut tx, &target, window.minutes()).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn add_exclusion(&self, e: &NewExclusion) -> StoreResult<i64> {
        let mut tx = self.begin_write().await?;
        Self::lock_exclusions(&mut tx).await?;
        Self::lock_targets(&mut tx, &BTreeSet::from([e.target.clone()])).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO exclusions (target, start_ms, end_ms, reason, announced_at_ms, source, recorded_at_ms, recorded_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(&e.target)
        .bind(e.window.start.timestamp_millis())
        .bind(e.window.end.timestamp_millis())
        .bind(&e.reason)
        .bind(e.announced_at.map(|a| a.timestamp_millis()))
        .bind(ExclusionSource::Cli.as_str())
        .bind(e.recorded_at.timestamp_millis())
        .bind(&e.recorded_by)
        .fetch_one(tx.on())
        .await?;
        Self::redecide_range(&mut tx, &e.target, e.window.minutes()).await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn remove_exclusion(&self, id: i64) -> StoreResult<Option<StoredExclusion>> {
        let Some(found) = self
            .exclusions(None)
            .await?
            .into_iter()
            .find(|e| e.id == id)
        else {
            return Ok(None);
        };
        if found.source != ExclusionSource::Cli {
            return Err(anyhow::anyhow!(
                "exclusion {id} comes from the config file; remove it from [[exclusions]] there"
            )
            .into());
        }
        let mut tx = self.begin_write().await?;
        Self::lock_exclusions(&mut tx).await?;
        Self::lock_targets(&mut tx, &BTreeSet::from([found.target.clone()])).await?;
        sqlx::query("DELETE FROM exclusions WHERE id = $1")
            .bind(id)
            .execute(tx.on())
            .await?;
        Self::redecide_range(&mut tx, &found.target, found.window.minutes()).await?;
        tx.commit().await?;
        Ok(Some(found))
    }
    async fn exclusions(&self, target: Option<&str>) -> StoreResult<Vec<StoredExclusion>> {
        let rows = sqlx::query(
            "SELECT id, target, start_ms, end_ms, reason, announced_at_ms, source, recorded_at_ms, recorded_by \
             FROM exclusions WHERE $1 IS NULL OR target = $1 ORDER BY start_ms, id",
        )
        .bind(target)
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|r| {
                let source: String = r.try_get(6)?;
                Ok(StoredExclusion {
                    id: r.try_get(0)?,
                    target: r.try_get(1)?,
                    window: ExclusionWindow {
                        start: millis_to_instant(r.try_get(2)?)?,
                        end: millis_to_instant(r.try_get(3)?)?,
                    },
                    reason: r.try_get(4)?,
                    announced_at: r
                        .try_get::<Option<i64>, _>(5)?
                        .map(millis_to_instant)
                        .transpose()?,
                    source: ExclusionSource::parse(&source),
                    recorded_at: millis_to_instant(r.try_get(7)?)?,
                    recorded_by: r.try_get(8)?,
                })
            })
            .collect()
    }

    async fn observed_minutes(
        &self,
        target: &str,
        range: MinuteRange,
    ) -> StoreResult<ObservedMinutes> {
        let (hours, [head, tail]) = split_by_hours(range);
        let mut observed = ObservedMinutes::default();
        if !hours.is_empty() {
            let row = sqlx::query(
                "SELECT CAST(COALESCE(SUM(available_minutes), 0) AS BIGINT), CAST(COALESCE(SUM(failure_minutes), 0) AS BIGINT) \
                 FROM verdict_hours WHERE target = $1 AND hour >= $2 AND hour < $3",
            )
            .bind(target)
            .bind(hours.start)
            .bind(hours.end)
            .fetch_one(&self.readers)
            .await?;
            observed.available += row.try_get::<i64, _>(0)?;
            observed.failure += row.try_get::<i64, _>(1)?;
        }
        // One range per query: an OR of two ranges defeats the index.
        for edge in [head, tail].into_iter().filter(|e| !e.is_empty()) {
            let rows = sqlx::query(
                "SELECT verdict, CAST(COUNT(*) AS BIGINT) FROM verdicts \
                 WHERE target = $1 AND minute >= $2 AND minute < $3 GROUP BY verdict",
            )
            .bind(target)
            .bind(edge.start.0)
            .bind(edge.end.0)
            .fetch_all(&self.readers)
            .await?;
            for row in rows {
                let word: String = row.try_get(0)?;
                let count: i64 = row.try_get(1)?;
                observed.add(word.parse::<Verdict>().map_err(anyhow::Error::msg)?, count);
            }
        }
        Ok(observed)
    }

    async fn minute_verdicts(
        &self,
        target: &str,
        range: MinuteRange,
    ) -> StoreResult<Vec<MinuteVerdict>> {
        let rows = sqlx::query(
            "SELECT minute, verdict, ok_attempts, fail_attempts, inconclusive_attempts, probers, slow_ok_attempts FROM verdicts \
             WHERE target = $1 AND minute >= $2 AND minute < $3 ORDER BY minute",
        )
        .bind(target)
        .bind(range.start.0)
        .bind(range.end.0)
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|r| {
                let word: String = r.try_get(1)?;
                Ok(MinuteVerdict {
                    minute: Minute(r.try_get(0)?),
                    verdict: word.parse().map_err(anyhow::Error::msg)?,
                    counts: OutcomeCounts {
                        ok: r.try_get(2)?,
                        fail: r.try_get(3)?,
                        inconclusive: r.try_get(4)?,
                        slow_ok: r.try_get(6)?,
                    },
                    probers: r.try_get(5)?,
                })
            })
            .collect()
    }

    async fn save_service_months(
        &self,
        statements: &[MonthStatement],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
        for s in statements {
            sqlx::query(DB::SAVE_SERVICE_MONTH)
                .bind(&s.target)
                .bind(i64::from(s.month.index))
                .bind(s.month.first_day.to_string())
                .bind(s.month.last_day.to_string())
                .bind(s.month.start.to_rfc3339())
                .bind(s.month.end.to_rfc3339())
                .bind(s.total_minutes)
                .bind(s.available_minutes)
                .bind(s.failure_minutes)
                .bind(s.excluded_minutes)
                .bind(s.no_data_minutes)
                .bind(&s.availability_percent)
                .bind(i64::from(s.meets_commitment))
                .bind(i64::from(s.credit_percent))
                .bind(tiers::format_money(s.credit_amount))
                .bind(&s.currency)
                .bind(s.claim.opens.to_rfc3339())
                .bind(s.claim.deadline.to_rfc3339())
                .bind(i64::from(s.complete))
                .bind(now.to_rfc3339())
                .bind(&s.contract)
                .bind(s.unit_minutes)
                .bind(s.total_units())
                .bind(s.down_units())
                .bind(s.excluded_units())
                .bind(s.no_data_units())
                .bind(s.available_units())
                .execute(tx.on())
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.readers).await?;
        Ok(())
    }

    async fn record_heartbeats(&self, beats: &[Heartbeat]) -> StoreResult<()> {
        let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
        for beat in beats {
            sqlx::query(
                "INSERT INTO prober_heartbeats (prober, minute, scheduled, started, skipped, finished) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (prober, minute) DO UPDATE SET \
                 scheduled = prober_heartbeats.scheduled + excluded.scheduled, \
                 started = prober_heartbeats.started + excluded.started, \
                 skipped = prober_heartbeats.skipped + excluded.skipped, \
                 finished = prober_heartbeats.finished + excluded.finished",
            )
            .bind(&beat.prober)
            .bind(beat.minute.0)
            .bind(beat.scheduled)
            .bind(beat.started)
            .bind(beat.skipped)
            .bind(beat.finished)
            .execute(tx.on())
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn heartbeats(&self, range: MinuteRange) -> StoreResult<Vec<Heartbeat>> {
        let rows: Vec<(String, i64, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT prober, minute, scheduled, started, skipped, finished FROM prober_heartbeats \
             WHERE minute >= $1 AND minute < $2 ORDER BY minute, prober",
        )
        .bind(range.start.0)
        .bind(range.end.0)
        .fetch_all(&self.readers)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(prober, minute, scheduled, started, skipped, finished)| Heartbeat {
                    prober,
                    minute: Minute(minute),
                    scheduled,
                    started,
                    skipped,
                    finished,
                },
            )
            .collect())
    }

    async fn visit_attempts(
        &self,
        target: &str,
        range: MinuteRange,
        visit: &mut (dyn FnMut(Attempt) + Send),
    ) -> StoreResult<u64> {
        // In a transaction, so that the rows stream from one server
        // connection behind a transaction pooler too (`connection.rs`).
        let mut tx = self.readers.begin_with(DB::BEGIN_SNAPSHOT).await?;
        let visited = Self::visit_attempts_on(tx.on(), target, range, visit).await?;
        tx.commit().await?;
        Ok(visited)
    }

    async fn visit_evidence(
        &self,
        target: &str,
        range: MinuteRange,
        visit: &mut (dyn FnMut(Attempt) + Send),
    ) -> StoreResult<Vec<(RollupKey, Rollup)>> {
        // One snapshot: a storage round folding these minutes meanwhile
        // cannot make their successes show twice or not at all.
        let mut tx = self.readers.begin_with(DB::BEGIN_SNAPSHOT).await?;
        let rollups = Self::read_rollups(tx.on(), target, range).await?;
        Self::visit_attempts_on(tx.on(), target, range, visit).await?;
        tx.commit().await?;
        Ok(rollups)
    }

    async fn prune_attempts(&self, target: &str, before: DateTime<Utc>) -> StoreResult<u64> {
        let done = self
            .compact_all(None, &[(target.to_owned(), before)])
            .await?;
        Ok(done.pruned)
    }

    async fn compact(
        &self,
        fold_before: Option<Minute>,
        prune: &[(String, DateTime<Utc>)],
    ) -> StoreResult<CompactSummary> {
        self.compact_all(fold_before, prune).await
    }

    async fn storage_use(&self, since: DateTime<Utc>) -> StoreResult<StorageUse> {
        let (tables, database_bytes) = self.table_use(since).await?;
        Ok(StorageUse {
            tables,
            database_bytes,
        })
    }

    async fn database_bytes(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(DB::DATABASE_BYTES)
            .fetch_one(&self.readers)
            .await?)
    }

    async fn reclaim_space(&self) -> StoreResult<std::time::Duration> {
        self.reclaim().await
    }

    async fn attempt_count(&self) -> StoreResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM attempts")
                .fetch_one(&self.readers)
                .await?,
        )
    }

    async fn enqueue_notifications(&self, rows: &[NewNotification]) -> StoreResult<u64> {
        if rows.is_empty() {
            return Ok(0);
        }
        let mut insert = QueryBuilder::<DB>::new(
            "INSERT INTO notifications (event_key, channel, target, event, payload, decided_by, created_at_ms, next_try_ms) ",
        );
        insert.push_values(rows, |mut row, n| {
            let at = n.created_at.timestamp_millis();
            row.push_bind(n.event_key.clone())
                .push_bind(n.channel.clone())
                .push_bind(n.target.clone())
                .push_bind(n.event.clone())
                .push_bind(n.payload.clone())
                .push_bind(n.decided_by.clone())
                .push_bind(at)
                .push_bind(at);
        });
        insert.push(" ON CONFLICT (event_key, channel) DO NOTHING");
        Ok(insert
            .build()
            .persistent(keep_prepared(rows.len()))
            .execute(&self.pool)
            .await
            .map(DB::rows_affected)?)
    }

    async fn claim_notification(
        &self,
        channel: &str,
        prober: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<ClaimedNotification>> {
        // The row is re-checked by the UPDATE itself, so of several
        // probers racing for it exactly one gets it.
        let row: Option<(i64, String, String, i64)> = sqlx::query_as(
            "UPDATE notifications SET claimed_by = $1, claimed_until_ms = $2, tries = tries + 1 \
             WHERE id = (SELECT id FROM notifications WHERE channel = $3 AND sent_at_ms IS NULL \
             AND gave_up_at_ms IS NULL ORDER BY id LIMIT 1) \
             AND sent_at_ms IS NULL AND next_try_ms <= $4 AND (claimed_until_ms IS NULL OR claimed_until_ms < $4) \
             RETURNING id, event_key, payload, CAST(tries AS BIGINT)",
        )
        .bind(prober)
        .bind(lease_until.timestamp_millis())
        .bind(channel)
        .bind(now.timestamp_millis())
        .fetch_optional(&self.pool)
        .await?;
        Ok(
            row.map(|(id, event_key, payload, tries)| ClaimedNotification {
                id,
                event_key,
                payload,
                tries,
            }),
        )
    }

    async fn notification_sent(
        &self,
        id: i64,
        prober: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let updated = sqlx::query(
            "UPDATE notifications SET sent_at_ms = $1, sent_by = $2, claimed_by = NULL, claimed_until_ms = NULL, \
             last_error = NULL WHERE id = $3 AND claimed_by = $2 AND sent_at_ms IS NULL",
        )
        .bind(at.timestamp_millis())
        .bind(prober)
        .bind(id)
        .execute(&self.pool)
        .await
            .map(DB::rows_affected)?;
        Ok(updated == 1)
    }

    async fn notification_failed(
        &self,
        id: i64,
        prober: &str,
        error: &str,
        after: AfterFailure,
    ) -> StoreResult<()> {
        let (next_try, gave_up) = match after {
            AfterFailure::RetryAt(at) => (at, None),
            AfterFailure::GiveUp(at) => (at, Some(at.timestamp_millis())),
        };
        sqlx::query(
            "UPDATE notifications SET claimed_by = NULL, claimed_until_ms = NULL, last_error = $1, next_try_ms = $2, \
             gave_up_at_ms = $5 WHERE id = $3 AND claimed_by = $4",
        )
        .bind(error)
        .bind(next_try.timestamp_millis())
        .bind(id)
        .bind(prober)
        .bind(gave_up)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn release_notifications(&self, prober: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE notifications SET claimed_by = NULL, claimed_until_ms = NULL \
             WHERE claimed_by = $1 AND sent_at_ms IS NULL",
        )
        .bind(prober)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn pending_notifications(&self) -> StoreResult<Vec<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT channel, CAST(COUNT(*) AS BIGINT) FROM notifications WHERE sent_at_ms IS NULL AND gave_up_at_ms IS NULL \
             GROUP BY channel ORDER BY channel",
        )
        .fetch_all(&self.readers)
        .await?)
    }

    async fn notifications(&self, channel: Option<&str>) -> StoreResult<Vec<StoredNotification>> {
        let rows = sqlx::query(
            "SELECT id, event_key, channel, target, event, payload, CAST(tries AS BIGINT) AS tries, sent_at_ms, \
             sent_by, gave_up_at_ms, last_error FROM notifications WHERE (CAST($1 AS TEXT) IS NULL OR channel = CAST($1 AS TEXT)) ORDER BY id",
        )
        .bind(channel)
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredNotification {
                    id: r.try_get("id")?,
                    event_key: r.try_get("event_key")?,
                    channel: r.try_get("channel")?,
                    target: r.try_get("target")?,
                    event: r.try_get("event")?,
                    payload: r.try_get("payload")?,
                    tries: r.try_get("tries")?,
                    sent_at: r
                        .try_get::<Option<i64>, _>("sent_at_ms")?
                        .map(millis_to_instant)
                        .transpose()?,
                    sent_by: r.try_get("sent_by")?,
                    gave_up_at: r
                        .try_get::<Option<i64>, _>("gave_up_at_ms")?
                        .map(millis_to_instant)
                        .transpose()?,
                    last_error: r.try_get("last_error")?,
                })
            })
            .collect()
    }
}
