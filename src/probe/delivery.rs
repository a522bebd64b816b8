//! Delivery confirmation shared by the providers that have a recipient
//! account (docs/providers.md "Delivery confirmation"): the book of sends waiting to be
//! seen, and how an accepted send's outcome is finished with what the
//! recipient saw.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{Fault, ProbeOutcome};
use crate::attempt::{Delivery, InconclusiveReason, Outcome};
use crate::sync::Locked;

/// Whether a send must be seen by the recipient to count as `ok`, for
/// providers that can confirm delivery (docs/providers.md "Delivery confirmation").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryMode {
    /// A send's outcome is the provider's answer; delivery is evidence beside it.
    #[default]
    Record,
    /// A send is `ok` only when the recipient saw it within the timeout.
    Require,
}

/// How long before the attempt's deadline the wait for delivery gives up,
/// so the attempt ends on its own rather than by the scheduler's timeout.
pub const DELIVERY_MARGIN: Duration = Duration::from_millis(50);

/// What is wrong with a provider's `recipient` and `recipient_password`, as
/// (field, message): `is_account` tells a well-formed account name, `example`
/// shows one, `sender` is the probing account (which cannot be its own
/// recipient).
pub fn check_recipient(
    recipient: Option<&str>,
    password: Option<&crate::secret::Secret>,
    sender: &str,
    is_account: impl Fn(&str) -> bool,
    example: &str,
) -> Option<(&'static str, String)> {
    match (recipient, password) {
        (Some(recipient), _) if !is_account(recipient) => {
            Some(("recipient", format!("must be an account like {example}")))
        }
        (Some(recipient), _) if recipient == sender => Some((
            "recipient",
            "must be a second account: a sender does not confirm its own delivery".into(),
        )),
        (Some(_), None) => Some((
            "recipient_password",
            "is needed with recipient: the recipient signs in to confirm delivery".into(),
        )),
        (None, Some(_)) => Some(("recipient", "is needed with recipient_password".into())),
        _ => None,
    }
}

/// Where a recipient's watch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchState {
    Starting,
    Watching,
    /// The server refused the recipient's sign-in, or its room refused
    /// it: our configuration.
    Refused(Unwatched),
}

/// What a waiting send learns: when the recipient saw it, or that the
/// recipient can no longer see it.
pub type Sighting = Result<Instant, Unwatched>;

/// Where a send goes, as the recipient sees it: its direct conversation or
/// the group room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Direct,
    Group,
}

/// Probe ids of sends whose recipient has not seen them yet.
#[derive(Default)]
pub struct DeliveryBook {
    waiting: Mutex<HashMap<String, (Place, oneshot::Sender<Sighting>)>>,
}

impl DeliveryBook {
    /// Registers a probe id before its send, so a recipient that sees the
    /// message before the send's answer arrives still confirms it.
    pub fn expect(&self, probe_id: &str, place: Place) -> oneshot::Receiver<Sighting> {
        let (tx, rx) = oneshot::channel();
        self.waiting
            .locked()
            .insert(probe_id.to_owned(), (place, tx));
        rx
    }

    /// Registers `probe_id` when the recipient can see `place`, as
    /// `can_see` tells, before and after registering: a recipient that loses
    /// sight changes what `can_see` reads before it gives up the waiting
    /// sends, so a send registered meanwhile is given up or taken back here.
    pub fn expect_if(
        &self,
        probe_id: &str,
        place: Place,
        can_see: impl Fn() -> Result<(), Unwatched>,
    ) -> Result<oneshot::Receiver<Sighting>, Unwatched> {
        can_see()?;
        let seen = self.expect(probe_id, place);
        if let Err(why) = can_see() {
            self.forget(probe_id);
            return Err(why);
        }
        Ok(seen)
    }

    pub fn forget(&self, probe_id: &str) {
        self.waiting.locked().remove(probe_id);
    }

    /// The recipient saw `probe_id` at `seen_at`.
    pub fn confirm(&self, probe_id: &str, seen_at: Instant) {
        if let Some((_, waiter)) = self.waiting.locked().remove(probe_id) {
            let _ = waiter.send(Ok(seen_at));
        }
    }

    /// The recipient lost sight of `place` (`None`: of everything): what
    /// it saw there before has been confirmed, so the sends still waiting
    /// there it will not see, and are told why (our configuration, not a
    /// missing delivery).
    pub fn give_up(&self, place: Option<Place>, why: Unwatched) {
        let given_up: Vec<_> = self
            .waiting
            .locked()
            .extract_if(|_, (at, _)| place.is_none_or(|place| place == *at))
            .map(|(_, (_, waiter))| waiter)
            .collect();
        for waiter in given_up {
            let _ = waiter.send(Err(why));
        }
    }

    pub fn is_waiting(&self) -> bool {
        !self.waiting.locked().is_empty()
    }
}

/// Why the recipient cannot see a send: both are our configuration, never
/// the provider's failure (SLA exclusions), so a send that must be seen is
/// then `inconclusive`, and otherwise its delivery is not checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unwatched {
    /// The recipient is not signed in (refused, or still signing in).
    NotSignedIn,
    /// The recipient is not a member of the room (it left, was removed or
    /// banned, or never joined): `improbe setup` brings it back in.
    NotInRoom,
    /// The history that shows the send could not be read when it was
    /// checked, for this fault: unconfirmed, never missing.
    HistoryUnread(Fault),
}

impl Unwatched {
    /// An accepted send the recipient cannot see: delivery not checked, or
    /// with `delivery = "require"` inconclusive.
    fn finish(self, outcome: ProbeOutcome, mode: DeliveryMode) -> ProbeOutcome {
        if mode == DeliveryMode::Record {
            return outcome;
        }
        let (reason, why) = match self {
            Unwatched::NotSignedIn => (
                InconclusiveReason::Credentials,
                "the recipient account is not signed in",
            ),
            Unwatched::NotInRoom => (
                InconclusiveReason::RequestRejected,
                "the recipient account is not in the room (improbe setup brings it back in)",
            ),
            Unwatched::HistoryUnread(Fault::Ours(reason)) => {
                (reason, "the history read was refused for our side")
            }
            // The provider accepted the send and then failed to show its
            // history: nothing says the send was lost, and the SLA judges
            // the answer, so it stands, unconfirmed.
            Unwatched::HistoryUnread(Fault::Provider) => return outcome,
        };
        ProbeOutcome::inconclusive(
            reason,
            outcome.http_status,
            None,
            format!("delivery cannot be confirmed: {why}"),
        )
    }
}

/// Where sends wait to be seen: a recipient's [`DeliveryBook`], or a
/// watcher that reads histories back.
pub trait Waiters: Sync {
    /// The send no longer waits.
    fn forget(&self, probe_id: &str);
}

impl Waiters for DeliveryBook {
    fn forget(&self, probe_id: &str) {
        DeliveryBook::forget(self, probe_id);
    }
}

/// A send the provider accepted, waiting for its recipient.
pub struct AwaitedDelivery<'a> {
    pub book: &'a dyn Waiters,
    pub probe_id: &'a str,
    /// What the recipient's watch says when it sees the send, or why it
    /// cannot see it. A watch that closes the channel found it missing.
    pub seen: Result<oneshot::Receiver<Sighting>, Unwatched>,
    /// Whether a send not seen by the deadline is missing: so for a
    /// recipient that is pushed every message; a watcher that reads
    /// histories says missing itself, and its silence is no evidence.
    pub silence_is_missing: bool,
}

/// Finishes `outcome`, a send the provider accepted (`ok`, with
/// `answered_after`): latency stays the provider's answer; delivery is
/// recorded beside it, and with `delivery = "require"` a send the recipient
/// did not see within the attempt's `timeout` fails.
pub async fn finish_accepted(
    mut outcome: ProbeOutcome,
    started: Instant,
    awaited: Option<AwaitedDelivery<'_>>,
    mode: DeliveryMode,
    timeout: Duration,
) -> ProbeOutcome {
    let Some(awaited) = awaited else {
        return outcome;
    };
    let seen = match awaited.seen {
        Ok(seen) => seen,
        Err(unwatched) => return unwatched.finish(outcome, mode),
    };
    let wait = timeout.saturating_sub(started.elapsed() + DELIVERY_MARGIN);
    match tokio::time::timeout(wait, seen).await {
        Ok(Ok(Ok(seen_at))) => {
            outcome.delivery = Some(Delivery::Confirmed {
                after_ms: Some((seen_at - started).as_millis() as i64),
            });
        }
        Ok(Ok(Err(unwatched))) => return unwatched.finish(outcome, mode),
        Err(_) if !awaited.silence_is_missing => {
            awaited.book.forget(awaited.probe_id);
            return outcome;
        }
        _ => {
            awaited.book.forget(awaited.probe_id);
            outcome.delivery = Some(Delivery::Missing);
            if mode == DeliveryMode::Require {
                outcome.outcome = Outcome::Fail;
                outcome.error = Some(format!(
                    "accepted, but the recipient did not see it within {}",
                    crate::text::humanize(timeout)
                ));
            }
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(1);

    async fn finished(book: &DeliveryBook, probe_id: &str, mode: DeliveryMode) -> ProbeOutcome {
        let awaited = AwaitedDelivery {
            book,
            probe_id,
            seen: Ok(book.expect(probe_id, Place::Group)),
            silence_is_missing: true,
        };
        finish_accepted(
            ProbeOutcome::ok(Some(200)),
            Instant::now(),
            Some(awaited),
            mode,
            TIMEOUT,
        )
        .await
    }

    /// A send waiting where the recipient lost sight is ours, never a
    /// missing delivery; one waiting elsewhere still waits, and one nobody
    /// sees is missing (a failure only when delivery is required).
    #[tokio::test(start_paused = true)]
    async fn sends_waiting_where_the_recipient_lost_sight_are_not_failures() {
        let book = DeliveryBook::default();
        let elsewhere = book.expect("direct", Place::Direct);
        let (record, require, ()) = tokio::join!(
            finished(&book, "group-1", DeliveryMode::Record),
            finished(&book, "group-2", DeliveryMode::Require),
            async {
                tokio::task::yield_now().await;
                book.give_up(Some(Place::Group), Unwatched::NotInRoom);
            },
        );
        assert_eq!((record.outcome, record.delivery), (Outcome::Ok, None));
        assert_eq!(require.outcome, Outcome::Inconclusive);
        assert_eq!(require.reason, Some(InconclusiveReason::RequestRejected));
        assert!(book.is_waiting(), "the direct send still waits");
        book.confirm("direct", Instant::now());
        assert!(matches!(elsewhere.await, Ok(Ok(_))));

        // A recipient that cannot see the place is not waited for.
        let not_in = book.expect_if("group-4", Place::Group, || Err(Unwatched::NotInRoom));
        assert_eq!(not_in.err(), Some(Unwatched::NotInRoom));
        assert!(!book.is_waiting());

        let unseen = finished(&book, "group-3", DeliveryMode::Require).await;
        assert_eq!(unseen.outcome, Outcome::Fail);
        assert_eq!(unseen.delivery, Some(Delivery::Missing));
        assert!(!book.is_waiting());
    }
}
