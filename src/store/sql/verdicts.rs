//! Minute verdicts: re-deciding the minutes writes marked pending, under
//! their target's lock, and reading verdicts, counts and settlement facts.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sqlx::{QueryBuilder, Row};

use crate::minute::{Minute, MinuteRange};
use crate::sla::{ExcludedMinutes, ObservedMinutes};
use crate::store::{
    ATTEMPT_BATCH, MINUTE_CHUNK, MinuteVerdict, ProberMark, SettlementFacts, StoreResult,
    keep_prepared, millis_to_instant,
};
use crate::verdict::{self, OutcomeCounts, Verdict};

use crate::store::connection::Tx;

sql_impl! {
    /// Appends `(target, minute) IN (VALUES ...)` for a chunk of minutes.
    pub(super) fn push_minute_list(query: &mut QueryBuilder<DB>, chunk: &[(String, Minute)]) {
        query.push("(target_id, minute) IN (VALUES ");
        let mut list = query.separated(", ");
        for (target, minute) in chunk {
            list.push("((SELECT id FROM target_names WHERE name = ");
            list.push_bind_unseparated(target.clone());
            list.push_unseparated(")");
            list.push_unseparated(", ");
            list.push_bind_unseparated(minute.0);
            list.push_unseparated(")");
        }
        query.push(")");
    }

    /// Each given target minute's buckets (one per prober), summed.
    pub(in crate::store) fn bucket_sums_query(chunk: &[(String, Minute)]) -> QueryBuilder<DB> {
        let mut sums = QueryBuilder::<DB>::new(
            "SELECT (SELECT name FROM target_names WHERE id = minute_buckets.target_id), minute, \
             CAST(SUM(ok_attempts) AS BIGINT), CAST(SUM(fail_attempts) AS BIGINT), \
             CAST(SUM(inconclusive_attempts) AS BIGINT), CAST(COUNT(*) AS BIGINT), \
             CAST(SUM(slow_ok_attempts) AS BIGINT) FROM minute_buckets WHERE ",
        );
        Self::push_minute_list(&mut sums, chunk);
        sums.push(" GROUP BY target_id, minute");
        sums
    }

    /// Each given target minute's recorded verdict.
    pub(in crate::store) fn verdicts_query(chunk: &[(String, Minute)]) -> QueryBuilder<DB> {
        let mut previous =
            QueryBuilder::<DB>::new(
                "SELECT (SELECT name FROM target_names WHERE id = verdicts.target_id), minute, verdict FROM verdicts WHERE ",
            );
        Self::push_minute_list(&mut previous, chunk);
        previous
    }

    /// Re-decides the verdict of each given target minute from its
    /// buckets and the target's exclusion windows, and moves the hourly
    /// roll-up by exactly the change. The caller holds the targets' locks.
    pub(super) async fn redecide(
        tx: &mut Tx<'_, DB>,
        minutes: &[(String, Minute)],
        exclusions: &HashMap<String, ExcludedMinutes>,
    ) -> StoreResult<()> {
        let none = ExcludedMinutes::default();
        for chunk in minutes.chunks(MINUTE_CHUNK) {
            let mut spans: BTreeMap<&str, (Minute, Minute)> = BTreeMap::new();
            for (target, minute) in chunk {
                let span = spans.entry(target.as_str()).or_insert((*minute, *minute));
                span.0 = span.0.min(*minute);
                span.1 = span.1.max(*minute);
            }
            for (target, (first, last)) in spans {
                Self::unpack_range(tx, target, MinuteRange::new(first, Minute(last.0 + 1))).await?;
            }
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
                let code: i16 = row.try_get(2)?;
                let key: (String, i64) = (row.try_get(0)?, row.try_get(1)?);
                previous.insert(key, Verdict::from_code(code).map_err(anyhow::Error::msg)?);
            }

            let changed = crate::store::changes::hourly_deltas(
                decided
                    .iter()
                    .map(|(target, minute, new, _, _)| (target.as_str(), *minute, *new)),
                &previous,
            );

            let mut upsert = QueryBuilder::<DB>::new(
                "INSERT INTO verdicts (target_id, minute, verdict, ok_attempts, fail_attempts, inconclusive_attempts, probers, \
                 slow_ok_attempts) SELECT t.id, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, v.column8 \
                 FROM (",
            );
            upsert.push_values(
                &decided,
                |mut row, (target, minute, verdict, counts, probers)| {
                    row.push_bind(target.as_str())
                        .push_bind(minute.0)
                        .push_bind(verdict.code())
                        .push_bind(counts.ok)
                        .push_bind(counts.fail)
                        .push_bind(counts.inconclusive)
                        .push_bind(*probers)
                        .push_bind(counts.slow_ok);
                },
            );
            upsert.push(
                ") AS v LEFT JOIN target_names AS t ON t.name = v.column1 WHERE true \
                 ON CONFLICT (target_id, minute) DO UPDATE SET verdict = excluded.verdict, \
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
    pub(super) async fn redecide_range(
        tx: &mut Tx<'_, DB>,
        target: &str,
        range: MinuteRange,
    ) -> StoreResult<()> {
        Self::unpack_range(tx, target, range).await?;
        let rows = sqlx::query(concat!(
            "SELECT minute FROM verdicts WHERE target_id = ",
            target_id!("$1"),
            " AND minute >= $2 AND minute < $3"
        ))
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

    /// Re-decides the pending minutes of every target whose lock is
    /// free now, leaving the others to the prober that holds them.
    /// Deletes exactly the pending rows it read, so a mark appended
    /// meanwhile is re-decided by the next pass. Returns the minutes
    /// re-decided.
    pub(super) async fn settle_free_targets(&self) -> StoreResult<u64> {
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

    pub(super) async fn settlement_facts(&self) -> StoreResult<SettlementFacts> {
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

    pub(super) async fn minute_counts_at(&self, minute: Minute) -> StoreResult<Vec<(String, OutcomeCounts)>> {
        let rows = sqlx::query(
            "SELECT t.name, CAST(v.ok_attempts AS BIGINT), CAST(v.fail_attempts AS BIGINT), \
             CAST(v.inconclusive_attempts AS BIGINT), CAST(v.slow_ok_attempts AS BIGINT) \
             FROM verdicts AS v JOIN target_names AS t ON t.id = v.target_id WHERE v.minute = $1 ORDER BY t.name",
        )
        .bind(minute.0)
        .fetch_all(&self.readers)
        .await?;
        let mut counts = rows
            .iter()
            .map(|r| {
                let counts = OutcomeCounts {
                    ok: r.try_get(1)?,
                    fail: r.try_get(2)?,
                    inconclusive: r.try_get(3)?,
                    slow_ok: r.try_get(4)?,
                };
                Ok((r.try_get(0)?, counts))
            })
            .collect::<StoreResult<Vec<(String, OutcomeCounts)>>>()?;
        let packed = self.packed_verdicts_at(minute).await?;
        if !packed.is_empty() {
            counts.extend(packed.into_iter().map(|(target, v)| (target, v.counts)));
            counts.sort_by(|a, b| a.0.cmp(&b.0));
        }
        Ok(counts)
    }

    pub(super) async fn observed_minutes(
        &self,
        target: &str,
        range: MinuteRange,
    ) -> StoreResult<ObservedMinutes> {
        let (hours, [head, tail]) = range.split_by_hours();
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
            let rows = sqlx::query(concat!(
                "SELECT verdict, CAST(COUNT(*) AS BIGINT) FROM verdicts WHERE target_id = ",
                target_id!("$1"),
                " AND minute >= $2 AND minute < $3 GROUP BY verdict"
            ))
            .bind(target)
            .bind(edge.start.0)
            .bind(edge.end.0)
            .fetch_all(&self.readers)
            .await?;
            for row in rows {
                let code: i16 = row.try_get(0)?;
                let count: i64 = row.try_get(1)?;
                observed.add(Verdict::from_code(code).map_err(anyhow::Error::msg)?, count);
            }
            for packed in self.packed_verdicts_in(target, edge).await? {
                observed.add(packed.verdict, 1);
            }
        }
        Ok(observed)
    }

    pub(super) async fn minute_verdicts(
        &self,
        target: &str,
        range: MinuteRange,
    ) -> StoreResult<Vec<MinuteVerdict>> {
        let rows = sqlx::query(concat!(
            "SELECT minute, verdict, CAST(ok_attempts AS BIGINT), CAST(fail_attempts AS BIGINT), \
             CAST(inconclusive_attempts AS BIGINT), CAST(probers AS BIGINT), CAST(slow_ok_attempts AS BIGINT) \
             FROM verdicts WHERE target_id = ",
            target_id!("$1"),
            " AND minute >= $2 AND minute < $3 ORDER BY minute"
        ))
        .bind(target)
        .bind(range.start.0)
        .bind(range.end.0)
        .fetch_all(&self.readers)
        .await?;
        let mut minutes = rows
            .iter()
            .map(|r| {
                let code: i16 = r.try_get(1)?;
                Ok(MinuteVerdict {
                    minute: Minute(r.try_get(0)?),
                    verdict: Verdict::from_code(code).map_err(anyhow::Error::msg)?,
                    counts: OutcomeCounts {
                        ok: r.try_get(2)?,
                        fail: r.try_get(3)?,
                        inconclusive: r.try_get(4)?,
                        slow_ok: r.try_get(6)?,
                    },
                    probers: r.try_get(5)?,
                })
            })
            .collect::<StoreResult<Vec<MinuteVerdict>>>()?;
        let packed = self.packed_verdicts_in(target, range).await?;
        if !packed.is_empty() {
            minutes.extend(packed);
            minutes.sort_by_key(|v| v.minute);
        }
        Ok(minutes)
    }
}
