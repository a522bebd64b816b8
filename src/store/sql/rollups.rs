//! Folded successes read back: for reports, for writes into folded
//! minutes, and for slow counts under a changed latency rule.

use std::collections::{BTreeMap, HashMap, HashSet};

use sqlx::{Executor, Row};

use crate::attempt::Attempt;
use crate::attempt::rollup::{
    FOLD_SPAN_MINUTES, FoldedSpan, Rollup, RollupKey, decode_folded_span, is_foldable, span_start,
};
use crate::minute::{Minute, MinuteRange};
use crate::store::connection::Tx;

use crate::store::StoreResult;

use super::NameIds;

sql_impl! {
    /// The folded spans of `target` that start from `first` up to (not
    /// including) `end`: by the span's first minute and prober's id.
    pub(super) async fn read_folded_spans<'e, E: Executor<'e, Database = DB>>(
        executor: E,
        target: &str,
        first: Minute,
        end: Minute,
    ) -> StoreResult<Vec<(Minute, i64, FoldedSpan)>> {
        let rows = sqlx::query(concat!(
            "SELECT first_minute, CAST(prober_id AS BIGINT), minutes, rollups FROM folded_spans WHERE target_id = ",
            target_id!("$1"),
            " AND first_minute >= $2 AND first_minute < $3 ORDER BY first_minute"
        ))
        .bind(target)
        .bind(first.0)
        .bind(end.0)
        .fetch_all(executor)
        .await?;
        rows.iter()
            .map(|r| {
                let minutes: i64 = r.try_get(2)?;
                let bytes: &[u8] = r.try_get(3)?;
                let span = decode_folded_span(minutes, bytes).map_err(anyhow::Error::msg)?;
                Ok((Minute(r.try_get(0)?), r.try_get(1)?, span))
            })
            .collect()
    }

    /// The stored rollups of `target` within `range`, by minute, prober
    /// (by name) and kind.
    pub(super) async fn read_rollups<'e, E: Executor<'e, Database = DB>>(
        executor: E,
        ids: &NameIds,
        target: &str,
        range: MinuteRange,
    ) -> StoreResult<Vec<(RollupKey, Rollup)>> {
        let spans = spans_of(range);
        let mut rollups = Vec::new();
        for (first, prober_id, folded) in Self::read_folded_spans(executor, target, spans.start, spans.end).await? {
            let prober = ids.prober_name(prober_id)?;
            for (offset, kinds) in folded {
                let minute = Minute(first.0 + i64::from(offset));
                if !range.contains(minute) {
                    continue;
                }
                for (kind, rollup) in kinds {
                    let key = RollupKey {
                        minute,
                        prober: prober.to_owned(),
                        kind,
                    };
                    rollups.push((key, rollup));
                }
            }
        }
        // Stable: a minute's kinds stay in their stored order.
        rollups.sort_by(|(a, _), (b, _)| (a.minute, &a.prober).cmp(&(b.minute, &b.prober)));
        Ok(rollups)
    }

    /// Of a batch about to be stored, the (target, minute, prober) whose
    /// successes were folded already: a success there was counted before,
    /// so a re-import does not count it again. Reads the buckets only for
    /// attempts below their target's fold horizon, so the daemon's fresh
    /// attempts cost one read of the small horizon table.
    pub(super) async fn already_folded(
        tx: &mut Tx<'_, DB>,
        ids: &NameIds,
        batch: &[&Attempt],
    ) -> StoreResult<HashSet<(String, i64, String)>> {
        let horizons: HashMap<String, i64> =
            sqlx::query("SELECT target, before_minute FROM fold_horizons")
                .fetch_all(tx.on())
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<_, sqlx::Error>>()?;
        let mut spans: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
        for a in batch.iter().filter(|a| is_foldable(a)) {
            let minute = a.minute().0;
            if horizons.get(&a.target).is_some_and(|h| minute < *h) {
                let span = spans.entry(&a.target).or_insert((minute, minute));
                *span = (span.0.min(minute), span.1.max(minute));
            }
        }
        let mut folded = HashSet::new();
        for (target, (first, last)) in spans {
            let rows = sqlx::query(concat!(
                "SELECT first_minute, CAST(prober_id AS BIGINT), minutes FROM folded_spans WHERE target_id = ",
                target_id!("$1"),
                " AND first_minute >= $2 AND first_minute <= $3"
            ))
            .bind(target)
            .bind(span_start(Minute(first)).0)
            .bind(last)
            .fetch_all(tx.on())
            .await?;
            for r in rows {
                let (start, minutes): (i64, i64) = (r.try_get(0)?, r.try_get(2)?);
                let prober = ids.prober_name(r.try_get(1)?)?;
                for offset in (0..FOLD_SPAN_MINUTES).filter(|m| minutes >> m & 1 == 1) {
                    folded.insert((target.to_owned(), start + offset, prober.to_owned()));
                }
            }
        }
        Ok(folded)
    }

    /// Adds what the folded successes of `target` say to the slow counts of
    /// their buckets, against `slow_after_ms` (the raw attempts were counted
    /// by the caller). Exact where the threshold is a bucket boundary
    /// (`Histogram::count_above`).
    pub(super) async fn recount_slow_folded(
        tx: &mut Tx<'_, DB>,
        target: &str,
        slow_after_ms: i64,
    ) -> StoreResult<()> {
        let ids = Self::name_ids(tx.on()).await?;
        let rollups = Self::read_rollups(
            tx.on(),
            &ids,
            target,
            MinuteRange::new(Minute(i64::MIN / 120), Minute(i64::MAX / 120)),
        )
        .await?;
        let mut slow: BTreeMap<(i64, String), i64> = BTreeMap::new();
        for (key, rollup) in rollups {
            let above = rollup.latency.count_above(slow_after_ms) as i64;
            if above > 0 {
                *slow.entry((key.minute.0, key.prober)).or_default() += above;
            }
        }
        for ((minute, prober), count) in slow {
            sqlx::query(concat!(
                "UPDATE minute_buckets SET slow_ok_attempts = slow_ok_attempts + $1 WHERE target_id = ",
                target_id!("$2"),
                " AND minute = $3 AND prober_id = ",
                prober_id!("$4")
            ))
            .bind(count)
            .bind(target)
            .bind(minute)
            .bind(prober)
            .execute(tx.on())
            .await?;
        }
        Ok(())
    }

    /// The oldest minute of `target` with folded successes.
    pub(super) async fn oldest_rollup(
        tx: &mut Tx<'_, DB>,
        target: &str,
    ) -> StoreResult<Option<i64>> {
        let rows = sqlx::query(concat!(
            "SELECT first_minute, minutes FROM folded_spans WHERE target_id = ",
            target_id!("$1"),
            " AND first_minute = (SELECT MIN(first_minute) FROM folded_spans WHERE target_id = ",
            target_id!("$1"),
            ")"
        ))
        .bind(target)
        .fetch_all(tx.on())
        .await?;
        let firsts = rows
            .iter()
            .map(|r| {
                let (start, minutes): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
                Ok(start + i64::from(minutes.trailing_zeros()))
            })
            .collect::<Result<Vec<i64>, sqlx::Error>>()?;
        Ok(firsts.into_iter().min())
    }
}

/// The first minutes of the spans that hold `range`'s minutes: from the
/// first span's up to (not including) the one after the last.
pub(super) fn spans_of(range: MinuteRange) -> MinuteRange {
    let end = span_start(Minute(range.end.0 - 1)).0 + FOLD_SPAN_MINUTES;
    MinuteRange::new(
        span_start(range.start),
        Minute(end.max(span_start(range.start).0)),
    )
}
