//! Exclusion windows: the config's kept in step, the command line's
//! added and removed, and the minutes they cover re-decided.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::config::ConfiguredExclusion;
use crate::sla::{ExcludedMinutes, ExclusionWindow};
use crate::store::{
    ExclusionSource, NewExclusion, StoreResult, StoredExclusion, millis_to_instant,
};

use crate::store::connection::Tx;

sql_impl! {
    /// Serialises changes to the exclusion windows themselves (two
    /// probers syncing the same config at start). Never taken on the
    /// attempt write path.
    pub(super) async fn lock_exclusions(tx: &mut Tx<'_, DB>) -> StoreResult<()> {
        if let Some(lock) = DB::LOCK_EXCLUSIONS {
            sqlx::query(lock).execute(tx.on()).await?;
        }
        Ok(())
    }

    /// Every target's exclusion windows (a small table), read once per transaction.
    pub(super) async fn load_exclusions(tx: &mut Tx<'_, DB>) -> StoreResult<HashMap<String, ExcludedMinutes>> {
        let rows = sqlx::query("SELECT target, start_ms, end_ms FROM exclusions")
            .fetch_all(tx.on())
            .await?;
        let mut windows: HashMap<String, Vec<ExclusionWindow>> = HashMap::new();
        for r in rows {
            let window = ExclusionWindow {
                start: millis_to_instant(r.try_get(1)?)?,
                end: millis_to_instant(r.try_get(2)?)?,
            };
            windows.entry(r.try_get(0)?).or_default().push(window);
        }
        Ok(windows
            .into_iter()
            .map(|(target, w)| (target, ExcludedMinutes::new(w)))
            .collect())
    }

    pub(super) async fn sync_config_exclusions(
        &self,
        wanted: &[ConfiguredExclusion],
        recorded_by: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        Self::lock_exclusions(&mut tx).await?;
        let rows = sqlx::query(
            "SELECT id, target, start_ms, end_ms, reason, announced_at_ms FROM exclusions WHERE source = 'config'",
        )
        .fetch_all(tx.on())
        .await?;
        let mut stored = Vec::with_capacity(rows.len());
        for row in rows {
            let key = (
                row.try_get(1)?,
                row.try_get(2)?,
                row.try_get(3)?,
                row.try_get(4)?,
                row.try_get(5)?,
            );
            stored.push((row.try_get::<i64, _>(0)?, key));
        }
        let (delete, insert) = crate::store::changes::config_window_changes(stored, wanted);
        let targets: BTreeSet<String> = delete
            .iter()
            .map(|(_, key)| key.0.clone())
            .chain(insert.iter().map(|e| e.target.clone()))
            .collect();
        Self::lock_targets(&mut tx, &targets).await?;
        let mut changed: Vec<(String, ExclusionWindow)> = Vec::new();
        for (id, (target, start_ms, end_ms, _, _)) in delete {
            sqlx::query("DELETE FROM exclusions WHERE id = $1")
                .bind(id)
                .execute(tx.on())
                .await?;
            changed.push((
                target,
                ExclusionWindow {
                    start: millis_to_instant(start_ms)?,
                    end: millis_to_instant(end_ms)?,
                },
            ));
        }
        for exclusion in insert {
            sqlx::query(
                "INSERT INTO exclusions (target, start_ms, end_ms, reason, announced_at_ms, source, recorded_at_ms, recorded_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&exclusion.target)
            .bind(exclusion.window.start.timestamp_millis())
            .bind(exclusion.window.end.timestamp_millis())
            .bind(&exclusion.reason)
            .bind(exclusion.announced_at.map(|a| a.timestamp_millis()))
            .bind(ExclusionSource::Config.as_str())
            .bind(now.timestamp_millis())
            .bind(recorded_by)
            .execute(tx.on())
            .await?;
            changed.push((exclusion.target.clone(), exclusion.window));
        }
        for (target, window) in changed {
            Self::redecide_range(&mut tx, &target, window.minutes()).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn add_exclusion(&self, e: &NewExclusion) -> StoreResult<i64> {
        let mut tx = self.begin_write().await?;
        Self::lock_exclusions(&mut tx).await?;
        Self::lock_targets(&mut tx, &BTreeSet::from([e.target.clone()])).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO exclusions (target, start_ms, end_ms, reason, announced_at_ms, source, recorded_at_ms, recorded_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(&e.target)
        .bind(e.window.start.timestamp_millis())
        .bind(e.window.end.timestamp_millis())
        .bind(&e.reason)
        .bind(e.announced_at.map(|a| a.timestamp_millis()))
        .bind(ExclusionSource::Cli.as_str())
        .bind(e.recorded_at.timestamp_millis())
        .bind(&e.recorded_by)
        .fetch_one(tx.on())
        .await?;
        Self::redecide_range(&mut tx, &e.target, e.window.minutes()).await?;
        tx.commit().await?;
        Ok(id)
    }

    pub(super) async fn remove_exclusion(&self, id: i64) -> StoreResult<Option<StoredExclusion>> {
        let Some(found) = self
            .exclusions(None)
            .await?
            .into_iter()
            .find(|e| e.id == id)
        else {
            return Ok(None);
        };
        if found.source != ExclusionSource::Cli {
            return Err(anyhow::anyhow!(
                "exclusion {id} comes from the config file; remove it from [[exclusions]] there"
            )
            .into());
        }
        let mut tx = self.begin_write().await?;
        Self::lock_exclusions(&mut tx).await?;
        Self::lock_targets(&mut tx, &BTreeSet::from([found.target.clone()])).await?;
        sqlx::query("DELETE FROM exclusions WHERE id = $1")
            .bind(id)
            .execute(tx.on())
            .await?;
        Self::redecide_range(&mut tx, &found.target, found.window.minutes()).await?;
        tx.commit().await?;
        Ok(Some(found))
    }

    pub(super) async fn exclusions(&self, target: Option<&str>) -> StoreResult<Vec<StoredExclusion>> {
        let rows = sqlx::query(
            "SELECT id, target, start_ms, end_ms, reason, announced_at_ms, source, recorded_at_ms, recorded_by \
             FROM exclusions WHERE $1 IS NULL OR target = $1 ORDER BY start_ms, id",
        )
        .bind(target)
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|r| {
                let source: String = r.try_get(6)?;
                Ok(StoredExclusion {
                    id: r.try_get(0)?,
                    target: r.try_get(1)?,
                    window: ExclusionWindow {
                        start: millis_to_instant(r.try_get(2)?)?,
                        end: millis_to_instant(r.try_get(3)?)?,
                    },
                    reason: r.try_get(4)?,
                    announced_at: r
                        .try_get::<Option<i64>, _>(5)?
                        .map(millis_to_instant)
                        .transpose()?,
                    source: ExclusionSource::parse(&source),
                    recorded_at: millis_to_instant(r.try_get(7)?)?,
                    recorded_by: r.try_get(8)?,
                })
            })
            .collect()
    }
}
