//! Delivery confirmation for Tencent Cloud IM (docs/providers.md "Delivery
//! confirmation"): Tencent pushes nothing to a server-side reader, so a
//! watcher reads back, as the app administrator, the recipient's one-to-one
//! history (`admin_getroammsg`) and the group's (`group_msg_get_simple`),
//! and matches each waiting send by the probe id its text carries.
//!
//! The reads cost at most one call per history per poll period (plus pages
//! only when a page is full), and none while no send waits. A send is
//! `missing` only when a read that started after its check time succeeded
//! without it; a read that failed leaves it unconfirmed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use super::{Reply, TencentClient, classify, command};
use crate::attempt::Outcome;
use crate::probe::delivery::{DELIVERY_MARGIN, Place, Sighting, Unwatched, Waiters};
use crate::probe::{Fault, Lenient, calls};
use crate::sync::Locked;

/// Between two reads of a history while sends wait there: `delivered_ms` is
/// measured to the read that saw the message, so it is this coarse.
pub const POLL_PERIOD: Duration = Duration::from_secs(1);
/// From the first send waiting to the first read.
const FIRST_READ_AFTER: Duration = Duration::from_millis(250);
/// How long one history read may take before it counts as failed.
pub const READ_LIMIT: Duration = Duration::from_secs(2);
/// Pages read per history and poll at most: a poll that would need more
/// (hundreds of probe messages within one wait) checks the rest next time.
const MAX_PAGES: usize = 10;
/// Messages per `group_msg_get_simple` page: Tencent's maximum.
pub const GROUP_PAGE: u64 = 20;
/// Messages per `admin_getroammsg` page asked for; Tencent also cuts a page
/// at 13 KB and says so with `Complete: 0`.
pub const DIRECT_PAGE: u64 = 100;
/// Until its answer gives the server's time of a send, a read starts this
/// far before our clock's, so a server clock a little behind ours still
/// shows it.
const CLOCK_SLACK_SECS: i64 = 60;
/// Once the answer has given it (`MsgTime`, whole seconds, the message's
/// `MsgTimeStamp` in the histories), a read starts this far before it: a
/// window of a few messages instead of a minute's (docs/providers.md
/// "Tencent: reading the histories back").
const ANSWERED_SLACK_SECS: i64 = 1;

/// The history calls, as `/metrics` labels them.
pub const DIRECT_HISTORY: &str = "admin_getroammsg";
pub const GROUP_HISTORY: &str = "group_msg_get_simple";

/// A send waiting to be read back.
struct Waiting {
    place: Place,
    /// The earliest history time (Unix seconds) a read must cover to show it.
    read_from_secs: i64,
    /// From when a read that does not show it makes it `missing`.
    check_after: Instant,
    seen: oneshot::Sender<Sighting>,
}

/// The watcher of one target's probe conversation and group.
pub struct HistoryWatch {
    waiting: Mutex<HashMap<String, Waiting>>,
    wake: Notify,
    target: String,
}

/// What the watcher reads with: the target's client and probe accounts.
pub struct Histories {
    pub client: Arc<TencentClient>,
    pub sender: String,
    pub recipient: String,
    pub group: String,
}

impl HistoryWatch {
    /// Starts watching; the task ends when the returned handle is aborted.
    pub fn start(target: &str, histories: Histories) -> (Arc<Self>, tokio::task::AbortHandle) {
        let watch = Arc::new(Self {
            waiting: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            target: target.to_owned(),
        });
        let task = tokio::spawn(watch.clone().run(histories));
        (watch, task.abort_handle())
    }

    /// Registers a send before it is made, at `started`, for an attempt of
    /// `timeout`: the read that may call it missing starts early enough to
    /// answer before the deadline (with a timeout under 6 s, half of it is
    /// left for that; a read that answers too late leaves it unconfirmed).
    pub fn expect(
        &self,
        probe_id: &str,
        place: Place,
        sent_at_secs: i64,
        started: Instant,
        timeout: Duration,
    ) -> oneshot::Receiver<Sighting> {
        let (tx, rx) = oneshot::channel();
        let check_after = started + timeout
            - DELIVERY_MARGIN.min(timeout)
            - (READ_LIMIT + POLL_PERIOD).min(timeout / 2);
        self.waiting.locked().insert(
            probe_id.to_owned(),
            Waiting {
                place,
                read_from_secs: sent_at_secs - CLOCK_SLACK_SECS,
                check_after,
                seen: tx,
            },
        );
        self.wake.notify_one();
        rx
    }

    /// The send's answer gave the server's time of the message: later
    /// reads need cover only from just before it.
    pub fn answered(&self, probe_id: &str, server_secs: i64) {
        if let Some(w) = self.waiting.locked().get_mut(probe_id) {
            w.read_from_secs = server_secs - ANSWERED_SLACK_SECS;
        }
    }

    pub fn is_waiting(&self) -> bool {
        !self.waiting.locked().is_empty()
    }

    async fn run(self: Arc<Self>, histories: Histories) {
        loop {
            if !self.is_waiting() {
                self.wake.notified().await;
                // The first send is being made: read once it is likely
                // answered rather than at once.
                tokio::time::sleep(FIRST_READ_AFTER).await;
                continue;
            }
            let next = Instant::now() + POLL_PERIOD;
            for place in [Place::Direct, Place::Group] {
                let oldest = self
                    .waiting
                    .locked()
                    .values()
                    .filter(|w| w.place == place)
                    .map(|w| w.read_from_secs)
                    .min();
                let Some(oldest) = oldest else { continue };
                let started = Instant::now();
                let read =
                    tokio::time::timeout(READ_LIMIT, read_history(&histories, place, oldest))
                        .await
                        .unwrap_or(Err(Fault::Provider));
                let api = match place {
                    Place::Direct => DIRECT_HISTORY,
                    Place::Group => GROUP_HISTORY,
                };
                calls::count(&self.target, api, read.as_ref().err().map(failure_label));
                self.settle(place, started, Instant::now(), read);
            }
            tokio::time::sleep_until(next).await;
        }
    }

    /// Confirms the sends a read of `place` (started at `started`, answered
    /// at `answered`) saw, and decides those whose check time it started
    /// after: missing when it succeeded, unconfirmed when it did not.
    fn settle(
        &self,
        place: Place,
        started: Instant,
        answered: Instant,
        read: Result<Vec<String>, Fault>,
    ) {
        let mut waiting = self.waiting.locked();
        if let Ok(texts) = &read {
            for text in texts {
                let Some(id) = probe_id_in(text) else {
                    continue;
                };
                if waiting.get(id).is_some_and(|w| w.place == place) {
                    let w = waiting.remove(id).expect("just found");
                    let _ = w.seen.send(Ok(answered));
                }
            }
        }
        let due: Vec<String> = waiting
            .iter()
            .filter(|(_, w)| w.place == place && w.check_after <= started)
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            let Some(w) = waiting.remove(&id) else {
                continue;
            };
            match &read {
                // Dropping the sender tells the waiting send it is missing.
                Ok(_) => drop(w.seen),
                Err(unread) => {
                    let _ = w.seen.send(Err(Unwatched::HistoryUnread(*unread)));
                }
            }
        }
    }
}

impl Waiters for HistoryWatch {
    fn forget(&self, probe_id: &str) {
        self.waiting.locked().remove(probe_id);
    }
}

/// The probe id in a probe message's text: `improbe <kind> probe <id> sent <time>`.
pub fn probe_id_in(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("improbe ")?;
    let (_, rest) = rest.split_once(" probe ")?;
    rest.split(' ').next().filter(|id| !id.is_empty())
}

/// Why a history could not be read, as `/metrics` labels it: the
/// provider failed to answer (a transport error, 5xx, a server code), or it
/// refused us for the reason named.
fn failure_label(fault: &Fault) -> &'static str {
    match fault {
        Fault::Provider => "provider_error",
        Fault::Ours(reason) => reason.as_str(),
    }
}

/// The texts of the messages in `place`'s history since `since_secs`.
async fn read_history(
    histories: &Histories,
    place: Place,
    since_secs: i64,
) -> Result<Vec<String>, Fault> {
    match place {
        Place::Direct => read_direct(histories, since_secs).await,
        Place::Group => read_group(histories, since_secs).await,
    }
}

/// One history call, its answer classified as every other call is.
async fn call<T: for<'de> Deserialize<'de> + Default>(
    client: &TencentClient,
    command: &str,
    body: &impl Serialize,
) -> Result<T, Fault> {
    let reply: Reply = client
        .call(command, body, false)
        .await
        .map_err(|_| Fault::Provider)?;
    let outcome = classify(&reply, reply.answer().as_ref());
    match outcome.outcome {
        Outcome::Ok => serde_json::from_slice(&reply.body).map_err(|_| Fault::Provider),
        Outcome::Fail => Err(Fault::Provider),
        Outcome::Inconclusive => {
            Err(Fault::Ours(outcome.reason.unwrap_or(
                crate::attempt::InconclusiveReason::RequestRejected,
            )))
        }
    }
}

#[derive(Serialize)]
struct RoamRequest<'a> {
    #[serde(rename = "Operator_Account")]
    operator: &'a str,
    #[serde(rename = "Peer_Account")]
    peer: &'a str,
    #[serde(rename = "MaxCnt")]
    max_count: u64,
    #[serde(rename = "MinTime")]
    min_time: i64,
    #[serde(rename = "MaxTime")]
    max_time: i64,
    #[serde(rename = "LastMsgKey", skip_serializing_if = "Option::is_none")]
    last_key: Option<String>,
}

// A history page is read with `Lenient` on its leaves only: an untagged
// enum buffers the value it wraps before reading it, so one around each
// list and message would copy a page once per level of nesting. A page
// whose lists are not lists is unreadable, which leaves its sends
// unconfirmed, as a failed read does.

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RoamAnswer {
    #[serde(default)]
    complete: Lenient<i64>,
    #[serde(default)]
    last_msg_time: Lenient<i64>,
    #[serde(default)]
    last_msg_key: Lenient<String>,
    #[serde(default)]
    msg_list: Vec<HistoryMessage>,
}

#[derive(Serialize)]
struct GroupRequest<'a> {
    #[serde(rename = "GroupId")]
    group: &'a str,
    #[serde(rename = "ReqMsgNumber")]
    count: u64,
    #[serde(rename = "ReqMsgSeq", skip_serializing_if = "Option::is_none")]
    below_seq: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GroupAnswer {
    #[serde(default)]
    is_finished: Lenient<i64>,
    #[serde(default)]
    rsp_msg_list: Vec<HistoryMessage>,
}

/// A message as both histories give it: only what matching needs.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HistoryMessage {
    #[serde(rename = "From_Account", default)]
    from_account: Lenient<String>,
    #[serde(default)]
    msg_seq: Lenient<u64>,
    #[serde(default)]
    msg_time_stamp: Lenient<i64>,
    #[serde(default)]
    msg_body: Vec<HistoryElem>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HistoryElem {
    #[serde(default)]
    msg_type: Lenient<String>,
    #[serde(default)]
    msg_content: HistoryContent,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HistoryContent {
    #[serde(default)]
    text: Lenient<String>,
}

impl HistoryMessage {
    /// The texts of the message sent by `sender`.
    fn texts_from(&self, sender: &str) -> impl Iterator<Item = String> + '_ {
        let ours = self.from_account.get().map(String::as_str) == Some(sender);
        self.msg_body
            .iter()
            .filter(move |_| ours)
            .filter(|e| e.msg_type.get().map(String::as_str) == Some("TIMTextElem"))
            .filter_map(|e| e.msg_content.text.get().cloned())
    }
}

/// The recipient's side of the one-to-one conversation (the sends do not
/// sync to the sender's), newest first, page by page while Tencent says
/// there is more.
async fn read_direct(histories: &Histories, since_secs: i64) -> Result<Vec<String>, Fault> {
    let mut texts = Vec::new();
    let mut max_time = histories.client.clock.now().timestamp() + CLOCK_SLACK_SECS;
    let mut last_key = None;
    for _ in 0..MAX_PAGES {
        let page: RoamAnswer = call(
            &histories.client,
            command::ADMIN_GET_ROAM_MSG,
            &RoamRequest {
                operator: &histories.recipient,
                peer: &histories.sender,
                max_count: DIRECT_PAGE,
                min_time: since_secs,
                max_time,
                last_key: last_key.take(),
            },
        )
        .await?;
        for message in &page.msg_list {
            texts.extend(message.texts_from(&histories.sender));
        }
        if page.complete.get().copied().unwrap_or(1) != 0 {
            break;
        }
        match (page.last_msg_time.get(), page.last_msg_key.get()) {
            (Some(time), Some(key)) if !key.is_empty() => {
                max_time = *time;
                last_key = Some(key.clone());
            }
            _ => break,
        }
    }
    Ok(texts)
}

/// The group's history, newest first, a page of [`GROUP_PAGE`] at a time
/// until a page reaches back before `since_secs` or the history ends.
async fn read_group(histories: &Histories, since_secs: i64) -> Result<Vec<String>, Fault> {
    let mut texts = Vec::new();
    let mut below_seq = None;
    for _ in 0..MAX_PAGES {
        let page: GroupAnswer = call(
            &histories.client,
            command::GROUP_MSG_GET_SIMPLE,
            &GroupRequest {
                group: &histories.group,
                count: GROUP_PAGE,
                below_seq,
            },
        )
        .await?;
        let messages = page.rsp_msg_list.as_slice();
        for message in messages {
            texts.extend(message.texts_from(&histories.sender));
        }
        let oldest_time = messages
            .iter()
            .filter_map(|m| m.msg_time_stamp.get().copied())
            .min();
        let lowest_seq = messages
            .iter()
            .filter_map(|m| m.msg_seq.get().copied())
            .min();
        let finished = page.is_finished.get().copied().unwrap_or(1) != 0;
        match lowest_seq {
            Some(seq) if !finished && seq > 1 && oldest_time.is_some_and(|t| t >= since_secs) => {
                below_seq = Some(seq - 1);
            }
            _ => break,
        }
    }
    Ok(texts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_id_is_read_from_the_probe_text_only() {
        assert_eq!(
            probe_id_in("improbe send_group probe 00ff00ff00ff00ff sent 2026-12-07T10:00:00.000Z"),
            Some("00ff00ff00ff00ff")
        );
        assert_eq!(probe_id_in("hello probe 1234 sent"), None);
        assert_eq!(probe_id_in("improbe login"), None);
    }
}
