//! Pruning raw attempts: after `attempts_retention_days`, but never before
//! the claim deadline of their Service Month has passed by 30 days, so the
//! evidence behind a claim outlives the claim. Minute buckets, verdicts and
//! monthly figures are kept for ever.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::config::{Config, Target};
use crate::store::Store;

/// Evidence is kept this long after a month's claim deadline.
pub const KEEP_AFTER_CLAIM_DEADLINE_DAYS: i64 = 30;
/// How often the daemon prunes.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(3_600);

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

/// Prunes every configured target once; returns how many attempts went.
pub async fn prune(store: &dyn Store, config: &Config, now: DateTime<Utc>) -> anyhow::Result<u64> {
    let mut pruned = 0;
    for target in &config.targets {
        if let Some(before) = prune_before(target, config.database.attempts_retention_days, now) {
            pruned += store.prune_attempts(&target.name, before).await?;
        }
    }
    Ok(pruned)
}

/// The daemon's pruning loop: once the database is prepared, then every
/// [`PRUNE_INTERVAL`].
pub async fn run(
    config: Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    mut ready: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) {
    tokio::select! {
        _ = stop.wait_for(|stopped| *stopped) => return,
        _ = ready.wait_for(|ready| *ready) => {}
    }
    let mut ticker = tokio::time::interval(PRUNE_INTERVAL);
    loop {
        tokio::select! {
            _ = stop.changed() => if *stop.borrow() { return },
            _ = ticker.tick() => {}
        }
        crate::ticks::guarded("retention", async {
            let pruned = prune(store.as_ref(), &config, clock.now()).await?;
            if pruned > 0 {
                tracing::info!(
                    attempts = pruned,
                    "pruned raw attempts past their retention; minute verdicts are kept"
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
    fn nothing_is_pruned_before_the_first_claim_settles() {
        let t = target("2026-01-01");
        assert_eq!(prune_before(&t, 400, at("2026-03-01T00:00:00Z")), None);
    }
}
