//! The embedded default: one SQLite file, created on first use.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::Sqlite;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};

use super::sql::{Dialect, SqlStore};

/// Each connection's page cache, in KiB (negative: a size, not a page
/// count). SQLite's default is 2,000 KiB per connection; the daemon's three
/// connections touch a few hundred pages each, and the operating system
/// caches the file anyway (docs/performance.md, memory).
const PAGE_CACHE: &str = "-512";

/// How long a writer waits for another to finish before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The store on SQLite ([`SqlStore`] over [`Dialect`]).
pub type SqliteStore = SqlStore<Sqlite>;

impl Dialect for Sqlite {
    const BACKEND: &'static str = "sqlite";
    /// `IMMEDIATE` takes the write lock up front, so a transaction that reads
    /// before it writes cannot fail half-way with `SQLITE_BUSY`.
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";
    /// In WAL mode a transaction reads one snapshot from its first read.
    const BEGIN_SNAPSHOT: &'static str = "BEGIN";
    /// SQLite admits one writer at a time already: no lock of our own.
    const LOCK_TARGETS: Option<&'static str> = None;
    const TRY_LOCK_PENDING_TARGETS: &'static str = "SELECT DISTINCT target FROM pending_minutes";
    const LOCK_EXCLUSIONS: Option<&'static str> = None;
    /// SQLite has no data-modifying `WITH`; its round trips are function
    /// calls, so the write runs statement by statement.
    const STORE_AT_ONCE: Option<&'static str> = None;
    /// One writer at a time whatever we do: the daemon's write re-decides
    /// its minutes in its own transaction, which saves a second one.
    const DEFER_REDECISION: bool = false;
    const SAVE_SERVICE_MONTH: &'static str = "INSERT INTO service_months (target, month, first_day, last_day, starts_at, ends_at, \
         total_minutes, available_minutes, failure_minutes, excluded_minutes, no_data_minutes, availability_percent, \
         meets_commitment, credit_percent, credit_amount, currency, claim_opens, claim_deadline, complete, updated_at, \
         contract, unit_minutes, total_units, down_units, excluded_units, no_data_units, available_units) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, \
         $21, $22, $23, $24, $25, $26, $27) \
         ON CONFLICT (target, month) DO UPDATE SET first_day = excluded.first_day, last_day = excluded.last_day, \
         starts_at = excluded.starts_at, ends_at = excluded.ends_at, total_minutes = excluded.total_minutes, \
         available_minutes = excluded.available_minutes, failure_minutes = excluded.failure_minutes, \
         excluded_minutes = excluded.excluded_minutes, no_data_minutes = excluded.no_data_minutes, \
         availability_percent = excluded.availability_percent, meets_commitment = excluded.meets_commitment, \
         credit_percent = excluded.credit_percent, credit_amount = excluded.credit_amount, currency = excluded.currency, \
         claim_opens = excluded.claim_opens, claim_deadline = excluded.claim_deadline, complete = excluded.complete, \
         updated_at = excluded.updated_at, contract = excluded.contract, unit_minutes = excluded.unit_minutes, \
         total_units = excluded.total_units, down_units = excluded.down_units, excluded_units = excluded.excluded_units, \
         no_data_units = excluded.no_data_units, available_units = excluded.available_units";

    const TABLE_BYTES: &'static str = "SELECT m.tbl_name, CAST(SUM(d.pgsize) AS BIGINT) FROM dbstat AS d \
         JOIN sqlite_master AS m ON m.name = d.name GROUP BY m.tbl_name";
    const DATABASE_BYTES: &'static str =
        "SELECT CAST(page_count * page_size AS BIGINT) FROM pragma_page_count, pragma_page_size";
    /// A file created before incremental auto-vacuum was set keeps the
    /// mode it was made with until it is rebuilt once.
    const NEEDS_CONVERSION: Option<&'static str> =
        Some("SELECT CAST(auto_vacuum <> 2 AS BIGINT) FROM pragma_auto_vacuum");
    const CONVERT: &'static [&'static str] = &["PRAGMA auto_vacuum = INCREMENTAL", "VACUUM"];
    /// 256 pages (1 MiB) a step: a step moves pages from the file's end into
    /// the freed ones, 90 to 200 µs a page, holding the one writer. All of a
    /// month's folded pages at once held it 27 s, 1,024 a step up to 207 ms
    /// (bench/storage.sh 30 10, statements timed with
    /// IMPROBE_LOG=sqlx::query=debug).
    const RECLAIM_STEP: Option<&'static str> = Some("PRAGMA incremental_vacuum(256)");
    const FREE_PAGES: Option<&'static str> =
        Some("SELECT CAST(freelist_count AS BIGINT) FROM pragma_freelist_count");
    /// The write-ahead log copied into the file without waiting for (or
    /// holding up) the writer, so that the truncating checkpoint after it,
    /// which does, has little left to copy.
    const BESIDE_WRITES_AFTER_RECLAIM: Option<&'static str> =
        Some("PRAGMA wal_checkpoint(PASSIVE)");
    /// Then what is left of the log folded in and the log truncated, so the
    /// file's size is what it holds.
    const AFTER_RECLAIM: &'static [&'static str] = &["PRAGMA wal_checkpoint(TRUNCATE)"];
    /// No index can be rebuilt beside the one writer; SQLite's pages
    /// hold integers in as few bytes as they need.
    const MINUTE_INDEXES_DUE: Option<&'static str> = None;
    const INTERRUPTED_REBUILDS: Option<&'static str> = None;

    /// Its small rows are compact already (docs/database.md).
    const PACKS_SETTLED_HOURS: bool = false;
    const TRIM_MINUTE_TABLES: Option<&'static str> = None;
    /// One file, one table: no partitions. Folding and pruning delete
    /// rows, and incremental auto-vacuum gives their pages back.
    const ENSURE_DAYS: Option<&'static str> = None;
    const DAY_PARTITIONS: Option<&'static str> = None;
    const LOCK_DAY: Option<&'static str> = None;
    const REWRITE_DAY: Option<&'static str> = None;

    fn migrator() -> &'static Migrator {
        static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");
        &MIGRATOR
    }
    /// One writer at a time already.
    const MIGRATION_LOCK: Option<&'static str> = None;
    /// Statements are the connection's own.
    const FORGET_PREPARED: Option<&'static str> = None;

    fn rows_affected(result: sqlx::sqlite::SqliteQueryResult) -> u64 {
        result.rows_affected()
    }
}

/// Whether a pooled connection can be handed out: not one left inside a
/// transaction. A COMMIT that fails for lack of disk space leaves SQLite's
/// connection in its transaction (and every later `BEGIN` on it failing);
/// such a connection is closed and a fresh one opened instead.
fn usable(conn: &mut sqlx::SqliteConnection) -> bool {
    use sqlx::Connection;
    let clean = !conn.is_in_transaction();
    if !clean {
        tracing::warn!("a database connection was left inside a failed transaction: replaced");
    }
    clean
}

impl SqlStore<Sqlite> {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .with_context(|| format!("invalid SQLite URL `{url}`; use sqlite://PATH"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Space freed by folding and pruning can be given back
            // (`Store::reclaim_space`); takes effect in a new file.
            .auto_vacuum(SqliteAutoVacuum::Incremental)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .pragma("cache_size", PAGE_CACHE)
            .foreign_keys(true);
        // One write connection: a file admits one writer at a time whatever
        // the pool's size, so the writes queue here, in order, instead of
        // each extra connection waiting in SQLite's busy handler with a page
        // cache and a thread of its own (docs/performance.md, memory). Reads
        // go to `readers`, which WAL runs beside the write; an in-memory
        // database exists once per connection, so there they share the one.
        let in_memory = url.contains(":memory:");
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            // An in-memory database lives and dies with its one connection.
            .before_acquire(move |conn, _| Box::pin(async move { Ok(in_memory || usable(conn)) }))
            .connect_with(options.clone())
            .await
            .with_context(|| {
                format!("cannot open SQLite database `{url}`; check the path and its permissions")
            })?;
        let readers = if in_memory {
            pool.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(2)
                .before_acquire(|conn, _| Box::pin(async move { Ok(usable(conn)) }))
                .connect_lazy_with(options)
        };
        Ok(SqlStore::new(pool, readers, false))
    }
}

#[cfg(test)]
mod tests {
    use sqlx::{AssertSqlSafe, Row};

    use super::*;
    use crate::minute::Minute;
    use crate::store::{MINUTE_CHUNK, Store};

    /// The re-decision reads each minute it is handed through the primary
    /// keys: a full scan would cost every write the size of the whole
    /// history. The plan is the bundled SQLite's (the machine's own SQLite
    /// shell may plan the same text differently).
    #[tokio::test]
    async fn the_redecision_reads_its_minutes_by_primary_key() {
        let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        for minutes in [1, 3, MINUTE_CHUNK] {
            let chunk: Vec<(String, Minute)> = (0..minutes)
                .map(|i| (format!("t{}", i % 3), Minute(i as i64)))
                .collect();
            for (table, query) in [
                ("minute_buckets", SqliteStore::bucket_sums_query(&chunk)),
                ("verdicts", SqliteStore::verdicts_query(&chunk)),
            ] {
                let plan = format!("EXPLAIN QUERY PLAN {}", query.sql().as_str());
                let details: Vec<String> = sqlx::raw_sql(AssertSqlSafe(plan))
                    .fetch_all(&store.pool)
                    .await
                    .unwrap()
                    .iter()
                    .map(|row| row.get::<String, _>("detail"))
                    .collect();
                let reads: Vec<&String> = details.iter().filter(|d| d.contains(table)).collect();
                assert!(
                    !reads.is_empty()
                        && reads.iter().all(|d| d.starts_with("SEARCH")
                            && d.contains("PRIMARY KEY (target_id=? AND minute=?")),
                    "{table}, {minutes} minutes: {details:?}"
                );
            }
        }
    }
}
