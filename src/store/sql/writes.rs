//! Writing attempts: the batch's new ones inserted, what they add to their
//! minute buckets, their minutes marked pending, the prober's watermark;
//! on PostgreSQL in one statement, with day partitions made as days arrive.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use sqlx::{QueryBuilder, Row};

use crate::attempt::{Attempt, Delivery, InconclusiveReason};
use crate::minute::Minute;
use crate::sla::ExcludedMinutes;
use crate::store::{
    ATTEMPT_BATCH, AttemptSource, IngestSummary, MINUTE_CHUNK, ProberMark, StoreResult,
    keep_prepared,
};
use crate::verdict::OutcomeCounts;

use super::{NameIds, NameTable};
use crate::store::connection::Tx;

/// Buckets per upsert: 7 columns each, well under both backends' limits.
const BUCKET_BATCH: usize = 500;

sql_impl! {
    /// The attempts of `batch` not stored yet (nor repeated earlier in the
    /// batch). Runs inside the savepoint of [`Self::store_new`]: a key
    /// that another transaction inserts meanwhile makes the insert
    /// fail, which fails the whole write (nothing is counted twice).
    pub(super) async fn unseen<'b>(
        tx: &mut Tx<'_, DB>,
        ids: &NameIds,
        batch: &[&'b Attempt],
    ) -> StoreResult<Vec<&'b Attempt>> {
        let mut spans: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
        for a in batch {
            let ms = a.started_at_ms();
            let span = spans.entry(a.target.as_str()).or_insert((ms, ms));
            *span = (span.0.min(ms), span.1.max(ms));
        }
        let mut stored: HashMap<&str, HashSet<(i64, i16, i64)>> = HashMap::new();
        for (target, (first, last)) in spans {
            let rows = sqlx::query(concat!(
                "SELECT CAST(prober_id AS BIGINT), kind, started_at_ms FROM attempts WHERE target_id = ",
                target_id!("$1"),
                " AND started_at_ms >= $2 AND started_at_ms <= $3"
            ))
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
        let mut new = Vec::new();
        for a in batch.iter().copied() {
            let key = (a.target.as_str(), a.prober.as_str(), a.kind, a.started_at_ms());
            let stored_key = (ids.prober(&a.prober)?, a.kind.code(), key.3);
            let known = stored
                .get(key.0)
                .is_some_and(|keys| keys.contains(&stored_key));
            if !known && seen.insert(key) {
                new.push(a);
            }
        }
        Ok(new)
    }

    /// Inserts attempts; returns how many rows were written. With
    /// `skip_stored`, attempts already stored are skipped, not errors.
    pub(super) async fn insert_attempts(
        tx: &mut Tx<'_, DB>,
        attempts: &[&Attempt],
        skip_stored: bool,
        ids: &NameIds,
    ) -> StoreResult<u64> {
        let keys = attempts
            .iter()
            .map(|a| Ok((ids.target(&a.target)?, ids.prober(&a.prober)?)))
            .collect::<StoreResult<Vec<(i64, i64)>>>()?;
        let mut insert = QueryBuilder::<DB>::new(
            "INSERT INTO attempts (target_id, prober_id, kind, started_at_ms, latency_ms, outcome, \
             http_status, error_code, error, reason, delivery, delivered_ms) ",
        );
        insert.push_values(attempts.iter().zip(&keys), |mut row, (a, (target_id, prober_id))| {
            row.push_bind(*target_id)
                .push_bind(*prober_id)
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
            insert.push(" ON CONFLICT (target_id, started_at_ms, prober_id, kind) DO NOTHING");
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
    pub(super) async fn add_to_buckets(
        tx: &mut Tx<'_, DB>,
        buckets: &BTreeMap<(String, Minute, String), OutcomeCounts>,
        ids: &NameIds,
    ) -> StoreResult<()> {
        if buckets.is_empty() {
            return Ok(());
        }
        let rows = buckets
            .iter()
            .map(|((target, minute, prober), counts)| Ok(((ids.target(target)?, ids.prober(prober)?, *minute), *counts)))
            .collect::<StoreResult<Vec<_>>>()?;
        Self::add_bucket_counts(tx, &rows).await
    }

    /// Adds counts to the bucket rows keyed (target id, prober id,
    /// minute), creating those missing.
    pub(super) async fn add_bucket_counts(
        tx: &mut Tx<'_, DB>,
        rows: &[((i64, i64, Minute), OutcomeCounts)],
    ) -> StoreResult<()> {
        for chunk in rows.chunks(BUCKET_BATCH) {
            let mut upsert = QueryBuilder::<DB>::new(
                "INSERT INTO minute_buckets (target_id, minute, prober_id, ok_attempts, fail_attempts, \
                 inconclusive_attempts, slow_ok_attempts) ",
            );
            upsert.push_values(chunk, |mut row, ((target_id, prober_id, minute), counts)| {
                row.push_bind(*target_id)
                    .push_bind(minute.0)
                    .push_bind(*prober_id)
                    .push_bind(counts.ok)
                    .push_bind(counts.fail)
                    .push_bind(counts.inconclusive)
                    .push_bind(counts.slow_ok);
            });
            upsert.push(
                " ON CONFLICT (target_id, minute, prober_id) DO UPDATE SET \
                 ok_attempts = minute_buckets.ok_attempts + excluded.ok_attempts, \
                 fail_attempts = minute_buckets.fail_attempts + excluded.fail_attempts, \
                 inconclusive_attempts = minute_buckets.inconclusive_attempts + excluded.inconclusive_attempts, \
                 slow_ok_attempts = minute_buckets.slow_ok_attempts + excluded.slow_ok_attempts",
            );
            upsert
                .build()
                .persistent(keep_prepared(chunk.len()))
                .execute(tx.on())
                .await?;
        }
        Ok(())
    }

    /// Appends minutes whose buckets changed to `pending_minutes`:
    /// plain inserts, which never wait on another prober's rows.
    pub(super) async fn mark_pending(tx: &mut Tx<'_, DB>, minutes: &[(String, Minute)]) -> StoreResult<()> {
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

    pub(super) async fn save_watermark<'e, E: sqlx::Executor<'e, Database = DB>>(
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

    /// Stores the new attempts of a batch. The daemon's attempts are all
    /// new, so one plain insert usually does; when some were stored
    /// before (a re-import), a savepoint undoes it and only the unseen
    /// ones are inserted.
    pub(super) async fn store_new<'b>(
        tx: &mut Tx<'_, DB>,
        batch: &'b [Attempt],
        ids: &NameIds,
    ) -> StoreResult<Vec<&'b Attempt>> {
        let mut all: Vec<&Attempt> = batch.iter().collect();
        let folded = Self::already_folded(tx, ids, &all).await?;
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
        if Self::insert_attempts(tx, &all, true, ids).await? == all.len() as u64 {
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
        let new = Self::unseen(tx, ids, &all).await?;
        if !new.is_empty() {
            Self::insert_attempts(tx, &new, false, ids).await?;
        }
        Ok(new)
    }

    /// Stores a batch's new attempts in their buckets, then either
    /// re-decides their minutes at once under their targets' locks
    /// (`locked`: the targets already locked in this transaction,
    /// `exclusions` read after the last lock was taken), or, with
    /// `locked` `None`, marks them pending. Returns the targets touched.
    pub(super) async fn store_batch(
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
        let ids = Self::name_ids(tx.on()).await?;
        let new = Self::store_new(tx, batch, &ids).await?;
        summary.attempts += batch.len() as u64;
        summary.inserted += new.len() as u64;
        if new.is_empty() {
            return Ok(BTreeSet::new());
        }
        let rules = Self::load_latency_rules(tx).await?;
        let buckets = crate::store::changes::bucket_counts(new, &rules);
        Self::add_to_buckets(tx, &buckets, &ids).await?;
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
    pub(super) async fn store_on(
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
                let names = self.unknown_names(&first);
                if !names.is_empty() {
                    for table in NameTable::ALL {
                        Self::add_names(&self.pool, table, &names).await?;
                    }
                    self.names_known(names);
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
        // Known once the transaction that gave them ids commits.
        let mut new_names = BTreeSet::new();
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
            let names = self.unknown_names(&batch);
            for table in NameTable::ALL {
                Self::add_names(tx.on(), table, &names).await?;
            }
            new_names.extend(names);
            let now = settle_now.then_some((&mut locked, &mut exclusions));
            Self::store_batch(&mut tx, &batch, &mut summary, now).await?;
        }
        if let Some(mark) = watermark {
            Self::save_watermark(tx.on(), mark).await?;
        }
        tx.commit().await?;
        self.names_known(new_names);
        Ok(summary)
    }

    /// [`Self::store_on`] for a batch that fits one statement, on a
    /// backend that can (PostgreSQL: one round trip).
    pub(super) async fn store_at_once(
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

    /// [`Self::store_on`] on a connection of its own; a connection
    /// that failed a write may be left unusable (SQLite after an I/O
    /// error keeps failing), so it is replaced.
    pub(super) async fn store_attempts_from(
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
            self.known_names.lock().expect("not poisoned").clear();
            // A day partition dropped by retention meanwhile is created
            // again on the next try.
            self.known_days.lock().expect("not poisoned").clear();
        }
        result
    }

    pub(super) async fn store_attempts(
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
}
