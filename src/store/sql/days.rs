//! The day partitions of `attempts` where the dialect partitions by day
//! (PostgreSQL): the days a write needs made before it inserts, and the
//! storage round that rewrites a whole day instead of deleting rows.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, Executor, Row};

use super::fold::{foldable, stored_success, success_columns};
use crate::attempt::Attempt;
use crate::attempt::rollup::Folder;
use crate::minute::{Minute, MinuteRange};
use crate::store::{CompactSummary, StoreResult};

/// The most UTC days one write (an import) may add partitions for: each
/// holds a few locks until the write commits, and PostgreSQL's lock table
/// has room for some 6,400 by default.
const MAX_NEW_DAYS_PER_WRITE: usize = 400;

sql_impl! {
    /// The days of `batch` whose `attempts` partition this process has not
    /// seen yet, where attempts are partitioned by day.
    pub(super) fn unknown_days(&self, batch: &[Attempt]) -> Vec<i64> {
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
    pub(super) async fn ensure_days<'e, E: Executor<'e, Database = DB>>(
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

    /// [`Self::compact_all`] where attempts live in day partitions: each
    /// day with something to fold or prune is rewritten whole, its
    /// successes folded first, in one transaction per day.
    pub(super) async fn compact_days(
        &self,
        fold_before: Option<Minute>,
        prune: &[(String, DateTime<Utc>)],
    ) -> StoreResult<CompactSummary> {
        let mut summary = CompactSummary::default();
        let prune_json = serde_json::to_string(
            &prune
                .iter()
                .map(|(target, before)| (target.as_str(), before.timestamp_millis()))
                .collect::<BTreeMap<&str, i64>>(),
        )
        .map_err(anyhow::Error::from)?;
        let oldest_prune = prune
            .iter()
            .map(|(_, before)| before.timestamp_millis())
            .max();
        let fold_before_ms = fold_before.map(|m| m.0 * 60_000);
        let days: Vec<String> = sqlx::query_scalar(DB::DAY_PARTITIONS.expect("partitioned"))
            .fetch_all(&self.readers)
            .await?;
        for name in days {
            let Some(day) = day_of_partition(&name) else {
                continue;
            };
            let (start_ms, end_ms) = (day * 86_400_000, (day + 1) * 86_400_000);
            let fold = fold_before_ms.is_some_and(|before| end_ms <= before);
            let prune_here = oldest_prune.is_some_and(|before| start_ms < before);
            if !fold && !prune_here {
                continue;
            }
            let started = std::time::Instant::now();
            let done = self.rewrite_day(&name, day, fold, &prune_json).await?;
            summary.longest_transaction = summary.longest_transaction.max(started.elapsed());
            summary.longest_writer_wait = summary.longest_writer_wait.max(done.longest_writer_wait);
            summary.folded += done.folded;
            summary.rollups += done.rollups;
            summary.pruned += done.pruned;
        }
        for (target, before) in prune {
            self.forget_folded(target, *before).await?;
        }
        Ok(summary)
    }

    /// Rewrites one day partition: folds its successes (`fold`), and keeps
    /// what is neither folded nor past its target's retention.
    pub(super) async fn rewrite_day(
        &self,
        name: &str,
        day: i64,
        fold: bool,
        prune_json: &str,
    ) -> StoreResult<CompactSummary> {
        let mut summary = CompactSummary::default();
        let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
        // Nothing writes the day while it is read and copied (a late
        // import waits), and two storage rounds take turns.
        if let Some(lock) = DB::LOCK_DAY {
            sqlx::query(lock).bind(name).execute(tx.on()).await?;
        }
        let slice = MinuteRange::new(Minute(day * 1_440), Minute((day + 1) * 1_440));
        if fold {
            let ids = Self::name_ids(tx.on()).await?;
            // The partition's name is the catalogue's, never input.
            let rows = sqlx::query(AssertSqlSafe(format!(
                "SELECT CAST(target_id AS BIGINT), {} FROM {name} WHERE {}",
                success_columns!(),
                foldable!()
            )))
            .fetch_all(tx.on())
            .await?;
            let mut by_target: BTreeMap<i64, Folder> = BTreeMap::new();
            for row in &rows {
                let target: i64 = row.try_get(0)?;
                by_target
                    .entry(target)
                    .or_default()
                    .offer_stored(stored_success(row, 1, &ids)?);
            }
            summary.folded = rows.len() as u64;
            for (target, folder) in by_target {
                let target = ids.target_name(target)?;
                let fresh = folder.into_rollups();
                summary.rollups += fresh.len() as u64;
                Self::add_folded(&mut tx, &ids, target, slice, fresh).await?;
                Self::move_horizon(&mut tx, target, slice.end).await?;
            }
        }
        let (total, kept, swap_us): (i64, i64, i64) =
            sqlx::query_as(DB::REWRITE_DAY.expect("partitioned"))
                .bind(day)
                .bind(i64::from(fold))
                .bind(prune_json)
                .fetch_one(tx.on())
                .await?;
        let committing = std::time::Instant::now();
        tx.commit().await?;
        summary.pruned = (total - kept) as u64 - summary.folded;
        // Writers of other days wait only for the swap and the commit; the
        // day itself was locked against writes for the whole transaction.
        summary.longest_writer_wait =
            std::time::Duration::from_micros(swap_us.max(0) as u64) + committing.elapsed();
        Ok(summary)
    }
}

/// The UTC day (since the epoch) of a partition named `attempts_YYYYMMDD`.
fn day_of_partition(name: &str) -> Option<i64> {
    let date = chrono::NaiveDate::parse_from_str(name.strip_prefix("attempts_")?, "%Y%m%d").ok()?;
    Some(
        date.and_hms_opt(0, 0, 0)?
            .and_utc()
            .timestamp()
            .div_euclid(86_400),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn partitions_are_named_by_their_utc_day() {
        assert_eq!(super::day_of_partition("attempts_19700102"), Some(1));
        assert_eq!(super::day_of_partition("attempts_20260401"), Some(20_544));
        assert_eq!(super::day_of_partition("attempts_default"), None);
        assert_eq!(super::day_of_partition("verdicts"), None);
    }
}
