//! Delivering the outbox: per channel, oldest first, one row at a time under
//! a lease, retried with backoff until the receiver accepts it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::channels::{Channel, SEND_TIMEOUT, SendFailure};
use super::events::Event;
use crate::store::{AfterFailure, Store};

/// How long a prober holds a notification it is sending; another prober
/// may take it over after that (the first one crashed).
pub const LEASE: Duration = Duration::from_secs(2 * SEND_TIMEOUT.as_secs() + 30);

/// The first retry waits this long; each further one twice as long, up to
/// [`MAX_BACKOFF`]. A channel down for hours gets its events within
/// [`MAX_BACKOFF`] of coming back.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(5);
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Sends and failures per channel, for `/metrics`.
#[derive(Debug, Default)]
pub struct ChannelCounters {
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub given_up: AtomicU64,
    pub pending: AtomicU64,
}

pub type SenderCounters = BTreeMap<String, Arc<ChannelCounters>>;

pub struct Sender {
    prober: String,
    channels: Vec<Channel>,
    pub counters: SenderCounters,
}

/// The wait before the next try, after `tries` failed ones.
pub fn backoff(tries: i64) -> Duration {
    let doublings = u32::try_from(tries.saturating_sub(1).clamp(0, 16)).expect("small");
    FIRST_BACKOFF
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(MAX_BACKOFF)
}

impl Sender {
    pub fn new(prober: &str, channels: Vec<Channel>) -> Sender {
        let counters = channels
            .iter()
            .map(|c| (c.name().to_owned(), Arc::default()))
            .collect();
        Sender {
            prober: prober.to_owned(),
            channels,
            counters,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }

    /// Sends every notification that is due at `now`, channel by channel,
    /// until each channel's oldest unsent one is not due (or fails).
    /// `keep_going` is asked between sends, so a stop never cuts one short.
    /// Returns how many were sent.
    pub async fn send_due(
        &self,
        store: &dyn Store,
        now: impl Fn() -> DateTime<Utc>,
        keep_going: impl Fn() -> bool,
    ) -> anyhow::Result<u64> {
        let mut sent = 0;
        for channel in &self.channels {
            let counters = &self.counters[channel.name()];
            while keep_going() {
                let at = now();
                let lease_until = at + chrono::Duration::from_std(LEASE).expect("short");
                let Some(claimed) = store
                    .claim_notification(channel.name(), &self.prober, at, lease_until)
                    .await?
                else {
                    break;
                };
                let result = match serde_json::from_str::<Event>(&claimed.payload) {
                    Ok(event) => channel.send(&event).await,
                    Err(e) => Err(SendFailure::permanent(format!(
                        "the stored event does not decode: {e}"
                    ))),
                };
                match result {
                    Ok(()) => {
                        if store
                            .notification_sent(claimed.id, &self.prober, now())
                            .await?
                        {
                            counters.sent.fetch_add(1, Ordering::Relaxed);
                            sent += 1;
                        } else {
                            tracing::warn!(channel = channel.name(), event = %claimed.event_key,
                                "sent after the lease ran out; another prober may send it again");
                        }
                    }
                    Err(SendFailure {
                        message: error,
                        permanent: true,
                    }) => {
                        counters.failed.fetch_add(1, Ordering::Relaxed);
                        counters.given_up.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(channel = channel.name(), event = %claimed.event_key, tries = claimed.tries,
                            "notification refused for good and given up; the channel's later events go on: {error}");
                        store
                            .notification_failed(
                                claimed.id,
                                &self.prober,
                                &error,
                                AfterFailure::GiveUp(now()),
                            )
                            .await?;
                    }
                    Err(SendFailure { message: error, .. }) => {
                        counters.failed.fetch_add(1, Ordering::Relaxed);
                        let wait = backoff(claimed.tries);
                        tracing::warn!(channel = channel.name(), event = %claimed.event_key, tries = claimed.tries,
                            "notification not delivered, retrying in {}s: {error}", wait.as_secs());
                        let next = now() + chrono::Duration::from_std(wait).expect("short");
                        store
                            .notification_failed(
                                claimed.id,
                                &self.prober,
                                &error,
                                AfterFailure::RetryAt(next),
                            )
                            .await?;
                        // Later events wait: a channel gets its events in order.
                        break;
                    }
                }
            }
        }
        self.count_pending(store).await?;
        Ok(sent)
    }

    /// Refreshes the pending gauges from the outbox.
    async fn count_pending(&self, store: &dyn Store) -> anyhow::Result<()> {
        let pending: BTreeMap<String, i64> =
            store.pending_notifications().await?.into_iter().collect();
        for (name, counters) in &self.counters {
            let n = pending.get(name).copied().unwrap_or(0);
            counters
                .pending
                .store(u64::try_from(n).unwrap_or(0), Ordering::Relaxed);
        }
        Ok(())
    }

    /// Gives back what this prober holds, for another prober or the next start.
    pub async fn release(&self, store: &dyn Store) -> anyhow::Result<()> {
        Ok(store.release_notifications(&self.prober).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_ceiling() {
        assert_eq!(backoff(1), FIRST_BACKOFF);
        assert_eq!(backoff(2), FIRST_BACKOFF * 2);
        assert_eq!(backoff(4), FIRST_BACKOFF * 8);
        assert_eq!(backoff(100), MAX_BACKOFF);
        assert_eq!(backoff(0), FIRST_BACKOFF);
    }
}
