//! The Store implementation both backends share: one implementation over
//! sqlx's `Database`, with what differs between the dialects (transaction
//! start, per-target locks, the one-statement write, the typed
//! `service_months` upsert, the migrations) in [`Dialect`], which
//! `sqlite.rs` and `postgres/` implement. Each file here holds one
//! concern: `writes.rs` (attempts in, buckets counted), `days.rs`
//! (partitions), `verdicts.rs`, `latency.rs`, `exclusions.rs`,
//! `months.rs`, `heartbeats.rs`, `outbox.rs`, `reads.rs` (attempts out),
//! `fold.rs`, `rollups.rs`, `packed.rs`, `space.rs` (storage over years) and
//! `store.rs` (the `Store` trait over them).
//!
//! Statements built with `QueryBuilder` hold a number of rows that varies
//! with the batch, so each row count is a statement of its own: only the
//! sizes that repeat are kept in sqlx's per-connection statement cache
//! (`keep_prepared`), where SQLite would otherwise hold every such prepared
//! program (tens of kilobytes for a batch) for as long as the cache does.

use std::collections::{BTreeSet, HashMap};

use sqlx::{Database, Decode, Encode, Row, Type};

use super::StoreResult;
use super::connection::{Db, Tx};

pub(super) mod dialect;
pub use dialect::Dialect;

/// A value both stored and read back: what every bound column type is.
pub trait Value<DB: Database>: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> {}

impl<DB: Database, T> Value<DB> for T where
    T: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>
{
}

/// The store on one backend: a pool for writes and one for reads, so
/// neither can starve the other.
pub struct SqlStore<DB: Database> {
    pub(super) pool: Db<DB>,
    pub(super) readers: Db<DB>,
    /// UTC days (since the epoch) whose `attempts` partition this process
    /// knows exists, where the dialect partitions by day.
    known_days: std::sync::Mutex<BTreeSet<i64>>,
    /// Target and prober names this process knows have an id (they are
    /// never deleted): a write whose names are all known adds none.
    pub(super) known_names: std::sync::Mutex<BTreeSet<(NameTable, String)>>,
}

/// The tables that give each name written with every attempt and minute
/// a small integer id (migration 0011).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum NameTable {
    Targets,
    Probers,
}

impl NameTable {
    pub(super) const ALL: [NameTable; 2] = [NameTable::Targets, NameTable::Probers];

    fn table(self) -> &'static str {
        match self {
            NameTable::Targets => "target_names",
            NameTable::Probers => "prober_names",
        }
    }
}

/// The ids of every target and prober name (small tables), read in the
/// transaction that binds them or reads rows carrying them: rows are
/// written and read with their ids, never joined with the names row by
/// row (a join per row made the storage round and reports a sixth slower).
#[derive(Default)]
pub(super) struct NameIds {
    targets: HashMap<String, i64>,
    probers: HashMap<String, i64>,
    target_names: HashMap<i64, String>,
    prober_names: HashMap<i64, String>,
}

impl NameIds {
    pub(super) fn target(&self, name: &str) -> StoreResult<i64> {
        Self::id(&self.targets, "target", name)
    }

    pub(super) fn prober(&self, name: &str) -> StoreResult<i64> {
        Self::id(&self.probers, "prober", name)
    }

    /// The name of the target with id `id`.
    pub(super) fn target_name(&self, id: i64) -> StoreResult<&str> {
        Self::name(&self.target_names, "target", id)
    }

    /// The name of the prober with id `id`.
    pub(super) fn prober_name(&self, id: i64) -> StoreResult<&str> {
        Self::name(&self.prober_names, "prober", id)
    }

    fn id(ids: &HashMap<String, i64>, what: &str, name: &str) -> StoreResult<i64> {
        Ok(*ids
            .get(name)
            .ok_or_else(|| anyhow::anyhow!("{what} {name:?} has no id in the database"))?)
    }

    fn name<'a>(names: &'a HashMap<i64, String>, what: &str, id: i64) -> StoreResult<&'a str> {
        Ok(names
            .get(&id)
            .ok_or_else(|| anyhow::anyhow!("no {what} name has the id {id} in the database"))?)
    }
}

/// The id of the target named by the statement's parameter `$n`, as an
/// SQL expression (defined before the modules below, which use it).
macro_rules! target_id {
    ($param:literal) => {
        concat!("(SELECT id FROM target_names WHERE name = ", $param, ")")
    };
}

/// The id of the prober named by the statement's parameter `$n`.
macro_rules! prober_id {
    ($param:literal) => {
        concat!("(SELECT id FROM prober_names WHERE name = ", $param, ")")
    };
}

impl<DB: Dialect> SqlStore<DB> {
    /// `unnamed`: every statement unprepared and in a transaction, for a
    /// pooler in transaction mode (`connection.rs`).
    pub(super) fn new(pool: sqlx::Pool<DB>, readers: sqlx::Pool<DB>, unnamed: bool) -> Self {
        SqlStore {
            pool: Db::new(pool, unnamed),
            readers: Db::new(readers, unnamed),
            known_days: Default::default(),
            known_names: Default::default(),
        }
    }
}

/// The bounds sqlx needs to run this folder's statements on `DB`. Rust does
/// not carry bounds on other types (`i64: Value<DB>`) from a trait to its
/// users, so every impl must state them: `sql_impl! { ... }` writes `impl
/// SqlStore` with them (each file here), and
/// `sql_impl! { Store; ... }` the `Store` impl.
macro_rules! sql_impl {
    (@with [$($head:tt)*] $($item:tt)*) => {
        $($head)*
        where
            DB: $crate::store::sql::Dialect,
            for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
            DB::Connection: sqlx::migrate::Migrate,
            DB::Arguments: sqlx::IntoArguments<DB>,
            i64: $crate::store::sql::Value<DB>,
            i16: $crate::store::sql::Value<DB>,
            Option<i16>: $crate::store::sql::Value<DB>,
            String: $crate::store::sql::Value<DB>,
            Vec<u8>: $crate::store::sql::Value<DB>,
            Option<i32>: $crate::store::sql::Value<DB>,
            Option<i64>: $crate::store::sql::Value<DB>,
            Option<String>: $crate::store::sql::Value<DB>,
            for<'a> &'a str: sqlx::Type<DB> + sqlx::Encode<'a, DB> + sqlx::Decode<'a, DB> + sqlx::ColumnIndex<DB::Row>,
            for<'a> Option<&'a str>: sqlx::Type<DB> + sqlx::Encode<'a, DB>,
            for<'a> &'a [u8]: sqlx::Type<DB> + sqlx::Encode<'a, DB> + sqlx::Decode<'a, DB>,
            usize: sqlx::ColumnIndex<DB::Row>,
        {
            $($item)*
        }
    };
    (Store; $($item:tt)*) => {
        $crate::store::sql::sql_impl! {
            @with [
                #[async_trait::async_trait]
                impl<DB> $crate::store::Store for $crate::store::sql::SqlStore<DB>
            ]
            $($item)*
        }
    };
    ($($item:tt)*) => {
        $crate::store::sql::sql_impl! {
            @with [impl<DB> $crate::store::sql::SqlStore<DB>]
            $($item)*
        }
    };
}

pub(crate) use sql_impl;

mod days;
mod exclusions;
mod fold;
mod heartbeats;
mod latency;
mod months;
mod outbox;
mod packed;
mod reads;
mod rollups;
mod space;
mod store;
mod verdicts;
mod writes;

sql_impl! {
    /// Starts a write transaction. It takes no lock shared by the
    /// fleet: what must happen one at a time takes the per-target
    /// locks of [`Self::lock_targets`] (docs/many-regions.md).
    pub(super) async fn begin_write(&self) -> StoreResult<Tx<'static, DB>> {
        Ok(self.pool.begin_with(DB::BEGIN_WRITE).await?)
    }

    /// Waits for the locks of `targets`, taken in one statement in
    /// one fixed order (so two callers cannot deadlock), held until
    /// the transaction ends. A target's verdicts and roll-up change
    /// only under its lock, so a re-decision reads what every
    /// earlier one wrote.
    pub(super) async fn lock_targets(tx: &mut Tx<'_, DB>, targets: &BTreeSet<String>) -> StoreResult<()> {
        if let (Some(lock), false) = (DB::LOCK_TARGETS, targets.is_empty()) {
            let list = serde_json::to_string(targets).map_err(anyhow::Error::from)?;
            sqlx::query(lock).bind(list).execute(tx.on()).await?;
        }
        Ok(())
    }

    /// The target and prober names of `batch` not known to have an id.
    pub(super) fn unknown_names(&self, batch: &[crate::attempt::Attempt]) -> BTreeSet<(NameTable, String)> {
        let known = self.known_names.lock().expect("not poisoned");
        let mut unknown = BTreeSet::new();
        for a in batch {
            for key in [(NameTable::Targets, &a.target), (NameTable::Probers, &a.prober)] {
                let key = (key.0, key.1.clone());
                if !known.contains(&key) {
                    unknown.insert(key);
                }
            }
        }
        unknown
    }

    /// Gives each of `names` in `table` an id, on `executor`: the
    /// transaction that writes the rows naming them, or the pool. Two
    /// probers adding the same name meet on its unique key.
    pub(super) async fn add_names<'e, E: sqlx::Executor<'e, Database = DB>>(
        executor: E,
        table: NameTable,
        names: &BTreeSet<(NameTable, String)>,
    ) -> StoreResult<()> {
        let names: Vec<&str> = names
            .iter()
            .filter(|(t, _)| *t == table)
            .map(|(_, name)| name.as_str())
            .collect();
        if names.is_empty() {
            return Ok(());
        }
        let mut insert = sqlx::QueryBuilder::<DB>::new(format!("INSERT INTO {} (name) SELECT v.column1 FROM (", table.table()));
        insert.push_values(&names, |mut row, name| {
            row.push_bind(*name);
        });
        // Not a bare ON CONFLICT: PostgreSQL would take an identity value
        // for every insert that finds the name there.
        insert.push(format!(
            ") AS v WHERE NOT EXISTS (SELECT 1 FROM {0} WHERE {0}.name = v.column1) ON CONFLICT (name) DO NOTHING",
            table.table()
        ));
        insert.build().execute(executor).await?;
        Ok(())
    }

    /// Every name's id, as `executor` (a transaction) sees them, in one
    /// statement.
    pub(super) async fn name_ids<'e, E: sqlx::Executor<'e, Database = DB>>(executor: E) -> StoreResult<NameIds> {
        let rows = sqlx::query(
            "SELECT CAST(0 AS BIGINT), name, CAST(id AS BIGINT) FROM target_names \
             UNION ALL SELECT CAST(1 AS BIGINT), name, CAST(id AS BIGINT) FROM prober_names",
        )
        .fetch_all(executor)
        .await?;
        let mut ids = NameIds::default();
        for row in &rows {
            let table: i64 = row.try_get(0)?;
            let name: String = row.try_get(1)?;
            let id: i64 = row.try_get(2)?;
            let (by_name, by_id) = if table == 0 {
                (&mut ids.targets, &mut ids.target_names)
            } else {
                (&mut ids.probers, &mut ids.prober_names)
            };
            by_id.insert(id, name.clone());
            by_name.insert(name, id);
        }
        Ok(ids)
    }

    /// Records names whose ids are committed: they are never deleted, so
    /// a write naming only these adds none.
    pub(super) fn names_known(&self, names: BTreeSet<(NameTable, String)>) {
        self.known_names.lock().expect("not poisoned").extend(names);
    }
}
