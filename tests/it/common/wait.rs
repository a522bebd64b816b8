//! Waiting on what a test does not drive itself (a daemon's loops, a real
//! server, a container): a condition polled until a deadline, the one place
//! a test sleeps to wait. A fixed sleep would either hope the thing
//! happened or waste time after it did.

use std::time::Duration;

/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(50);

/// Polls `check` until it gives a value, and returns it. `check` says what
/// it is still waiting for in its error, which the panic after `limit`
/// quotes.
pub async fn until<T>(limit: Duration, mut check: impl AsyncFnMut() -> Result<T, String>) -> T {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(waiting) => assert!(
                tokio::time::Instant::now() < deadline,
                "still waiting after {limit:?}: {waiting}"
            ),
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `done` until it holds; panics after `limit`, naming `what`.
pub async fn until_true(what: &str, limit: Duration, mut done: impl AsyncFnMut() -> bool) {
    until(limit, async || {
        if done().await {
            Ok(())
        } else {
            Err(what.to_owned())
        }
    })
    .await
}
