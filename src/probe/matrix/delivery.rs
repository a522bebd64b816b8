//! Delivery confirmation: the recipient account keeps a `/sync` long-poll
//! on the two probe rooms, and each send's probe id is matched when the
//! recipient sees it (docs/providers.md "Delivery confirmation").

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::client::{MatrixClient, escape};
use super::codes::Call;
use crate::probe::Fault;
use crate::probe::delivery::DeliveryBook;
pub use crate::probe::delivery::WatchState;
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
}

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

    /// Confirms every awaited probe id among a sync answer's timeline events.
    fn saw(&self, sync: &Value) {
        let seen_at = Instant::now();
        let Some(rooms) = sync["rooms"]["join"].as_object() else {
            return;
        };
        if !self.book.is_waiting() {
            return;
        }
        for room in rooms.values() {
            for event in room["timeline"]["events"].as_array().into_iter().flatten() {
                if let Some(id) = event["content"][PROBE_ID_KEY].as_str() {
                    self.book.confirm(id, seen_at);
                }
            }
        }
    }
}

/// The sync filter: only messages in the two probe rooms, nothing else.
fn filter(rooms: &[String; 2]) -> String {
    json!({
        "presence": { "types": [] },
        "account_data": { "types": [] },
        "room": {
            "rooms": rooms,
            "timeline": { "types": ["m.room.message"], "limit": 50 },
            "state": { "types": [] },
            "ephemeral": { "types": [] },
            "account_data": { "types": [] },
        },
    })
    .to_string()
}

async fn watch(recipient: Arc<Recipient>, login: RecipientLogin) {
    let filter = escape(&filter(&login.rooms));
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
                Ok(new) => token.insert(new).clone(),
                Err(e) => {
                    let refused =
                        matches!(e.class(Call::Login), Fault::Ours(_)) && e.retry_after().is_none();
                    if refused {
                        if recipient.state() != WatchState::Refused {
                            tracing::warn!(
                                recipient = %login.user,
                                "the recipient cannot sign in, so delivery is not confirmed: {}",
                                e
                            );
                        }
                        recipient.set_state(WatchState::Refused);
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
            .call(
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
                if let Some(next) = answer["next_batch"].as_str() {
                    since = Some(next.to_owned());
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
