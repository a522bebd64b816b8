//! Folding successes into rollups (kept in the `folded` column of their
//! minute bucket) and pruning, row by row on SQLite; on PostgreSQL a day
//! partition at a time (`days.rs`). docs/operations.md "Retention".

use std::collections::{BTreeMap, BTreeSet};

use sqlx::{ColumnIndex, Decode, QueryBuilder, Row, Type};

use super::NameIds;
use super::rollups::spans_of;
use crate::attempt::rollup::{
    FOLD_SPAN_MINUTES, FoldedSpan, Folder, Rollup, RollupKey, StoredSuccess, encode_folded_span,
    span_start,
};
use crate::attempt::{Delivery, Kind};
use crate::minute::{Minute, MinuteRange};
use crate::store::connection::Tx;
use chrono::{DateTime, Utc};

use crate::store::{CompactSummary, StoreResult, keep_prepared};

/// Minutes of one target folded in one transaction. A slice of a target
/// probed every 5 s holds about 4,300 successes: folding it held SQLite's
/// one writer 30 to 45 ms at most (bench/storage.sh 30 10), so the
/// daemon's writes never wait long behind a storage round.
pub const FOLD_SLICE_MINUTES: i64 = 120;

/// The predicate, in SQL, of the attempts [`is_foldable`] folds.
macro_rules! foldable {
    () => {
        // Codes of migration 0009: outcome 0 ok, delivery 1 missing.
        "outcome = 0 AND (delivery IS NULL OR delivery <> 1)"
    };
}
pub(super) use foldable;

/// The foldable attempts of the target named `$1` that started in
/// `[$2, $3)` milliseconds, as the tail of a statement on `attempts`.
macro_rules! slice_successes {
    () => {
        concat!(
            " FROM attempts WHERE target_id = ",
            target_id!("$1"),
            " AND started_at_ms >= $2 AND started_at_ms < $3 AND ",
            foldable!()
        )
    };
}

/// Buckets per update: 3 columns each, well under both backends' limits.
const ROLLUP_BATCH: usize = 500;

sql_impl! {
    /// The storage round's work on the database: successes before
    /// `fold_before` folded, and the raw attempts (and folded successes) of
    /// each target in `prune` that started before its instant deleted.
    pub(super) async fn compact_all(
        &self,
        fold_before: Option<Minute>,
        prune: &[(String, DateTime<Utc>)],
    ) -> StoreResult<CompactSummary> {
        let mut summary = if DB::REWRITE_DAY.is_some() {
            self.compact_days(fold_before, prune).await?
        } else {
            let mut summary = CompactSummary::default();
            if let Some(before) = fold_before {
                for target in self.stored_targets().await? {
                    self.fold(&target, before, &mut summary).await?;
                }
            }
            for (target, before) in prune {
                summary.pruned += self.delete_before(target, *before).await?;
            }
            summary
        };
        if let Some(before) = fold_before {
            self.pack_settled(before, &mut summary).await?;
        }
        Ok(summary)
    }

    /// The start of the oldest success of `target` at or after `from_ms`
    /// and before `before`, not yet folded.
    pub(super) async fn next_foldable(&self, target: &str, from_ms: i64, before: Minute) -> StoreResult<Option<i64>> {
        Ok(sqlx::query_scalar(concat!(
            "SELECT MIN(started_at_ms) FROM attempts WHERE target_id = ",
            target_id!("$1"),
            " AND started_at_ms >= $2 AND started_at_ms < $3 AND ",
            foldable!()
        ))
        .bind(target)
        .bind(from_ms)
        .bind(before.0 * 60_000)
        .fetch_one(&self.readers)
        .await?)
    }

    /// Folds the successes of `target` that started before `before`, slice
    /// by slice, and moves its fold horizon there. Each slice starts at the
    /// next success to fold: a stretch without any (a prober that was down,
    /// history imported months after it was measured) costs one indexed
    /// read, not a transaction per slice.
    pub(super) async fn fold(
        &self,
        target: &str,
        before: Minute,
        summary: &mut CompactSummary,
    ) -> StoreResult<()> {
        let Some(mut next) = self.next_foldable(target, i64::MIN, before).await? else {
            return Ok(());
        };
        loop {
            let from = Minute::containing_ms(next).0;
            let to = (from + FOLD_SLICE_MINUTES).min(before.0);
            let started = std::time::Instant::now();
            let (folded, rollups) = self
                .fold_slice(target, MinuteRange::new(Minute(from), Minute(to)))
                .await?;
            let took = started.elapsed();
            summary.longest_transaction = summary.longest_transaction.max(took);
            // One writer at a time: the daemon's writes wait for the slice.
            summary.longest_writer_wait = summary.longest_writer_wait.max(took);
            summary.folded += folded;
            summary.rollups += rollups;
            if to >= before.0 {
                return Ok(());
            }
            match self.next_foldable(target, to * 60_000, before).await? {
                Some(started) => next = started,
                None => break,
            }
        }
        // Nothing left to fold before `before`: the horizon moves there.
        let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
        Self::lock_target(&mut tx, target).await?;
        Self::move_horizon(&mut tx, target, before).await?;
        tx.commit().await?;
        Ok(())
    }

    /// One transaction of [`Self::fold`]: the slice's foldable attempts
    /// added to its rollups, then deleted, and the horizon moved to the
    /// slice's end, all or nothing.
    pub(super) async fn fold_slice(&self, target: &str, slice: MinuteRange) -> StoreResult<(u64, u64)> {
        let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
        // Two storage rounds (two probers) folding one target would add
        // the same attempts twice: the target's lock orders them.
        Self::lock_target(&mut tx, target).await?;
        let (from_ms, to_ms) = (slice.start.0 * 60_000, slice.end.0 * 60_000);
        let ids = Self::name_ids(tx.on()).await?;
        let rows = sqlx::query(concat!("SELECT ", success_columns!(), slice_successes!()))
        .bind(target)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(tx.on())
        .await?;
        let mut folder = Folder::default();
        for row in &rows {
            folder.offer_stored(stored_success(row, 0, &ids)?);
        }
        let fresh = folder.into_rollups();
        let rollups = fresh.len() as u64;
        if rollups > 0 {
            Self::add_folded(&mut tx, &ids, target, slice, fresh).await?;
            sqlx::query(concat!("DELETE", slice_successes!()))
            .bind(target)
            .bind(from_ms)
            .bind(to_ms)
            .execute(tx.on())
            .await?;
            Self::repack_evidence(&mut tx, target, from_ms, to_ms).await?;
        }
        Self::move_horizon(&mut tx, target, slice.end).await?;
        tx.commit().await?;
        Ok((rows.len() as u64, rollups))
    }

    /// Writes the attempts left in `[from_ms, to_ms)` of `target` (the
    /// evidence, once its successes are deleted) back in key order: left
    /// where they were, among the deleted successes, their pages stayed a
    /// quarter empty (77 % full against 88 %, SQLite's `dbstat` after
    /// folding `bench/gen_history.py`'s days). Moves about 50 rows an hour.
    pub(super) async fn repack_evidence(
        tx: &mut Tx<'_, DB>,
        target: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> StoreResult<()> {
        sqlx::query("CREATE TEMP TABLE IF NOT EXISTS slice_evidence AS SELECT * FROM attempts LIMIT 0")
            .execute(tx.on())
            .await?;
        for statement in [
            concat!(
                "INSERT INTO slice_evidence SELECT * FROM attempts WHERE target_id = ",
                target_id!("$1"),
                " AND started_at_ms >= $2 AND started_at_ms < $3"
            ),
            concat!(
                "DELETE FROM attempts WHERE target_id = ",
                target_id!("$1"),
                " AND started_at_ms >= $2 AND started_at_ms < $3"
            ),
        ] {
            sqlx::query(statement)
                .bind(target)
                .bind(from_ms)
                .bind(to_ms)
                .execute(tx.on())
                .await?;
        }
        sqlx::query(
            "INSERT INTO attempts SELECT * FROM slice_evidence ORDER BY target_id, started_at_ms, prober_id, kind",
        )
        .execute(tx.on())
        .await?;
        sqlx::query("DELETE FROM slice_evidence").execute(tx.on()).await?;
        Ok(())
    }

    /// Adds freshly folded successes of `target` within `slice` to what
    /// their spans hold folded already, and writes each span they touch
    /// whole.
    pub(super) async fn add_folded(
        tx: &mut Tx<'_, DB>,
        ids: &NameIds,
        target: &str,
        slice: MinuteRange,
        fresh: BTreeMap<RollupKey, Rollup>,
    ) -> StoreResult<()> {
        let spans = spans_of(slice);
        let mut stored: BTreeMap<(Minute, i64), FoldedSpan> = BTreeMap::new();
        for (first, prober_id, folded) in Self::read_folded_spans(tx.on(), target, spans.start, spans.end).await? {
            stored.insert((first, prober_id), folded);
        }
        let mut touched = BTreeSet::new();
        for (key, rollup) in fresh {
            let first = span_start(key.minute);
            let place = (first, ids.prober(&key.prober)?);
            stored
                .entry(place)
                .or_default()
                .entry((key.minute.0 - first.0) as u32)
                .or_default()
                .entry(key.kind)
                .or_default()
                .merge(&rollup);
            touched.insert(place);
        }
        let written: Vec<((Minute, i64), FoldedSpan)> = stored
            .into_iter()
            .filter(|(place, _)| touched.contains(place))
            .collect();
        let target_id = ids.target(target)?;
        for chunk in written.chunks(ROLLUP_BATCH) {
            Self::write_folded(tx, target_id, chunk).await?;
        }
        Ok(())
    }

    pub(super) async fn move_horizon(tx: &mut Tx<'_, DB>, target: &str, to: Minute) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO fold_horizons (target, before_minute) VALUES ($1, $2) \
             ON CONFLICT (target) DO UPDATE SET before_minute = CASE \
             WHEN excluded.before_minute > fold_horizons.before_minute THEN excluded.before_minute \
             ELSE fold_horizons.before_minute END",
        )
        .bind(target)
        .bind(to.0)
        .execute(tx.on())
        .await?;
        Ok(())
    }

    /// Deletes the raw attempts of `target` that started before `before`,
    /// a day per transaction, and the successes folded there.
    pub(super) async fn delete_before(&self, target: &str, before: DateTime<Utc>) -> StoreResult<u64> {
        let before_ms = before.timestamp_millis();
        let oldest: Option<i64> = sqlx::query_scalar(concat!(
            "SELECT MIN(started_at_ms) FROM attempts WHERE target_id = ",
            target_id!("$1"),
            " AND started_at_ms < $2"
        ))
        .bind(target)
        .bind(before_ms)
        .fetch_one(&self.readers)
        .await?;
        let mut pruned = 0;
        let mut from = oldest.unwrap_or(before_ms);
        while from < before_ms {
            let to = (from + 86_400_000).min(before_ms);
            pruned += sqlx::query(concat!(
                "DELETE FROM attempts WHERE target_id = ",
                target_id!("$1"),
                " AND started_at_ms >= $2 AND started_at_ms < $3"
            ))
            .bind(target)
            .bind(from)
            .bind(to)
            .execute(&self.pool)
            .await
            .map(DB::rows_affected)?;
            from = to;
        }
        self.forget_folded(target, before).await?;
        Ok(pruned)
    }

    /// Deletes the folded successes of `target` of minutes before
    /// `before`: every span holding such a minute goes, and the one
    /// `before` falls inside is written back with its later minutes.
    pub(super) async fn forget_folded(&self, target: &str, before: DateTime<Utc>) -> StoreResult<()> {
        let cutoff = Minute::at_or_after(&before);
        let straddled = span_start(cutoff);
        // The first span with no minute before the cutoff.
        let kept_from = if straddled < cutoff {
            Minute(straddled.0 + FOLD_SPAN_MINUTES)
        } else {
            cutoff
        };
        let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
        Self::lock_target(&mut tx, target).await?;
        let mut kept = Vec::new();
        for (first, prober_id, mut folded) in Self::read_folded_spans(tx.on(), target, straddled, kept_from).await? {
            folded.retain(|minute, _| first.0 + i64::from(*minute) >= cutoff.0);
            if !folded.is_empty() {
                kept.push(((first, prober_id), folded));
            }
        }
        sqlx::query(concat!(
            "DELETE FROM folded_spans WHERE target_id = ",
            target_id!("$1"),
            " AND first_minute < $2"
        ))
        .bind(target)
        .bind(kept_from.0)
        .execute(tx.on())
        .await?;
        if !kept.is_empty() {
            let ids = Self::name_ids(tx.on()).await?;
            Self::write_folded(&mut tx, ids.target(target)?, &kept).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn lock_target(tx: &mut Tx<'_, DB>, target: &str) -> StoreResult<()> {
        if let Some(lock) = DB::LOCK_TARGETS {
            let list = serde_json::to_string(&[target]).map_err(anyhow::Error::from)?;
            sqlx::query(lock).bind(list).execute(tx.on()).await?;
        }
        Ok(())
    }

    /// Writes whole folded spans of the target with id `target_id`, by
    /// first minute and prober's id.
    pub(super) async fn write_folded(
        tx: &mut Tx<'_, DB>,
        target_id: i64,
        spans: &[((Minute, i64), FoldedSpan)],
    ) -> StoreResult<()> {
        let mut upsert = QueryBuilder::<DB>::new(
            "INSERT INTO folded_spans (target_id, first_minute, prober_id, minutes, rollups) ",
        );
        upsert.push_values(spans, |mut row, ((first, prober_id), folded)| {
            let (minutes, rollups) = encode_folded_span(folded);
            row.push_bind(target_id)
                .push_bind(first.0)
                .push_bind(*prober_id)
                .push_bind(minutes)
                .push_bind(rollups);
        });
        upsert.push(
            " ON CONFLICT (target_id, first_minute, prober_id) DO UPDATE SET \
             minutes = excluded.minutes, rollups = excluded.rollups",
        );
        upsert
            .build()
            .persistent(keep_prepared(spans.len()))
            .execute(tx.on())
            .await?;
        Ok(())
    }

    /// The targets with minutes in rows: every stored attempt, raw or
    /// folded, was counted in a minute that has a verdict row, unless its
    /// hour is packed (`packed.rs`).
    pub(super) async fn stored_targets(&self) -> StoreResult<BTreeSet<String>> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT t.name FROM target_names AS t WHERE EXISTS (SELECT 1 FROM verdicts AS v WHERE v.target_id = t.id)",
        )
            .fetch_all(&self.readers)
            .await?;
        Ok(rows.into_iter().collect())
    }
}

/// The columns of a success the storage round reads, in the order
/// [`stored_success`] decodes them, from `attempts`.
macro_rules! success_columns {
    () => {
        "CAST(prober_id AS BIGINT), kind, started_at_ms, latency_ms, delivery, delivered_ms"
    };
}
pub(super) use success_columns;

/// A success from a row of the fold's queries, whose columns from `first`
/// on are [`success_columns`]. Borrows the prober's name from `ids`.
pub(super) fn stored_success<'r, 'n, R: Row>(
    row: &'r R,
    first: usize,
    ids: &'n NameIds,
) -> StoreResult<StoredSuccess<'n>>
where
    usize: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
    i16: Decode<'r, R::Database> + Type<R::Database>,
    Option<i16>: Decode<'r, R::Database> + Type<R::Database>,
{
    let kind: i16 = row.try_get(first + 1)?;
    let started_at_ms: i64 = row.try_get(first + 2)?;
    let delivered_ms: Option<i64> = row.try_get(first + 5)?;
    Ok(StoredSuccess {
        prober: ids.prober_name(row.try_get(first)?)?,
        minute: Minute::containing_ms(started_at_ms),
        kind: Kind::from_code(kind).map_err(anyhow::Error::from)?,
        latency_ms: row.try_get(first + 3)?,
        delivery: row
            .try_get::<Option<i16>, _>(first + 4)?
            .map(|code| Delivery::from_code(code, delivered_ms))
            .transpose()
            .map_err(anyhow::Error::from)?,
    })
}
