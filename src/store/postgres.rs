//! PostgreSQL, for several probers in several regions sharing one store.

use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Pool, Postgres};

use super::redact_url;
use super::shared::shared_store;

/// How long to wait for a connection before reporting the database unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct PostgresStore {
    pool: Pool<Postgres>,
}

impl PostgresStore {
    const BEGIN_WRITE: &'static str = "BEGIN";
    /// One transaction-scoped advisory lock serialises writers across all
    /// probers: a minute's verdict is re-decided by one writer at a time, after
    /// the previous writer's buckets are committed, so none is lost or counted
    /// twice. The key is arbitrary but fixed ("improbe" in ASCII).
    const LOCK_WRITERS: Option<&'static str> =
        Some("SELECT pg_advisory_xact_lock(29675202278285925)");
    const SAVE_SERVICE_MONTH: &'static str = "INSERT INTO service_months (target, month, first_day, last_day, starts_at, ends_at, \
         total_minutes, available_minutes, failure_minutes, excluded_minutes, no_data_minutes, availability_percent, \
         meets_commitment, credit_percent, credit_amount, currency, claim_opens, claim_deadline, complete, updated_at) \
         VALUES ($1, CAST($2 AS INTEGER), CAST($3 AS DATE), CAST($4 AS DATE), CAST($5 AS TIMESTAMPTZ), CAST($6 AS TIMESTAMPTZ), \
         $7, $8, $9, $10, $11, CAST($12 AS NUMERIC), $13 <> 0, CAST($14 AS INTEGER), CAST($15 AS NUMERIC), $16, \
         CAST($17 AS TIMESTAMPTZ), CAST($18 AS TIMESTAMPTZ), $19 <> 0, CAST($20 AS TIMESTAMPTZ)) \
         ON CONFLICT (target, month) DO UPDATE SET first_day = excluded.first_day, last_day = excluded.last_day, \
         starts_at = excluded.starts_at, ends_at = excluded.ends_at, total_minutes = excluded.total_minutes, \
         available_minutes = excluded.available_minutes, failure_minutes = excluded.failure_minutes, \
         excluded_minutes = excluded.excluded_minutes, no_data_minutes = excluded.no_data_minutes, \
         availability_percent = excluded.availability_percent, meets_commitment = excluded.meets_commitment, \
         credit_percent = excluded.credit_percent, credit_amount = excluded.credit_amount, currency = excluded.currency, \
         claim_opens = excluded.claim_opens, claim_deadline = excluded.claim_deadline, complete = excluded.complete, \
         updated_at = excluded.updated_at";

    fn pool_options() -> PgPoolOptions {
        PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(CONNECT_TIMEOUT)
    }

    /// A store that connects on first use: for a daemon that starts while
    /// the database is down.
    pub fn connect_lazy(url: &str) -> anyhow::Result<Self> {
        let pool = Self::pool_options()
            .connect_lazy(url)
            .with_context(|| format!("invalid PostgreSQL URL `{}`", redact_url(url)))?;
        Ok(Self { pool })
    }

    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let pool = Self::pool_options().connect(url).await.with_context(|| {
            format!(
                "cannot connect to PostgreSQL at `{}`; check that it runs and the URL is right",
                redact_url(url)
            )
        })?;
        Ok(Self { pool })
    }
}

shared_store!(PostgresStore, Postgres, "postgres", "migrations/postgres");
