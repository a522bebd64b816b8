//! Delivery confirmation: the recipient account keeps a `/sync` long-poll
//! on the two probe rooms, and each send's probe id is matched when the
//! recipient sees it (docs/providers.md "Delivery confirmation").

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::client::{MatrixClient, escape};
use super::codes::Call;
use crate::probe::delivery::DeliveryBook;
pub use crate::probe::delivery::WatchState;
use crate::probe::delivery::{Place, Unwatched};
use crate::probe::{Fault, Lenient};
use crate::sync::Locked;

/// The content key that carries a send's probe id.
pub const PROBE_ID_KEY: &str = "org.improbe.probe_id";
/// How long one `/sync` long-poll waits for news on the server.
const LONG_POLL: Duration = Duration::from_secs(25);
/// The HTTP deadline of one long-poll: the server's wait plus room to answer.
const LONG_POLL_DEADLINE: Duration = Duration::from_secs(40);
/// Between tries while the homeserver does not answer.
const RETRY: Duration = Duration::from_secs(1);
/// Between sign-in tries while our recipient credentials are refused.
const RETRY_REFUSED: Duration = Duration::from_secs(60);

/// The recipient's watch over the probe rooms.
pub struct Recipient {
    book: DeliveryBook,
    state: Mutex<WatchState>,
    /// The direct and the group room, in the order of [`PLACES`].
    rooms: [String; 2],
    /// Per probe room, whether the recipient's syncs say it is not a member
    /// there (it left, was removed or banned, or never joined).
    outside: [AtomicBool; 2],
}

/// The places of the probe rooms, in the order `RecipientLogin::rooms` and
/// the settings give them.
const PLACES: [Place; 2] = [Place::Direct, Place::Group];

pub struct RecipientLogin {
    pub client: MatrixClient,
    pub user: String,
    pub password: String,
    pub device_id: String,
    pub rooms: [String; 2],
}

impl Recipient {
    /// Starts watching; the task ends when the returned handle is dropped.
    pub fn start(login: RecipientLogin) -> (Arc<Recipient>, tokio::task::AbortHandle) {
        let recipient = Arc::new(Recipient {
            book: DeliveryBook::default(),
            state: Mutex::new(WatchState::Starting),
            rooms: login.rooms.clone(),
            outside: Default::default(),
        });
        let task = tokio::spawn(watch(recipient.clone(), login));
        (recipient, task.abort_handle())
    }

    pub fn state(&self) -> WatchState {
        *self.state.locked()
    }

    fn set_state(&self, state: WatchState) {
        *self.state.locked() = state;
    }

    /// The sends waiting for the recipient.
    pub fn book(&self) -> &DeliveryBook {
        &self.book
    }

    /// Whether the recipient is in `place`'s room: until a sync says it is
    /// not a member there, it is taken to be one.
    fn is_in(&self, place: Place) -> bool {
        let index = PLACES.iter().position(|p| *p == place).unwrap_or_default();
        !self.outside[index].load(Ordering::Relaxed)
    }

    /// Whether the recipient can see what is sent to `place`, or why not.
    /// While it signs in, it is expected to: its sync catches up.
    pub fn can_see(&self, place: Place) -> Result<(), Unwatched> {
        match self.state() {
            WatchState::Refused(why) => Err(why),
            _ if !self.is_in(place) => Err(Unwatched::NotInRoom),
            _ => Ok(()),
        }
    }

    /// Notes the recipient's membership of each probe room from a sync
    /// answer: a room under `join` has it as a member, one under `leave`
    /// no longer; the first sync (`initial`) lists every room it is in, so
    /// a room missing there is one it never joined or left while we were
    /// away. An incremental sync that names neither changes nothing. Sends
    /// still waiting in a room the recipient has left it will not see: it
    /// saw (in this answer, `saw` first) all that came before it left.
    fn note_membership(&self, sync: &SyncAnswer, initial: bool) {
        for ((room, outside), place) in self.rooms.iter().zip(&self.outside).zip(PLACES) {
            let now_outside = if sync.rooms.join.contains_key(room) {
                false
            } else if initial || sync.rooms.leave.contains_key(room) {
                true
            } else {
                continue;
            };
            if outside.swap(now_outside, Ordering::Relaxed) != now_outside {
                if now_outside {
                    self.book.give_up(Some(place), Unwatched::NotInRoom);
                    tracing::warn!(
                        %room,
                        "the recipient is not in the probe room, so delivery there is not confirmed; \
                         `improbe setup` brings it back in"
                    );
                } else {
                    tracing::info!(%room, "the recipient is in the probe room again");
                }
            }
        }
    }

    /// Confirms every awaited probe id among a sync answer's timeline events.
    fn saw(&self, sync: &SyncAnswer) {
        let seen_at = Instant::now();
        if !self.book.is_waiting() {
            return;
        }
        for id in sync.rooms.probe_ids() {
            self.book.confirm(id, seen_at);
        }
    }
}

/// What the recipient reads of a `/sync` answer: the timeline events'
/// probe ids and where the next sync starts; the rest is skipped unread
/// rather than built into a JSON tree on every answer.
#[derive(Debug, Default, Deserialize)]
struct SyncAnswer {
    next_batch: Option<String>,
    #[serde(default)]
    rooms: SyncRooms,
}

/// A room the recipient left since the last sync comes under `leave`, with
/// its timeline up to the departure: what was sent before it left reached
/// the recipient and is confirmed; nothing after it is in that timeline.
#[derive(Debug, Default, Deserialize)]
struct SyncRooms {
    #[serde(default)]
    join: HashMap<String, SyncRoom>,
    #[serde(default)]
    leave: HashMap<String, SyncRoom>,
}

impl SyncRooms {
    fn probe_ids(&self) -> impl Iterator<Item = &String> {
        self.join
            .values()
            .chain(self.leave.values())
            .flat_map(|room| &room.timeline.events)
            .filter_map(|event| event.content.probe_id.get())
    }
}

#[derive(Debug, Default, Deserialize)]
struct SyncRoom {
    #[serde(default)]
    timeline: Timeline,
}

#[derive(Debug, Default, Deserialize)]
struct Timeline {
    #[serde(default)]
    events: Vec<TimelineEvent>,
}

#[derive(Debug, Default, Deserialize)]
struct TimelineEvent {
    #[serde(default)]
    content: EventContent,
}

/// Any member of the room can post an event with a probe id of another
/// type: it is read as no probe id, not as an unreadable answer that would
/// stall the recipient.
#[derive(Debug, Default, Deserialize)]
struct EventContent {
    #[serde(rename = "org.improbe.probe_id", default)]
    probe_id: Lenient<String>,
}

/// The sync filter: only messages and membership changes in the two probe
/// rooms, nothing else. A room whose filtered timeline is empty is left out
/// of a sync answer, so without the recipient's own leave event in it the
/// room it has just left would not be named under `leave`.
fn filter(rooms: &[String; 2]) -> Value {
    json!({
        "presence": { "types": [] },
        "account_data": { "types": [] },
        "room": {
            "rooms": rooms,
            "timeline": { "types": ["m.room.message", "m.room.member"], "limit": 50 },
            "state": { "types": [] },
            "ephemeral": { "types": [] },
            "account_data": { "types": [] },
        },
    })
}

/// Stores the sync filter on the server: its ID, escaped for a URL, or
/// `None` (then the filter goes in each sync's URL, as before).
async fn store_filter(login: &RecipientLogin, token: &str, filter: &Value) -> Option<String> {
    match login.client.upload_filter(token, &login.user, filter).await {
        Ok(id) => Some(escape(&id)),
        Err(e) => {
            tracing::debug!(
                recipient = %login.user,
                "the sync filter is not stored, so it goes in each sync's URL: {}",
                e
            );
            None
        }
    }
}

async fn watch(recipient: Arc<Recipient>, login: RecipientLogin) {
    let filter_json = filter(&login.rooms);
    // The filter's ID once the server stores it (a short URL, and the
    // server reads the filter once); the filter itself in every URL until then.
    let mut filter = escape(&filter_json.to_string());
    let mut filter_stored = false;
    let mut token: Option<String> = None;
    let mut since: Option<String> = None;
    loop {
        let current = match &token {
            Some(token) => token.clone(),
            None => match login
                .client
                .login(&login.user, &login.password, &login.device_id)
                .await
            {
                Ok(new) => {
                    if !filter_stored
                        && let Some(id) = store_filter(&login, &new, &filter_json).await
                    {
                        filter = id;
                        filter_stored = true;
                    }
                    token.insert(new).clone()
                }
                Err(e) => {
                    let refused =
                        matches!(e.class(Call::Login), Fault::Ours(_)) && e.retry_after().is_none();
                    if refused {
                        if !matches!(recipient.state(), WatchState::Refused(_)) {
                            tracing::warn!(
                                recipient = %login.user,
                                "the recipient cannot sign in, so delivery is not confirmed: {}",
                                e
                            );
                        }
                        recipient.set_state(WatchState::Refused(Unwatched::NotSignedIn));
                        recipient.book.give_up(None, Unwatched::NotSignedIn);
                        tokio::time::sleep(RETRY_REFUSED).await;
                    } else {
                        tokio::time::sleep(e.retry_after().unwrap_or(RETRY)).await;
                    }
                    continue;
                }
            },
        };
        let path = match &since {
            Some(since) => format!(
                "/sync?filter={filter}&timeout={}&since={}",
                LONG_POLL.as_millis(),
                escape(since)
            ),
            None => format!("/sync?filter={filter}&timeout=0"),
        };
        match login
            .client
            .call::<SyncAnswer>(
                Method::GET,
                &path,
                Some(&current),
                None,
                Some(LONG_POLL_DEADLINE),
            )
            .await
        {
            Ok(answer) => {
                recipient.set_state(WatchState::Watching);
                recipient.saw(&answer);
                recipient.note_membership(&answer, since.is_none());
                if let Some(next) = answer.next_batch {
                    since = Some(next);
                }
            }
            Err(e) if e.errcode() == Some("M_UNKNOWN_TOKEN") => token = None,
            Err(e) => {
                tracing::debug!(recipient = %login.user, "sync failed: {}", e);
                tokio::time::sleep(e.retry_after().unwrap_or(RETRY)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// serde's field name must be spelled out; this ties it to the key the
    /// sends carry.
    #[test]
    fn sync_answers_are_read_with_the_key_sends_carry() {
        let answer = json!({
            "next_batch": "s2",
            "rooms": {
                "join": { "!room:example.org": { "timeline": { "events": [
                    { "content": { PROBE_ID_KEY: "p1" } },
                    { "content": { PROBE_ID_KEY: 5 } },
                    { "content": { "body": "no probe id" } },
                ] } } },
                "leave": { "!left:example.org": { "timeline": { "events": [
                    { "content": { PROBE_ID_KEY: "p2" } },
                ] } } },
                "invite": { "!invited:example.org": { "invite_state": { "events": [] } } },
            },
        });
        let answer: SyncAnswer = serde_json::from_value(answer).unwrap();
        let ids: Vec<&String> = answer.rooms.probe_ids().collect();
        assert_eq!(ids, ["p1", "p2"]);
        assert_eq!(answer.next_batch.as_deref(), Some("s2"));
    }

    #[test]
    fn membership_follows_what_the_syncs_say() {
        let recipient = Recipient {
            book: DeliveryBook::default(),
            state: Mutex::new(WatchState::Watching),
            rooms: ["!direct:x".into(), "!group:x".into()],
            outside: Default::default(),
        };
        let sync = |rooms: Value| -> SyncAnswer {
            serde_json::from_value(json!({ "next_batch": "s", "rooms": rooms })).unwrap()
        };
        let members = || {
            (
                recipient.is_in(Place::Direct),
                recipient.is_in(Place::Group),
            )
        };
        assert_eq!(members(), (true, true), "taken as a member until told");
        // The first sync lists the rooms it is in: the group room is not.
        recipient.note_membership(&sync(json!({ "join": { "!direct:x": {} } })), true);
        assert_eq!(members(), (true, false));
        // Later syncs that name neither room change nothing.
        recipient.note_membership(&sync(json!({})), false);
        assert_eq!(members(), (true, false));
        recipient.note_membership(&sync(json!({ "join": { "!group:x": {} } })), false);
        assert_eq!(members(), (true, true));
        recipient.note_membership(&sync(json!({ "leave": { "!direct:x": {} } })), false);
        assert_eq!(members(), (false, true));
    }
}
