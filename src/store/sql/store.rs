//! The `Store` trait over both backends: each method is the concern file's
//! of the same name, or short enough to read here.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};

use crate::attempt::Attempt;
use crate::attempt::rollup::{Rollup, RollupKey};
use crate::config::ConfiguredExclusion;
use crate::minute::{Minute, MinuteRange};
use crate::sla::{MonthStatement, ObservedMinutes};
use crate::store::{
    AfterFailure, AttemptSource, ClaimedNotification, CompactSummary, Heartbeat, IngestSummary,
    MinuteVerdict, NewExclusion, NewNotification, ProberMark, SettlementFacts, StorageUse,
    StoreResult, StoredExclusion, StoredNotification,
};
use crate::verdict::OutcomeCounts;

use sqlx::Executor;

sql_impl! {
    Store;

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
        Self::store_attempts(self, attempts, watermark).await
    }

    async fn settle_pending(&self) -> StoreResult<u64> {
        self.settle_free_targets().await
    }

    async fn apply_latency_rules(
        &self,
        wanted: &BTreeMap<String, i64>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<String>> {
        Self::apply_latency_rules(self, wanted, now).await
    }

    async fn settlement_facts(&self) -> StoreResult<SettlementFacts> {
        Self::settlement_facts(self).await
    }

    async fn minute_counts_at(&self, minute: Minute) -> StoreResult<Vec<(String, OutcomeCounts)>> {
        Self::minute_counts_at(self, minute).await
    }

    async fn sync_config_exclusions(
        &self,
        wanted: &[ConfiguredExclusion],
        recorded_by: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        Self::sync_config_exclusions(self, wanted, recorded_by, now).await
    }

    async fn add_exclusion(&self, e: &NewExclusion) -> StoreResult<i64> {
        Self::add_exclusion(self, e).await
    }

    async fn remove_exclusion(&self, id: i64) -> StoreResult<Option<StoredExclusion>> {
        Self::remove_exclusion(self, id).await
    }

    async fn exclusions(&self, target: Option<&str>) -> StoreResult<Vec<StoredExclusion>> {
        Self::exclusions(self, target).await
    }

    async fn observed_minutes(
        &self,
        target: &str,
        range: MinuteRange,
    ) -> StoreResult<ObservedMinutes> {
        Self::observed_minutes(self, target, range).await
    }

    async fn minute_verdicts(
        &self,
        target: &str,
        range: MinuteRange,
    ) -> StoreResult<Vec<MinuteVerdict>> {
        Self::minute_verdicts(self, target, range).await
    }

    async fn save_service_months(
        &self,
        statements: &[MonthStatement],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        Self::save_service_months(self, statements, now).await
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.readers).await?;
        Ok(())
    }

    async fn record_heartbeats(&self, beats: &[Heartbeat]) -> StoreResult<()> {
        Self::record_heartbeats(self, beats).await
    }

    async fn heartbeats(&self, range: MinuteRange) -> StoreResult<Vec<Heartbeat>> {
        Self::heartbeats(self, range).await
    }

    async fn visit_attempts(
        &self,
        target: &str,
        range: MinuteRange,
        visit: &mut (dyn FnMut(Attempt) + Send),
    ) -> StoreResult<u64> {
        Self::visit_attempts(self, target, range, visit).await
    }

    async fn visit_evidence(
        &self,
        target: &str,
        range: MinuteRange,
        visit: &mut (dyn FnMut(Attempt) + Send),
    ) -> StoreResult<Vec<(RollupKey, Rollup)>> {
        Self::visit_evidence(self, target, range, visit).await
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
        Self::enqueue_notifications(self, rows).await
    }

    async fn claim_notification(
        &self,
        channel: &str,
        prober: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<ClaimedNotification>> {
        Self::claim_notification(self, channel, prober, now, lease_until).await
    }

    async fn notification_sent(
        &self,
        id: i64,
        prober: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        Self::notification_sent(self, id, prober, at).await
    }

    async fn notification_failed(
        &self,
        id: i64,
        prober: &str,
        error: &str,
        after: AfterFailure,
    ) -> StoreResult<()> {
        Self::notification_failed(self, id, prober, error, after).await
    }

    async fn release_notifications(&self, prober: &str) -> StoreResult<()> {
        Self::release_notifications(self, prober).await
    }

    async fn pending_notifications(&self) -> StoreResult<Vec<(String, i64)>> {
        Self::pending_notifications(self).await
    }

    async fn notifications(&self, channel: Option<&str>) -> StoreResult<Vec<StoredNotification>> {
        Self::notifications(self, channel).await
    }
}
