//! The notification outbox: events enqueued once per channel, claimed by
//! one prober at a time, marked sent or retried.

use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Row};

use crate::store::{
    AfterFailure, ClaimedNotification, NewNotification, StoreResult, StoredNotification,
    keep_prepared, millis_to_instant,
};

sql_impl! {
    pub(super) async fn enqueue_notifications(&self, rows: &[NewNotification]) -> StoreResult<u64> {
        if rows.is_empty() {
            return Ok(0);
        }
        let mut insert = QueryBuilder::<DB>::new(
            "INSERT INTO notifications (event_key, channel, target, event, payload, decided_by, created_at_ms, next_try_ms) ",
        );
        insert.push_values(rows, |mut row, n| {
            let at = n.created_at.timestamp_millis();
            row.push_bind(n.event_key.clone())
                .push_bind(n.channel.clone())
                .push_bind(n.target.clone())
                .push_bind(n.event.clone())
                .push_bind(n.payload.clone())
                .push_bind(n.decided_by.clone())
                .push_bind(at)
                .push_bind(at);
        });
        insert.push(" ON CONFLICT (event_key, channel) DO NOTHING");
        Ok(insert
            .build()
            .persistent(keep_prepared(rows.len()))
            .execute(&self.pool)
            .await
            .map(DB::rows_affected)?)
    }

    pub(super) async fn claim_notification(
        &self,
        channel: &str,
        prober: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<ClaimedNotification>> {
        // The row is re-checked by the UPDATE itself, so of several
        // probers racing for it exactly one gets it.
        let row: Option<(i64, String, String, i64)> = sqlx::query_as(
            "UPDATE notifications SET claimed_by = $1, claimed_until_ms = $2, tries = tries + 1 \
             WHERE id = (SELECT id FROM notifications WHERE channel = $3 AND sent_at_ms IS NULL \
             AND gave_up_at_ms IS NULL ORDER BY id LIMIT 1) \
             AND sent_at_ms IS NULL AND next_try_ms <= $4 AND (claimed_until_ms IS NULL OR claimed_until_ms < $4) \
             RETURNING id, event_key, payload, CAST(tries AS BIGINT)",
        )
        .bind(prober)
        .bind(lease_until.timestamp_millis())
        .bind(channel)
        .bind(now.timestamp_millis())
        .fetch_optional(&self.pool)
        .await?;
        Ok(
            row.map(|(id, event_key, payload, tries)| ClaimedNotification {
                id,
                event_key,
                payload,
                tries,
            }),
        )
    }

    pub(super) async fn notification_sent(
        &self,
        id: i64,
        prober: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let updated = sqlx::query(
            "UPDATE notifications SET sent_at_ms = $1, sent_by = $2, claimed_by = NULL, claimed_until_ms = NULL, \
             last_error = NULL WHERE id = $3 AND claimed_by = $2 AND sent_at_ms IS NULL",
        )
        .bind(at.timestamp_millis())
        .bind(prober)
        .bind(id)
        .execute(&self.pool)
        .await
            .map(DB::rows_affected)?;
        Ok(updated == 1)
    }

    pub(super) async fn notification_failed(
        &self,
        id: i64,
        prober: &str,
        error: &str,
        after: AfterFailure,
    ) -> StoreResult<()> {
        let (next_try, gave_up) = match after {
            AfterFailure::RetryAt(at) => (at, None),
            AfterFailure::GiveUp(at) => (at, Some(at.timestamp_millis())),
        };
        sqlx::query(
            "UPDATE notifications SET claimed_by = NULL, claimed_until_ms = NULL, last_error = $1, next_try_ms = $2, \
             gave_up_at_ms = $5 WHERE id = $3 AND claimed_by = $4",
        )
        .bind(error)
        .bind(next_try.timestamp_millis())
        .bind(id)
        .bind(prober)
        .bind(gave_up)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn release_notifications(&self, prober: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE notifications SET claimed_by = NULL, claimed_until_ms = NULL \
             WHERE claimed_by = $1 AND sent_at_ms IS NULL",
        )
        .bind(prober)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn pending_notifications(&self) -> StoreResult<Vec<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT channel, CAST(COUNT(*) AS BIGINT) FROM notifications WHERE sent_at_ms IS NULL AND gave_up_at_ms IS NULL \
             GROUP BY channel ORDER BY channel",
        )
        .fetch_all(&self.readers)
        .await?)
    }

    pub(super) async fn notifications(&self, channel: Option<&str>) -> StoreResult<Vec<StoredNotification>> {
        let rows = sqlx::query(
            "SELECT id, event_key, channel, target, event, payload, CAST(tries AS BIGINT) AS tries, sent_at_ms, \
             sent_by, gave_up_at_ms, last_error FROM notifications WHERE (CAST($1 AS TEXT) IS NULL OR channel = CAST($1 AS TEXT)) ORDER BY id",
        )
        .bind(channel)
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredNotification {
                    id: r.try_get("id")?,
                    event_key: r.try_get("event_key")?,
                    channel: r.try_get("channel")?,
                    target: r.try_get("target")?,
                    event: r.try_get("event")?,
                    payload: r.try_get("payload")?,
                    tries: r.try_get("tries")?,
                    sent_at: r
                        .try_get::<Option<i64>, _>("sent_at_ms")?
                        .map(millis_to_instant)
                        .transpose()?,
                    sent_by: r.try_get("sent_by")?,
                    gave_up_at: r
                        .try_get::<Option<i64>, _>("gave_up_at_ms")?
                        .map(millis_to_instant)
                        .transpose()?,
                    last_error: r.try_get("last_error")?,
                })
            })
            .collect()
    }
}
