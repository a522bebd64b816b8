//! improbe speaks up (docs/notifications.md): events decided from the
//! stored verdicts and Service Month figures, written to the `notifications`
//! outbox before anything is sent, then delivered to each `[[notify]]`
//! channel once, in order, with retries.

pub mod channels;
pub mod decider;
pub mod events;
pub mod sender;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use channels::{Channel, ChannelConfig, ChannelKind, ChannelSettings};
pub use decider::Decider;
pub use events::{Event, EventKind};
pub use sender::Sender;

use crate::clock::Clock;
use crate::store::Store;

/// How often the daemon decides and sends.
pub const TICK: Duration = Duration::from_secs(2);

/// The daemon's notification loop: once the database is ready, every
/// [`TICK`] decide new events (only while `measured_written` says every
/// attempt measured so far is in the database, so a spool being replayed
/// never looks like missing data) and send what is due. At a stop, the send
/// in progress finishes and this prober's leases are given back.
pub async fn run(
    mut decider: Decider,
    sender: Arc<Sender>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    mut ready: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
    measured_written: impl Fn() -> bool + Send,
) {
    if !crate::ticks::until_ready(&mut ready, &mut stop).await {
        return;
    }
    let mut ticker = crate::ticks::ticker(TICK);
    while crate::ticks::tick(&mut ticker, &mut stop).await {
        if measured_written() {
            crate::ticks::guarded("notify-decide", decider.decide(store.as_ref(), clock.now()))
                .await;
        }
        let stopping = stop.clone();
        crate::ticks::guarded(
            "notify-send",
            sender.send_due(store.as_ref(), || clock.now(), || !*stopping.borrow()),
        )
        .await;
    }
    if let Err(e) = sender.release(store.as_ref()).await {
        tracing::debug!("notification leases not given back (they run out by themselves): {e:#}");
    }
}
