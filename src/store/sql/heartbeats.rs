//! Prober heartbeats: one row per prober and UTC minute.

use crate::minute::{Minute, MinuteRange};
use crate::store::{Heartbeat, StoreResult};

sql_impl! {
    pub(super) async fn record_heartbeats(&self, beats: &[Heartbeat]) -> StoreResult<()> {
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

    pub(super) async fn heartbeats(&self, range: MinuteRange) -> StoreResult<Vec<Heartbeat>> {
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
}
