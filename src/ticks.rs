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

/// Unexpected errors (anything but an unreachable database) and panics of
/// each background loop, for `improbe_background_errors_total`.
static BACKGROUND_ERRORS: std::sync::Mutex<std::collections::BTreeMap<&'static str, u64>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// Runs one round of the background loop `name`. An unreachable database is
/// expected (the loop tries again next tick) and logged at debug; any other
/// error, or a panic, is logged at error and counted, and the loop goes on:
/// one bad round must not silently end retention or notifications.
/// `None`: the round did not finish.
pub async fn guarded<T, F>(name: &'static str, round: F) -> Option<T>
where
    F: std::future::Future<Output = anyhow::Result<T>>,
{
    use futures_util::FutureExt;
    let failure = match std::panic::AssertUnwindSafe(round).catch_unwind().await {
        Ok(Ok(done)) => return Some(done),
        Ok(Err(e)) if crate::store::is_unavailable(&e) => {
            tracing::debug!(task = name, "database unreachable; trying again: {e:#}");
            return None;
        }
        Ok(Err(e)) => format!("{e:#}"),
        Err(panic) => panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .map_or_else(|| "panicked".to_owned(), |s| format!("panicked: {s}")),
    };
    *BACKGROUND_ERRORS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(name)
        .or_default() += 1;
    tracing::error!(
        task = name,
        "background task failed; it runs again next time: {failure}"
    );
    None
}

/// Failed rounds per background loop so far.
pub fn background_errors() -> Vec<(&'static str, u64)> {
    BACKGROUND_ERRORS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .map(|(name, n)| (*name, *n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_round_is_counted_and_the_next_one_runs() {
        let count = |name| {
            background_errors()
                .into_iter()
                .find(|(n, _)| *n == name)
                .map_or(0, |(_, n)| n)
        };
        let panicked: Option<()> = guarded("test-panics", async { panic!("overflowed") }).await;
        assert_eq!(panicked, None);
        let failed: Option<()> =
            guarded("test-panics", async { Err(anyhow::anyhow!("unexpected")) }).await;
        assert_eq!(failed, None);
        assert_eq!(guarded("test-panics", async { Ok(7) }).await, Some(7));
        assert_eq!(count("test-panics"), 2);
    }
}
