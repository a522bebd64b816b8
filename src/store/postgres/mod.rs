//! PostgreSQL, for several probers in several regions sharing one store.

use std::time::Duration;

use sqlx::Postgres;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;

use super::sql::{Dialect, SqlStore};
use super::{StoreError, redact_url};
use crate::config::Pooler;

mod url;

pub use url::connect_options;

/// How long to wait for a connection before reporting the database unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A prober cut off in the middle of a transaction (its region lost the
/// network, its process froze) would otherwise hold its targets' locks until
/// the server notices the connection is gone, hours later with default TCP
/// keepalives: the server ends such a session after 10 s idle in a
/// transaction, and its locks go with it. None of our transactions waits
/// this long between statements. Set in each transaction, not for the
/// session: behind a pooler in transaction mode a session setting would stay
/// on whichever server connection ran it, and PgBouncer refuses it as a
/// startup parameter.
macro_rules! idle_in_transaction_limit {
    () => {
        "SET LOCAL idle_in_transaction_session_timeout = '10s'"
    };
}
/// The writer, the re-decision and one more (heartbeats, outbox, months).
const WRITE_CONNECTIONS: u32 = 3;
/// The decider and the HTTP surface's copies.
const READ_CONNECTIONS: u32 = 2;

/// The store on PostgreSQL ([`SqlStore`] over [`Dialect`]).
pub type PostgresStore = SqlStore<Postgres>;

// The one-statement write and migration 0012 spell the span out.
const _: () = assert!(crate::attempt::rollup::FOLD_SPAN_MINUTES == 10);

impl Dialect for Postgres {
    const BACKEND: &'static str = "postgres";
    const BEGIN_WRITE: &'static str = concat!("BEGIN; ", idle_in_transaction_limit!());
    const BEGIN_SNAPSHOT: &'static str = concat!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; ",
        idle_in_transaction_limit!()
    );
    /// Per-target transaction-scoped advisory locks, from a JSON list of
    /// target names, taken in one statement in the order of their keys, so
    /// that two transactions locking overlapping targets cannot deadlock. A
    /// target's verdicts are re-decided by one prober at a time; probers
    /// re-deciding different targets never wait for each other (docs/many-regions.md
    /// "Many regions"). Two names sharing a hash only share a lock.
    const LOCK_TARGETS: Option<&'static str> = Some(
        "SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtextextended('improbe:' || t, 0) AS k \
         FROM json_array_elements_text(CAST($1 AS json)) AS t ORDER BY k) AS keys",
    );
    /// The targets with pending minutes whose locks are free now; a busy
    /// one is left to the prober re-deciding it (`try` never waits).
    const TRY_LOCK_PENDING_TARGETS: &'static str = "SELECT target FROM (SELECT DISTINCT target FROM pending_minutes) AS p \
         WHERE pg_try_advisory_xact_lock(hashtextextended('improbe:' || target, 0))";
    /// Changes to the exclusion windows, one at a time. The key is arbitrary
    /// but fixed ("improbe" in ASCII).
    const LOCK_EXCLUSIONS: Option<&'static str> =
        Some("SELECT pg_advisory_xact_lock(29675202278285925)");
    /// A whole write in one statement, so one round trip whatever the
    /// batch (its names have ids already, `SqlStore::add_names`): the
    /// attempts (a JSON array, so the statement's text never
    /// changes and stays prepared; kind, outcome and delivery as the codes
    /// of migration 0009), what the new ones add to their prober's
    /// buckets, their minutes marked pending, and the watermark ($2, $3,
    /// $4; NULL for none). Only the rows `INSERT ... RETURNING` reports as
    /// new are counted, so a replayed attempt is neither stored nor counted
    /// twice, and a success whose prober's minute is folded already
    /// (`folded_spans`, `FOLD_SPAN_MINUTES` a row, written out below as
    /// migration 0012 does) is taken as stored, as the SQLite path
    /// does (`SqlStore::already_folded`). Each attempt carries its minute as Rust computed it
    /// (`Attempt::minute`); the counting by outcome, and of slow `ok`
    /// against `latency_rules`, is the same as `changes::bucket_counts`,
    /// which the SQLite path and the contract tests use. Returns how many
    /// attempts were new and how many minutes they touched.
    const STORE_AT_ONCE: Option<&'static str> = Some(
        "WITH input AS (SELECT x.*, t.id AS target_id, p.id AS prober_id \
         FROM jsonb_to_recordset(CAST($1 AS jsonb)) AS x(target text, prober text, kind smallint, \
         started_at_ms bigint, minute bigint, latency_ms bigint, outcome smallint, http_status integer, error_code text, \
         error text, reason text, delivery smallint, delivered_ms bigint) \
         LEFT JOIN target_names AS t ON t.name = x.target LEFT JOIN prober_names AS p ON p.name = x.prober), \
         new AS (INSERT INTO attempts (target_id, prober_id, kind, started_at_ms, latency_ms, outcome, http_status, error_code, \
         error, reason, delivery, delivered_ms) SELECT target_id, prober_id, kind, started_at_ms, latency_ms, outcome, http_status, \
         error_code, error, reason, delivery, delivered_ms FROM input \
         WHERE NOT (outcome = 0 AND delivery IS DISTINCT FROM 1 AND EXISTS (SELECT 1 FROM folded_spans AS f \
         WHERE f.target_id = input.target_id AND f.first_minute = input.minute - input.minute % 10 \
         AND f.prober_id = input.prober_id AND (f.minutes >> CAST(input.minute % 10 AS INTEGER)) & 1 = 1)) \
         ON CONFLICT (target_id, started_at_ms, prober_id, kind) DO NOTHING \
         RETURNING target_id, prober_id, kind, started_at_ms, outcome, latency_ms), \
         counted AS (SELECT keyed.target, new.target_id, keyed.minute, new.prober_id, \
         COUNT(*) FILTER (WHERE new.outcome = 0) AS ok_attempts, \
         COUNT(*) FILTER (WHERE new.outcome = 1) AS fail_attempts, \
         COUNT(*) FILTER (WHERE new.outcome = 2) AS inconclusive_attempts, \
         COUNT(*) FILTER (WHERE new.outcome = 0 AND new.latency_ms > rules.slow_after_ms) AS slow_ok_attempts \
         FROM new JOIN (SELECT DISTINCT target, target_id, prober_id, kind, started_at_ms, minute FROM input) AS keyed \
         USING (target_id, prober_id, kind, started_at_ms) LEFT JOIN latency_rules AS rules ON rules.target = keyed.target \
         GROUP BY keyed.target, new.target_id, keyed.minute, new.prober_id), \
         buckets AS (INSERT INTO minute_buckets (target_id, minute, prober_id, ok_attempts, fail_attempts, inconclusive_attempts, \
         slow_ok_attempts) SELECT target_id, minute, prober_id, ok_attempts, fail_attempts, inconclusive_attempts, slow_ok_attempts \
         FROM counted ON CONFLICT (target_id, minute, prober_id) DO UPDATE SET \
         ok_attempts = minute_buckets.ok_attempts + excluded.ok_attempts, \
         fail_attempts = minute_buckets.fail_attempts + excluded.fail_attempts, \
         inconclusive_attempts = minute_buckets.inconclusive_attempts + excluded.inconclusive_attempts, \
         slow_ok_attempts = minute_buckets.slow_ok_attempts + excluded.slow_ok_attempts), \
         pending AS (INSERT INTO pending_minutes (target, minute) SELECT DISTINCT target, minute FROM counted), \
         mark AS (INSERT INTO prober_watermarks (prober, complete_until_ms, reported_at_ms) \
         SELECT CAST($2 AS text), CAST($3 AS bigint), CAST($4 AS bigint) WHERE CAST($2 AS text) IS NOT NULL \
         ON CONFLICT (prober) DO UPDATE SET reported_at_ms = excluded.reported_at_ms, \
         complete_until_ms = GREATEST(prober_watermarks.complete_until_ms, excluded.complete_until_ms)) \
         SELECT (SELECT COUNT(*) FROM new), (SELECT COUNT(*) FROM (SELECT DISTINCT target, minute FROM counted) AS m)",
    );
    /// The daemon's writes leave re-decision to the settle loop, so that a
    /// write never waits for another prober (docs/many-regions.md).
    const DEFER_REDECISION: bool = true;
    const SAVE_SERVICE_MONTH: &'static str = "INSERT INTO service_months (target, month, first_day, last_day, starts_at, ends_at, \
         total_minutes, available_minutes, failure_minutes, excluded_minutes, no_data_minutes, availability_percent, \
         meets_commitment, credit_percent, credit_amount, currency, claim_opens, claim_deadline, complete, updated_at, \
         contract, unit_minutes, total_units, down_units, excluded_units, no_data_units, available_units) \
         VALUES ($1, CAST($2 AS INTEGER), CAST($3 AS DATE), CAST($4 AS DATE), CAST($5 AS TIMESTAMPTZ), CAST($6 AS TIMESTAMPTZ), \
         $7, $8, $9, $10, $11, CAST($12 AS NUMERIC), $13 <> 0, CAST($14 AS INTEGER), CAST($15 AS NUMERIC), $16, \
         CAST($17 AS TIMESTAMPTZ), CAST($18 AS TIMESTAMPTZ), $19 <> 0, CAST($20 AS TIMESTAMPTZ), \
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

    /// A partitioned table's bytes are its partitions'.
    const TABLE_BYTES: &'static str = "SELECT c.relname::text, CAST(CASE WHEN c.relkind = 'p' THEN \
         (SELECT COALESCE(SUM(pg_total_relation_size(t.relid)), 0) FROM pg_partition_tree(c.oid) AS t) \
         ELSE pg_total_relation_size(c.oid) END AS BIGINT) FROM pg_class AS c \
         JOIN pg_namespace AS n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition";
    const DATABASE_BYTES: &'static str =
        "SELECT CAST(pg_database_size(current_database()) AS BIGINT)";
    /// Folding and retention replace or drop whole partitions, whose files
    /// go at once: nothing to convert or run afterwards.
    const NEEDS_CONVERSION: Option<&'static str> = None;
    const CONVERT: &'static [&'static str] = &[];
    const RECLAIM_STEP: Option<&'static str> = None;
    const FREE_PAGES: Option<&'static str> = None;
    const BESIDE_WRITES_AFTER_RECLAIM: Option<&'static str> = None;
    const AFTER_RECLAIM: &'static [&'static str] = &[];
    /// The minutes of many targets are appended in the middle of these
    /// keys' indexes, whose pages split half full: rebuilt, they hold
    /// 9/10 (on 3 days of 2 targets of bench/gen_history.py, `verdicts`'
    /// key went from 401 to 295 KB, `minute_buckets`' from 508 to 369).
    /// Once a table has grown by half since the last rebuild (or from
    /// 128 KB), or its key has grown to more than twice the table and
    /// 128 KB (its rows were packed away, `PACKS_SETTLED_HOURS`), its key
    /// is due again: an index never holds more than
    /// about a quarter more than rebuilt, and all the rebuilds together
    /// cost about three rebuilds of the table as it is now. One prober's
    /// round records the rebuild before it starts, so another's does not
    /// start it too.
    const MINUTE_INDEXES_DUE: Option<&'static str> = Some(
        "WITH sizes AS (SELECT c.relname::text AS relation, CAST(pg_relation_size(c.oid) AS BIGINT) AS heap_bytes, \
         CAST(pg_relation_size(i.indexrelid) AS BIGINT) AS index_bytes, \
         i.indexrelid::regclass::text AS index_name FROM pg_class AS c \
         JOIN pg_namespace AS n ON n.oid = c.relnamespace AND n.nspname = current_schema() \
         JOIN pg_index AS i ON i.indrelid = c.oid AND i.indisprimary \
         WHERE c.relname IN ('verdicts', 'minute_buckets')), \
         due AS (INSERT INTO index_rebuilds AS r (relation, heap_bytes, index_bytes) \
         SELECT relation, heap_bytes, index_bytes FROM sizes \
         WHERE heap_bytes >= 131072 OR index_bytes >= 2 * heap_bytes + 131072 \
         ON CONFLICT (relation) DO UPDATE SET heap_bytes = excluded.heap_bytes, index_bytes = excluded.index_bytes \
         WHERE excluded.heap_bytes >= r.heap_bytes + r.heap_bytes / 2 \
         OR excluded.index_bytes >= 2 * excluded.heap_bytes + 131072 RETURNING relation) \
         SELECT sizes.index_name, sizes.relation FROM sizes JOIN due USING (relation) ORDER BY 2",
    );
    const INTERRUPTED_REBUILDS: Option<&'static str> = Some(
        "SELECT i.indexrelid::regclass::text FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indrelid \
         JOIN pg_namespace AS n ON n.oid = c.relnamespace AND n.nspname = current_schema() \
         WHERE c.relname = $1 AND NOT i.indisvalid",
    );

    /// A verdict or bucket row costs about 100 bytes with its key; a
    /// packed minute 10 and 8 (migration 0014).
    const PACKS_SETTLED_HOURS: bool = true;
    /// Packing empties the oldest pages of the tables, which a vacuum
    /// cuts off their end (where the hours packed were the last rows);
    /// elsewhere the rows of the hours to come reuse them. It skips the
    /// pages nothing changed in, and never makes a writer wait.
    const TRIM_MINUTE_TABLES: Option<&'static str> = Some("VACUUM verdicts, minute_buckets");
    /// Attempts live in one partition per UTC day (migration 0008).
    const ENSURE_DAYS: Option<&'static str> = Some(
        "SELECT improbe_attempt_days(ARRAY(SELECT CAST(d AS BIGINT) FROM json_array_elements_text(CAST($1 AS json)) AS d))",
    );
    const DAY_PARTITIONS: Option<&'static str> = Some(
        "SELECT c.relname::text FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid \
         WHERE i.inhparent = to_regclass('attempts') ORDER BY c.relname",
    );
    /// SHARE: readers go on, writers of that day wait. The advisory lock
    /// orders two storage rounds (the key is fixed, "improbe" + 2).
    const LOCK_DAY: Option<&'static str> =
        Some("SELECT pg_advisory_xact_lock(29675202278285927), improbe_lock_day(CAST($1 AS text))");
    const REWRITE_DAY: Option<&'static str> =
        Some("SELECT * FROM improbe_rewrite_day($1, $2 <> 0, CAST($3 AS jsonb))");

    fn migrator() -> &'static Migrator {
        static MIGRATOR: Migrator = {
            let mut migrator = sqlx::migrate!("migrations/postgres");
            migrator.locking = false;
            migrator
        };
        &MIGRATOR
    }
    /// "improbe" + 4, like the other advisory keys.
    const MIGRATION_LOCK: Option<&'static str> =
        Some("SELECT pg_advisory_xact_lock(29675202278285929)");
    const FORGET_PREPARED: Option<&'static str> = Some("DEALLOCATE ALL");

    fn rows_affected(result: sqlx::postgres::PgQueryResult) -> u64 {
        result.rows_affected()
    }
}

impl SqlStore<Postgres> {
    /// Writes and reads have pools of their own, so a slow report never
    /// holds the connection a write needs, nor a write a scrape's copy.
    fn pool_options(connections: u32) -> PgPoolOptions {
        PgPoolOptions::new()
            .max_connections(connections)
            .acquire_timeout(CONNECT_TIMEOUT)
    }

    /// A store that connects on first use: for a daemon that starts while
    /// the database is down.
    pub fn connect_lazy(url: &str, pooler: Pooler) -> anyhow::Result<Self> {
        let options = url::connect_options(url)?;
        Ok(SqlStore::new(
            Self::pool_options(WRITE_CONNECTIONS).connect_lazy_with(options.clone()),
            Self::pool_options(READ_CONNECTIONS).connect_lazy_with(options),
            pooler == Pooler::Transaction,
        ))
    }

    pub async fn connect(url: &str, pooler: Pooler) -> anyhow::Result<Self> {
        let options = url::connect_options(url)?;
        let pool = Self::pool_options(WRITE_CONNECTIONS)
            .connect_with(options.clone())
            .await
            .map_err(|e| {
                let error = StoreError::from(e);
                let hint = match &error {
                    StoreError::Tls(..) => "",
                    StoreError::Unreachable(_) => "; check that it runs and the URL is right",
                    // pg_hba.conf has `hostssl` lines only for us.
                    StoreError::Refused(e) if e.to_string().contains("no encryption") => {
                        "; it takes TLS connections only: set the URL's sslmode \
                         (verify-full, with sslrootcert, is the one that checks whom it talks to)"
                    }
                    _ => "; check the URL, the user and its rights",
                };
                anyhow::Error::from(error).context(format!(
                    "cannot connect to PostgreSQL at `{}`{hint}",
                    redact_url(url)
                ))
            })?;
        Ok(SqlStore::new(
            pool,
            Self::pool_options(READ_CONNECTIONS).connect_lazy_with(options),
            pooler == Pooler::Transaction,
        ))
    }
}
