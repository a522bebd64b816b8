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

pub use channels::{Channel, ChannelConfig, ChannelKind, ChannelSettings};
pub use decider::Decider;
pub use events::{Event, EventKind};
pub use sender::Sender;

use crate::accounting::Figures;
use crate::clock::Clock;
use crate::minute::Minute;
use crate::store::Store;

/// How often the daemon decides and sends.
pub const TICK: Duration = Duration::from_secs(2);

/// The daemon's notifications, stepped by its settlement task
/// (`daemon/settled.rs`) every [`TICK`]: decide new events from the figures
/// just computed, then send what is due. At a stop, the send in progress
/// finishes and this prober's leases are given back ([`Notifier::release`]).
pub struct Notifier {
    decider: Decider,
    sender: Arc<Sender>,
    /// Whether every attempt measured so far is in the database: only then
    /// are events decided, so a spool being replayed never looks like
    /// missing data.
    measured_written: Box<dyn Fn() -> bool + Send + Sync>,
}

impl Notifier {
    pub fn new(
        decider: Decider,
        sender: Arc<Sender>,
        measured_written: impl Fn() -> bool + Send + Sync + 'static,
    ) -> Notifier {
        Notifier {
            decider,
            sender,
            measured_written: Box::new(measured_written),
        }
    }

    /// One round: decide the minutes before `settled_end` from `figures`
    /// (none: they could not be computed this round, so nothing is
    /// decided), then send what is due while `keep_going` holds.
    pub async fn step(
        &mut self,
        store: &dyn Store,
        settled: Option<(&Figures, Minute)>,
        clock: &dyn Clock,
        keep_going: impl Fn() -> bool,
    ) {
        if let Some((figures, settled_end)) = settled
            && (self.measured_written)()
        {
            crate::ticks::guarded(
                "notify-decide",
                self.decider
                    .decide_with(store, figures, settled_end, clock.now()),
            )
            .await;
        }
        crate::ticks::guarded(
            "notify-send",
            self.sender.send_due(store, || clock.now(), keep_going),
        )
        .await;
    }

    /// Gives this prober's send leases back, at a stop.
    pub async fn release(&self, store: &dyn Store) {
        if let Err(e) = self.sender.release(store).await {
            tracing::debug!(
                "notification leases not given back (they run out by themselves): {e:#}"
            );
        }
    }
}
