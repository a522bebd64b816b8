//! What one backend's SQL says differently ([`Dialect`]), which
//! `sqlite.rs` and `postgres/` implement; the rest is `SqlStore`'s.

use sqlx::Database;
use sqlx::database::HasStatementCache;
use sqlx::migrate::Migrator;

/// What one backend's SQL says differently; the rest is `SqlStore`'s.
pub trait Dialect: Database + HasStatementCache {
    /// `Store::backend`: "sqlite" or "postgres".
    const BACKEND: &'static str;
    /// Starts a write transaction.
    const BEGIN_WRITE: &'static str;
    /// Starts a read-only transaction whose reads all see one snapshot.
    const BEGIN_SNAPSHOT: &'static str;
    /// Takes the per-target locks of a JSON list of names, in one fixed
    /// order; `None` where the database admits one writer at a time.
    const LOCK_TARGETS: Option<&'static str>;
    /// The targets with pending minutes whose locks are free now.
    const TRY_LOCK_PENDING_TARGETS: &'static str;
    /// Serialises changes to the exclusion windows; `None` as for targets.
    const LOCK_EXCLUSIONS: Option<&'static str>;
    /// A whole write in one statement, where the dialect can.
    const STORE_AT_ONCE: Option<&'static str>;
    /// Whether the daemon's writes leave re-decision to the settle loop.
    const DEFER_REDECISION: bool;
    /// The `service_months` upsert, with the dialect's casts.
    const SAVE_SERVICE_MONTH: &'static str;
    /// Each table's bytes on disk, indexes included: rows of (name, bytes).
    const TABLE_BYTES: &'static str;
    /// The whole database's bytes on disk.
    const DATABASE_BYTES: &'static str;
    /// Answers non-zero when the database must be converted once before
    /// [`Self::RECLAIM_STEP`] can give space back.
    const NEEDS_CONVERSION: Option<&'static str>;
    /// That conversion.
    const CONVERT: &'static [&'static str];
    /// Gives some freed pages back to the file system, in a transaction of
    /// its own short enough for a writer to wait behind.
    const RECLAIM_STEP: Option<&'static str>;
    /// Pages freed and not given back yet.
    const FREE_PAGES: Option<&'static str>;
    /// Run once the pages are given back, beside the writes (on a reader's
    /// connection): the bulk of what [`Self::AFTER_RECLAIM`] would do while
    /// holding the writer.
    const BESIDE_WRITES_AFTER_RECLAIM: Option<&'static str>;
    /// Run once the pages are given back, on the write connection.
    const AFTER_RECLAIM: &'static [&'static str];
    /// Records and answers the indexes due a rebuild beside the writes
    /// (rows of: the index's name, quoted as SQL needs it; its table's),
    /// where an index can be rebuilt without blocking writers.
    const MINUTE_INDEXES_DUE: Option<&'static str>;
    /// Answers the invalid indexes of table $1 a rebuild that was
    /// interrupted left behind (rows of: the name, quoted).
    const INTERRUPTED_REBUILDS: Option<&'static str>;
    /// Whether the storage round packs the verdicts and buckets of settled
    /// hours (`packed.rs`).
    const PACKS_SETTLED_HOURS: bool;
    /// Gives back, beside the writes, the pages of the minute rows that
    /// packing emptied (run outside a transaction), where it packs.
    const TRIM_MINUTE_TABLES: Option<&'static str>;
    /// Creates the missing `attempts` partitions of the UTC days (since
    /// the epoch) of JSON array $1, where attempts are partitioned by day.
    const ENSURE_DAYS: Option<&'static str>;
    /// The names of the day partitions, where attempts are partitioned.
    const DAY_PARTITIONS: Option<&'static str>;
    /// Locks day partition $1 against writes, and against another storage
    /// round, until the transaction ends.
    const LOCK_DAY: Option<&'static str>;
    /// Replaces day partition $1 (days since the epoch) by a copy without
    /// its successes ($2 true) and without the attempts of the targets of
    /// the JSON object $3 (target -> milliseconds) that started before
    /// their instant. Answers the rows it had and the rows it kept.
    const REWRITE_DAY: Option<&'static str>;

    fn migrator() -> &'static Migrator;
    /// Taken before migrating, in the migrations' transaction, where the
    /// migrations run in one (`Self::migrator` takes no lock of its own);
    /// `None`: the migrator's own locking.
    const MIGRATION_LOCK: Option<&'static str>;
    /// Drops every prepared statement of the session, where statements
    /// can be prepared by name.
    const FORGET_PREPARED: Option<&'static str>;

    /// How many rows a statement changed (each driver has its own result type).
    fn rows_affected(result: Self::QueryResult) -> u64;
}
