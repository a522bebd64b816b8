//! Latency rules: the slow counts of each minute bucket, taken against the
//! target's `slow_after`, recounted when the rule changes.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::minute::{Minute, MinuteRange};
use crate::store::{StoreResult, millis_to_instant};

use crate::store::connection::Tx;

sql_impl! {
    /// Every target's latency threshold (a small table), read once per batch.
    pub(super) async fn load_latency_rules(
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
    pub(super) async fn recount_slow(
        tx: &mut Tx<'_, DB>,
        target: &str,
        slow_after_ms: i64,
    ) -> StoreResult<()> {
        let oldest: Option<i64> =
            sqlx::query_scalar(concat!("SELECT MIN(started_at_ms) FROM attempts WHERE target_id = ", target_id!("$1")))
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
        Self::unpack_range(tx, target, MinuteRange::new(from, Minute(i64::MAX))).await?;
        // Minutes are whole UTC minutes of Unix time (`Minute`), so a
        // bucket's attempts are those started in [minute * 60000, + 60000).
        sqlx::query(concat!(
            "UPDATE minute_buckets SET slow_ok_attempts = (SELECT COUNT(*) FROM attempts \
             WHERE attempts.target_id = minute_buckets.target_id AND attempts.prober_id = minute_buckets.prober_id \
             AND attempts.started_at_ms >= minute_buckets.minute * 60000 \
             AND attempts.started_at_ms < (minute_buckets.minute + 1) * 60000 \
             AND attempts.outcome = 0 AND attempts.latency_ms > $2) \
             WHERE target_id = ",
            target_id!("$1"),
            " AND minute >= $3"
        ))
        .bind(target)
        .bind(slow_after_ms)
        .bind(from.0)
        .execute(tx.on())
        .await?;
        Self::recount_slow_folded(tx, target, slow_after_ms).await?;
        Self::redecide_range(tx, target, MinuteRange::new(from, Minute(i64::MAX))).await
    }

    pub(super) async fn apply_latency_rules(
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
}
