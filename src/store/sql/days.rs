//! The day partitions of `attempts` where the dialect partitions by day
//! (PostgreSQL): the days a write needs made before it inserts.

use std::collections::BTreeSet;

use sqlx::Executor;

use crate::attempt::Attempt;
use crate::store::StoreResult;

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
}
