//! The rhythm of the daemon's background loops (months, settlement, the
//! HTTP surface's copies, notifications): wait for the database, then tick
//! until the daemon stops.

use std::time::Duration;

use tokio::sync::watch;

/// Waits until the database is prepared; `false`: the daemon stopped first.
pub async fn until_ready(
    ready: &mut watch::Receiver<bool>,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    while !*ready.borrow_and_update() {
        tokio::select! {
            changed = stop.changed() => if changed.is_err() || *stop.borrow() { return false },
            changed = ready.changed() => if changed.is_err() { return false },
        }
    }
    true
}

/// A background loop's ticker: a tick missed while the loop worked is
/// delayed, not bunched.
pub fn ticker(period: Duration) -> tokio::time::Interval {
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker
}

/// The next tick; `false`: the daemon stopped.
pub async fn tick(ticker: &mut tokio::time::Interval, stop: &mut watch::Receiver<bool>) -> bool {
    loop {
        tokio::select! {
            changed = stop.changed() => if changed.is_err() || *stop.borrow() { return false },
            _ = ticker.tick() => return true,
        }
    }
}
