//! The batching writer: drains probe results into memory at once and writes
//! them in batches, so probes never wait on the database. A failed write
//! keeps every attempt buffered and is retried; ingest is idempotent, so a
//! retry after an ambiguous failure cannot count an attempt twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::attempt::Attempt;
use crate::store::Store;

/// Buffered attempts are written at least this often.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// A buffer this large is written at once.
pub const FLUSH_BATCH: usize = 500;
/// Capacity of the channel from the probes to the writer.
pub const CHANNEL_CAPACITY: usize = 4_096;
/// After shutdown, keep retrying a failing database this long.
pub const FINAL_FLUSH_DEADLINE: Duration = Duration::from_secs(30);

/// What the writer has done, for metrics and tests.
#[derive(Debug, Default)]
pub struct WriterCounters {
    pub buffered: AtomicU64,
    pub write_errors: AtomicU64,
}

/// Runs until the channel closes (every probe loop has ended), then writes
/// what is left.
pub async fn run(
    store: Arc<dyn Store>,
    mut attempts: mpsc::Receiver<Attempt>,
    counters: Arc<WriterCounters>,
) {
    let mut buffer: Vec<Attempt> = Vec::new();
    let mut ticker = tokio::time::interval(FLUSH_INTERVAL);
    loop {
        tokio::select! {
            received = attempts.recv() => match received {
                Some(attempt) => {
                    buffer.push(attempt);
                    counters.buffered.store(buffer.len() as u64, Ordering::Relaxed);
                    if buffer.len() >= FLUSH_BATCH {
                        flush(store.as_ref(), &mut buffer, &counters).await;
                    }
                }
                None => break,
            },
            _ = ticker.tick() => { flush(store.as_ref(), &mut buffer, &counters).await; }
        }
    }
    let deadline = tokio::time::Instant::now() + FINAL_FLUSH_DEADLINE;
    while !flush(store.as_ref(), &mut buffer, &counters).await {
        if tokio::time::Instant::now() >= deadline {
            tracing::error!(
                attempts = buffer.len(),
                "database still failing at shutdown; these attempts were not written"
            );
            return;
        }
        tokio::time::sleep(FLUSH_INTERVAL).await;
    }
}

/// Writes the buffer; on failure keeps it. Returns whether it is empty now.
async fn flush(store: &dyn Store, buffer: &mut Vec<Attempt>, counters: &WriterCounters) -> bool {
    if buffer.is_empty() {
        return true;
    }
    let mut source = buffer.iter().cloned().map(Ok);
    match store.ingest(&mut source).await {
        Ok(_) => {
            buffer.clear();
            counters.buffered.store(0, Ordering::Relaxed);
            true
        }
        Err(error) => {
            counters.write_errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                buffered = buffer.len(),
                "database write failed; attempts stay buffered and will be retried: {error:#}"
            );
            false
        }
    }
}
