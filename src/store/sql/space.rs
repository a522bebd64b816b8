//! What the database costs on disk, and giving freed space back.

use std::collections::HashMap;

use sqlx::{AssertSqlSafe, Row};

use chrono::{DateTime, Utc};

use crate::store::{StoreResult, TableUse};

sql_impl! {
    /// Each table's bytes on disk and rows, and the rows it gained since
    /// `since` (where it has a time column).
    pub(super) async fn table_use(
        &self,
        since: DateTime<Utc>,
    ) -> StoreResult<(Vec<TableUse>, i64)> {
        let bytes: HashMap<String, i64> = sqlx::query(DB::TABLE_BYTES)
            .fetch_all(&self.readers)
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, sqlx::Error>>()?;
        let ms = since.timestamp_millis();
        let minute = ms.div_euclid(60_000);
        let mut tables = Vec::new();
        for (table, recent_column, since_value) in [
            ("attempts", Some("started_at_ms"), ms),
            ("minute_buckets", Some("minute"), minute),
            ("verdicts", Some("minute"), minute),
            ("verdict_hours", Some("hour"), minute.div_euclid(60)),
            ("folded_spans", Some("first_minute"), minute),
            ("packed_verdicts", Some("hour"), minute.div_euclid(60)),
            ("packed_buckets", Some("hour"), minute.div_euclid(60)),
            ("prober_heartbeats", Some("minute"), minute),
            ("notifications", Some("created_at_ms"), ms),
            ("pending_minutes", None, 0),
            ("exclusions", None, 0),
            ("service_months", None, 0),
            ("latency_rules", None, 0),
            ("prober_watermarks", None, 0),
            ("fold_horizons", None, 0),
        ] {
            if table.starts_with("packed_") && !DB::PACKS_SETTLED_HOURS {
                continue;
            }
            let rows: i64 = // The names are this list's own, never input.
            sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM {table}"
            )))
            .fetch_one(&self.readers)
            .await?;
            let recent_rows = match recent_column {
                Some(column) => Some(
                    sqlx::query_scalar::<_, i64>(AssertSqlSafe(format!(
                        "SELECT CAST(COUNT(*) AS BIGINT) FROM {table} WHERE {column} >= $1"
                    )))
                    .bind(since_value)
                    .fetch_one(&self.readers)
                    .await?,
                ),
                None => None,
            };
            tables.push(TableUse {
                table: table.to_owned(),
                bytes: bytes.get(table).copied().unwrap_or(0),
                rows,
                recent_rows,
            });
        }
        let database: i64 = sqlx::query_scalar(DB::DATABASE_BYTES)
            .fetch_one(&self.readers)
            .await?;
        Ok((tables, database))
    }

    /// Gives the pages freed by folding and pruning back to the file
    /// system, where the backend needs a statement for it, a step at a
    /// time so that writes go on between steps. Returns the longest step.
    pub(super) async fn reclaim(&self) -> StoreResult<std::time::Duration> {
        let mut longest = std::time::Duration::ZERO;
        if let Some(check) = DB::NEEDS_CONVERSION {
            let needed: i64 = sqlx::query_scalar(check).fetch_one(&self.pool).await?;
            if needed != 0 {
                let started = std::time::Instant::now();
                let mut conn = self.pool.acquire().await?;
                for statement in DB::CONVERT {
                    sqlx::query(*statement).execute(&mut *conn).await?;
                }
                longest = started.elapsed();
            }
        }
        if let (Some(step), Some(free)) = (DB::RECLAIM_STEP, DB::FREE_PAGES) {
            loop {
                let pages: i64 = sqlx::query_scalar(free).fetch_one(&self.pool).await?;
                if pages == 0 {
                    break;
                }
                let started = std::time::Instant::now();
                sqlx::query(step).execute(&self.pool).await?;
                longest = longest.max(started.elapsed());
            }
        }
        if let Some(statement) = DB::BESIDE_WRITES_AFTER_RECLAIM {
            sqlx::query(statement).execute(&self.readers).await?;
        }
        for statement in DB::AFTER_RECLAIM {
            let started = std::time::Instant::now();
            sqlx::query(*statement).execute(&self.pool).await?;
            longest = longest.max(started.elapsed());
        }
        self.rebuild_minute_indexes().await?;
        Ok(longest)
    }

    /// Trims the minute tables (`TRIM_MINUTE_TABLES`) and rebuilds the
    /// indexes the dialect's `MINUTE_INDEXES_DUE` names, beside the writes,
    /// after dropping what an interrupted rebuild left.
    pub(super) async fn rebuild_minute_indexes(&self) -> StoreResult<()> {
        if let Some(trim) = DB::TRIM_MINUTE_TABLES {
            let started = std::time::Instant::now();
            sqlx::raw_sql(trim).execute(self.pool.outside_transactions()).await?;
            tracing::info!(took_ms = started.elapsed().as_millis() as u64, "minute tables trimmed beside the writes");
        }
        let (Some(due), Some(interrupted)) = (DB::MINUTE_INDEXES_DUE, DB::INTERRUPTED_REBUILDS) else {
            return Ok(());
        };
        let rebuilds: Vec<(String, String)> = sqlx::query_as(due).fetch_all(&self.pool).await?;
        for (index, table) in rebuilds {
            let left: Vec<String> = sqlx::query_scalar(interrupted).bind(&table).fetch_all(&self.pool).await?;
            for name in left {
                // Names read from the catalog, quoted by it.
                sqlx::raw_sql(AssertSqlSafe(format!("DROP INDEX CONCURRENTLY IF EXISTS {name}")))
                    .execute(self.pool.outside_transactions())
                    .await?;
            }
            let started = std::time::Instant::now();
            sqlx::raw_sql(AssertSqlSafe(format!("REINDEX INDEX CONCURRENTLY {index}")))
                .execute(self.pool.outside_transactions())
                .await?;
            tracing::info!(index = %index, took_ms = started.elapsed().as_millis() as u64, "rebuilt beside the writes");
        }
        Ok(())
    }
}
