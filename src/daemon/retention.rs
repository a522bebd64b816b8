//! The storage round (docs/operations.md "Retention"): successes older
//! than the raw window are folded into per-minute rollups, raw attempts
//! and rollups past `attempts_retention_days` are pruned, but never before
//! the claim deadline of their Service Month has passed by 30 days, so the
//! evidence behind a claim outlives the claim, and the space is given
//! back. Minute buckets, verdicts and monthly figures are kept for ever.
//! The daemon runs it every [`STORAGE_ROUND_INTERVAL`]; `improbe compact`
//! runs it once.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::config::{Config, Target};
use crate::minute::Minute;
use crate::store::Store;

/// Evidence is kept this long after a month's claim deadline.
pub const KEEP_AFTER_CLAIM_DEADLINE_DAYS: i64 = 30;
/// How often the daemon runs the storage round: a day's successes fold
/// within an hour of leaving the raw window.
pub const STORAGE_ROUND_INTERVAL: Duration = Duration::from_secs(3_600);

/// Attempts of `target` that started before the returned instant may be
/// deleted; `None`: nothing may be deleted yet.
pub fn prune_before(
    target: &Target,
    retention_days: u32,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    // Checked: a retention reaching back before the calendar's start keeps everything.
    let by_age = now.checked_sub_signed(chrono::Duration::days(i64::from(retention_days)))?;
    let calendar = &target.sla.calendar;
    // The end of the last Service Month whose claim is settled: every month
    // before it is settled too, since deadlines only move forward.
    let mut settled_until = None;
    for index in 1.. {
        let Some(month) = calendar.month(index) else {
            break;
        };
        let claim = target.sla.claim_window(month.last_day);
        if claim.deadline.with_timezone(&Utc)
            + chrono::Duration::days(KEEP_AFTER_CLAIM_DEADLINE_DAYS)
            > now
        {
            break;
        }
        settled_until = Some(month.end.with_timezone(&Utc));
    }
    settled_until.map(|settled| settled.min(by_age))
}

/// Successes that started before the returned minute are folded: those
/// older than the raw window, in minutes that are settled (every prober's
/// attempts of them stored, none pending), so a minute is folded once.
pub fn fold_before(raw_window_days: u32, settled_end: Minute, now: DateTime<Utc>) -> Minute {
    let window_start = now - chrono::Duration::days(i64::from(raw_window_days));
    Minute::containing(&window_start).min(settled_end)
}

/// What one storage round did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RoundReport {
    /// Successful attempts folded into rollups.
    pub folded_attempts: u64,
    /// Rollups written or extended.
    pub rollups: u64,
    /// Raw attempts pruned past retention.
    pub pruned_attempts: u64,
    /// Target hours whose minute verdicts and buckets were packed.
    pub packed_hours: u64,
    /// The longest transaction of the round, in milliseconds.
    pub longest_transaction_ms: u128,
    /// The longest a write of fresh attempts could have waited behind the
    /// round, in milliseconds (`CompactSummary::longest_writer_wait`).
    pub longest_writer_wait_ms: u128,
    pub database_bytes_before: i64,
    pub database_bytes_after: i64,
    pub elapsed_ms: u128,
}

/// Runs one storage round over every configured target.
pub async fn round(
    store: &dyn Store,
    config: &Config,
    now: DateTime<Utc>,
) -> anyhow::Result<RoundReport> {
    use anyhow::Context;
    let started = std::time::Instant::now();
    let mut report = RoundReport {
        database_bytes_before: store.database_bytes().await?,
        ..RoundReport::default()
    };
    let settled = crate::settlement::settle(&store.settlement_facts().await?, now);
    let before = fold_before(config.database.raw_window_days, settled.end, now);
    let prune: Vec<(String, DateTime<Utc>)> = config
        .targets
        .iter()
        .filter_map(|target| {
            prune_before(target, config.database.attempts_retention_days, now)
                .map(|before| (target.name.clone(), before))
        })
        .collect();
    let done = store
        .compact(Some(before), &prune)
        .await
        .context("cannot fold and prune the stored attempts")?;
    report.folded_attempts = done.folded;
    report.rollups = done.rollups;
    report.pruned_attempts = done.pruned;
    report.packed_hours = done.packed_hours;
    report.longest_transaction_ms = done.longest_transaction.as_millis();
    report.longest_writer_wait_ms = done.longest_writer_wait.as_millis();
    let reclaim = store
        .reclaim_space()
        .await
        .context("cannot give the freed space back")?;
    report.longest_writer_wait_ms = report.longest_writer_wait_ms.max(reclaim.as_millis());
    report.database_bytes_after = store.database_bytes().await?;
    report.elapsed_ms = started.elapsed().as_millis();
    Ok(report)
}

/// What the last storage round found, for `/metrics`.
#[derive(Debug)]
pub struct StorageGauges {
    /// The database's bytes on disk after the last round; -1 before the first.
    pub database_bytes: std::sync::atomic::AtomicI64,
}

impl Default for StorageGauges {
    fn default() -> Self {
        StorageGauges {
            database_bytes: std::sync::atomic::AtomicI64::new(-1),
        }
    }
}

/// The daemon's storage loop: once the database is prepared, then every
/// [`STORAGE_ROUND_INTERVAL`].
pub async fn run(
    config: Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    gauges: Arc<StorageGauges>,
    mut ready: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) {
    tokio::select! {
        _ = stop.wait_for(|stopped| *stopped) => return,
        _ = ready.wait_for(|ready| *ready) => {}
    }
    let mut ticker = tokio::time::interval(STORAGE_ROUND_INTERVAL);
    loop {
        tokio::select! {
            _ = stop.changed() => if *stop.borrow() { return },
            _ = ticker.tick() => {}
        }
        crate::ticks::guarded("storage", async {
            let done = round(store.as_ref(), &config, clock.now()).await?;
            gauges
                .database_bytes
                .store(done.database_bytes_after, std::sync::atomic::Ordering::Relaxed);
            if done.folded_attempts > 0 || done.pruned_attempts > 0 {
                tracing::info!(
                    folded = done.folded_attempts,
                    pruned = done.pruned_attempts,
                    bytes = done.database_bytes_after,
                    "storage round: successes folded into rollups, attempts past retention pruned; minute verdicts are kept"
                );
            }
            Ok(())
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(retention_start: &str) -> Target {
        let text = format!(
            "[[targets]]\nname = \"t\"\nprovider = \"simulator\"\n[targets.sla]\nservice_start = \"{retention_start}\"\ntimezone = \"UTC\"\nmonthly_fee = \"1\"\n"
        );
        Config::parse(&text, "test").unwrap().targets.remove(0)
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn age_decides_once_the_claim_is_settled() {
        // January's deadline is 2026-04-01 23:59:59; settled 30 days later.
        let t = target("2026-01-01");
        assert_eq!(
            prune_before(&t, 122, at("2026-06-15T00:00:00Z")),
            Some(at("2026-02-13T00:00:00Z"))
        );
    }

    #[test]
    fn an_unsettled_claim_keeps_its_month_whatever_the_retention() {
        let t = target("2026-01-01");
        // Ten days of retention would reach into January, whose claim
        // deadline (2026-04-01) plus 30 days has not passed on 2026-04-20.
        assert_eq!(prune_before(&t, 10, at("2026-04-20T00:00:00Z")), None);
        // On 2026-05-02 January is settled, February (deadline 2026-04-29) not.
        assert_eq!(
            prune_before(&t, 10, at("2026-05-02T00:00:00Z")),
            Some(at("2026-02-01T00:00:00Z"))
        );
        // Exactly at the settlement instant: not yet (strictly after).
        assert_eq!(prune_before(&t, 10, at("2026-05-01T23:59:58Z")), None);
    }

    #[test]
    fn successes_fold_past_the_raw_window_and_only_in_settled_minutes() {
        let now = at("2026-04-20T12:00:30Z");
        let settled = Minute::containing(&now);
        assert_eq!(
            fold_before(7, settled, now),
            Minute::containing(&at("2026-04-13T12:00:00Z"))
        );
        // No raw window: everything settled is folded, and no more.
        let behind = Minute::containing(&at("2026-04-20T11:00:00Z"));
        assert_eq!(fold_before(0, behind, now), behind);
    }

    #[test]
    fn nothing_is_pruned_before_the_first_claim_settles() {
        let t = target("2026-01-01");
        assert_eq!(prune_before(&t, 400, at("2026-03-01T00:00:00Z")), None);
    }
}
