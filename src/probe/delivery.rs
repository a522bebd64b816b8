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

use super::ProbeOutcome;
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
    /// The server refused the recipient's sign-in: our configuration.
    Refused,
}

/// Probe ids of sends whose recipient has not seen them yet.
#[derive(Default)]
pub struct DeliveryBook {
    waiting: Mutex<HashMap<String, oneshot::Sender<Instant>>>,
}

impl DeliveryBook {
    /// Registers a probe id before its send, so a recipient that sees the
    /// message before the send's answer arrives still confirms it.
    pub fn expect(&self, probe_id: &str) -> oneshot::Receiver<Instant> {
        let (tx, rx) = oneshot::channel();
        self.waiting
            .lock()
            .expect("delivery lock")
            .insert(probe_id.to_owned(), tx);
        rx
    }

    pub fn forget(&self, probe_id: &str) {
        self.waiting.locked().remove(probe_id);
    }

    /// The recipient saw `probe_id` at `seen_at`.
    pub fn confirm(&self, probe_id: &str, seen_at: Instant) {
        if let Some(waiter) = self.waiting.locked().remove(probe_id) {
            let _ = waiter.send(seen_at);
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
}

impl Unwatched {
    fn inconclusive(self, http_status: Option<i32>) -> ProbeOutcome {
        let (reason, why) = match self {
            Unwatched::NotSignedIn => (
                InconclusiveReason::Credentials,
                "the recipient account is not signed in",
            ),
            Unwatched::NotInRoom => (
                InconclusiveReason::RequestRejected,
                "the recipient account is not in the room (improbe setup brings it back in)",
            ),
        };
        ProbeOutcome::inconclusive(
            reason,
            http_status,
            None,
            format!("delivery cannot be confirmed: {why}"),
        )
    }
}

/// A send the provider accepted, waiting for its recipient.
pub struct AwaitedDelivery<'a> {
    pub book: &'a DeliveryBook,
    pub probe_id: &'a str,
    /// What the recipient's watch says when it sees the send, or why it
    /// cannot see it.
    pub seen: Result<oneshot::Receiver<Instant>, Unwatched>,
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
        Err(unwatched) if mode == DeliveryMode::Require => {
            return unwatched.inconclusive(outcome.http_status);
        }
        Err(_) => return outcome,
    };
    let wait = timeout.saturating_sub(started.elapsed() + DELIVERY_MARGIN);
    match tokio::time::timeout(wait, seen).await {
        Ok(Ok(seen_at)) => {
            outcome.delivery = Some(Delivery::Confirmed {
                after_ms: Some((seen_at - started).as_millis() as i64),
            });
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
