//! Reading stored attempts back in order, raw and folded, for reports.

use sqlx::{Executor, Row};

use crate::attempt::rollup::{Rollup, RollupKey};
use crate::attempt::{Attempt, Delivery, InconclusiveReason, Kind, Outcome};
use crate::minute::MinuteRange;
use crate::store::{StoreResult, millis_to_instant};

use super::NameIds;

sql_impl! {
    /// Hands the attempts of `target` within `range` to `visit`, in order
    /// (start, prober's id, kind), streamed from `executor`.
    pub(super) async fn visit_attempts_on<'e, E: Executor<'e, Database = DB>>(
        executor: E,
        ids: &NameIds,
        target: &str,
        range: MinuteRange,
        visit: &mut (dyn FnMut(Attempt) + Send),
    ) -> StoreResult<u64> {
        use futures_util::TryStreamExt;
        // In key order: attempts sharing a millisecond are put in the
        // canonical order by the digest itself.
        let mut rows = sqlx::query(concat!(
            "SELECT CAST(prober_id AS BIGINT) AS prober_id, kind, started_at_ms, latency_ms, outcome, http_status, \
             error_code, error, reason, delivery, delivered_ms FROM attempts WHERE target_id = ",
            target_id!("$1"),
            " AND started_at_ms >= $2 AND started_at_ms < $3 ORDER BY started_at_ms, prober_id, kind"
        ))
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
                prober: ids.prober_name(row.try_get("prober_id")?)?.to_owned(),
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

    pub(super) async fn visit_attempts(
        &self,
        target: &str,
        range: MinuteRange,
        visit: &mut (dyn FnMut(Attempt) + Send),
    ) -> StoreResult<u64> {
        // In a transaction, so that the rows stream from one server
        // connection behind a transaction pooler too (`connection.rs`).
        let mut tx = self.readers.begin_with(DB::BEGIN_SNAPSHOT).await?;
        let ids = Self::name_ids(tx.on()).await?;
        let visited = Self::visit_attempts_on(tx.on(), &ids, target, range, visit).await?;
        tx.commit().await?;
        Ok(visited)
    }

    pub(super) async fn visit_evidence(
        &self,
        target: &str,
        range: MinuteRange,
        visit: &mut (dyn FnMut(Attempt) + Send),
    ) -> StoreResult<Vec<(RollupKey, Rollup)>> {
        // One snapshot: a storage round folding these minutes meanwhile
        // cannot make their successes show twice or not at all.
        let mut tx = self.readers.begin_with(DB::BEGIN_SNAPSHOT).await?;
        let ids = Self::name_ids(tx.on()).await?;
        let rollups = Self::read_rollups(tx.on(), &ids, target, range).await?;
        Self::visit_attempts_on(tx.on(), &ids, target, range, visit).await?;
        tx.commit().await?;
        Ok(rollups)
    }
}
