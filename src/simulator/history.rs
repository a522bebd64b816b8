//! The simulator's message histories, as Tencent's admin APIs read them
//! back: `admin_getroammsg` (a one-to-one conversation, newest first, pages
//! cut at 13 KB and continued with `LastMsgKey`) and `group_msg_get_simple`
//! (a group's messages by sequence, at most 20 a page). Messages are kept
//! for Tencent's default roaming time, 7 days.

use std::collections::VecDeque;

use serde_json::{Value, json};

use super::World;

/// Tencent's default roaming time: older messages are gone.
pub const KEPT_SECS: i64 = 7 * 86_400;
/// Tencent cuts an `admin_getroammsg` page at this many bytes of messages.
pub const PAGE_BYTES: usize = 13 * 1024;
/// A history keeps at most this many messages, so a simulator that serves
/// a benchmark for days stays small; Tencent keeps them all for 7 days.
pub const KEPT_MESSAGES: usize = 100_000;
/// `group_msg_get_simple` returns at most this many messages.
pub const GROUP_PAGE_MAX: u64 = 20;

/// A message as the histories keep it.
#[derive(Debug, Clone)]
pub struct Stored {
    pub from: String,
    pub to: String,
    pub seq: u64,
    pub random: u64,
    /// Unix seconds when it was accepted.
    pub time: i64,
    pub key: String,
    pub body: Value,
    /// When it shows in the history (Unix ms): later than `time` for a
    /// delayed delivery, never for an undelivered one.
    pub visible_at_ms: Option<i64>,
}

impl Stored {
    fn shows(&self, now_ms: i64) -> bool {
        self.visible_at_ms.is_some_and(|at| at <= now_ms)
            && self.time * 1000 > now_ms - KEPT_SECS * 1000
    }
}

/// Appends a message to a history, forgetting those past the roaming time
/// or the count.
fn keep(history: &mut VecDeque<Stored>, message: Stored) {
    let cutoff = message.time - KEPT_SECS;
    while history
        .front()
        .is_some_and(|m| m.time <= cutoff || history.len() >= KEPT_MESSAGES)
    {
        history.pop_front();
    }
    history.push_back(message);
}

impl World {
    /// Keeps an accepted one-to-one message; returns its `MsgKey`.
    pub(super) fn keep_direct(&mut self, mut message: Stored) -> String {
        self.direct_seq += 1;
        message.seq = self.direct_seq;
        message.key = format!("{}_{}_{}", message.seq, message.random, message.time);
        let key = message.key.clone();
        keep(&mut self.direct, message);
        key
    }

    /// Keeps an accepted group message; returns its `MsgSeq`.
    pub(super) fn keep_group(&mut self, group: &str, mut message: Stored) -> u64 {
        let seq = self.group_seq.entry(group.to_owned()).or_default();
        *seq += 1;
        message.seq = *seq;
        let seq = *seq;
        keep(
            self.group_messages.entry(group.to_owned()).or_default(),
            message,
        );
        seq
    }

    /// `admin_getroammsg`: the conversation of `Operator_Account` with
    /// `Peer_Account` between `MinTime` and `MaxTime`, newest first.
    pub(super) fn roam_messages(&self, body: &Value, now_ms: i64) -> Result<Value, (i64, String)> {
        let field = |name: &str| body[name].as_str().map(str::to_owned);
        let operator =
            field("Operator_Account").ok_or((90001, "Operator_Account missing".to_owned()))?;
        let peer = field("Peer_Account").ok_or((90001, "Peer_Account missing".to_owned()))?;
        let max_count = body["MaxCnt"]
            .as_u64()
            .ok_or((90001, "MaxCnt missing".to_owned()))?;
        let min_time = body["MinTime"]
            .as_i64()
            .ok_or((90001, "MinTime missing".to_owned()))?;
        let max_time = body["MaxTime"]
            .as_i64()
            .ok_or((90001, "MaxTime missing".to_owned()))?;
        if min_time > max_time {
            return Err((90001, "MinTime is after MaxTime".to_owned()));
        }
        for account in [&operator, &peer] {
            if !self.accounts.contains(account) {
                return Err((90012, format!("account {account} not imported")));
            }
        }
        let after_key = body["LastMsgKey"].as_str().filter(|k| !k.is_empty());
        // Kept in the order accepted, so newest first is from the back, and
        // the scan stops at the first message before `MinTime`.
        let mut candidates: Vec<&Stored> = self
            .direct
            .iter()
            .rev()
            .take_while(|m| m.time >= min_time)
            .filter(|m| m.shows(now_ms) && m.time <= max_time)
            // The messages reach the recipient only (`SyncOtherMachine: 2`
            // keeps them out of the sender's history).
            .filter(|m| m.to == operator && m.from == peer)
            .collect();
        if let Some(key) = after_key {
            let Some(at) = candidates.iter().position(|m| m.key == key) else {
                return Err((
                    90001,
                    "LastMsgKey is not in the requested time range".to_owned(),
                ));
            };
            candidates.drain(..=at);
        }
        let mut list = Vec::new();
        let mut bytes = 0;
        for m in &candidates {
            let item = json!({
                "From_Account": m.from, "To_Account": m.to, "MsgSeq": m.seq, "MsgRandom": m.random,
                "MsgTimeStamp": m.time, "MsgFlagBits": 0, "IsPeerRead": 0, "MsgKey": m.key, "MsgBody": m.body,
                "CloudCustomData": "",
            });
            let size = item.to_string().len();
            if list.len() as u64 >= max_count || (!list.is_empty() && bytes + size > PAGE_BYTES) {
                break;
            }
            bytes += size;
            list.push(item);
        }
        let complete = list.len() == candidates.len();
        let last = list.last().cloned().unwrap_or(Value::Null);
        Ok(json!({
            "Complete": if complete { 1 } else { 0 },
            "MsgCnt": list.len(),
            "LastMsgTime": last["MsgTimeStamp"].as_i64().unwrap_or(0),
            "LastMsgKey": last["MsgKey"].as_str().unwrap_or(""),
            "MsgList": list,
        }))
    }

    /// `group_msg_get_simple`: the newest `ReqMsgNumber` messages with a
    /// sequence at most `ReqMsgSeq`.
    pub(super) fn group_history(&self, body: &Value, now_ms: i64) -> Result<Value, (i64, String)> {
        let group = body["GroupId"]
            .as_str()
            .ok_or((10015, "GroupId missing".to_owned()))?;
        let count = body["ReqMsgNumber"]
            .as_u64()
            .ok_or((10004, "ReqMsgNumber missing".to_owned()))?;
        if !(1..=GROUP_PAGE_MAX).contains(&count) {
            return Err((10004, format!("ReqMsgNumber must be 1 to {GROUP_PAGE_MAX}")));
        }
        if !self.groups.contains_key(group) {
            return Err((10010, format!("group {group} does not exist")));
        }
        let at_most = body["ReqMsgSeq"].as_u64().unwrap_or(u64::MAX);
        // Kept in sequence order: newest first is from the back; one more
        // than a page tells whether the history goes on.
        let messages: Vec<&Stored> = self
            .group_messages
            .get(group)
            .into_iter()
            .flat_map(|m| m.iter().rev())
            .filter(|m| m.seq <= at_most && m.shows(now_ms))
            .take(count as usize + 1)
            .collect();
        let page: Vec<Value> = messages
            .iter()
            .take(count as usize)
            .map(|m| {
                json!({
                    "From_Account": m.from, "IsPlaceMsg": 0, "MsgBody": m.body, "MsgPriority": 1,
                    "MsgRandom": m.random, "MsgSeq": m.seq, "MsgTimeStamp": m.time,
                })
            })
            .collect();
        let finished = messages.len() <= count as usize;
        Ok(json!({
            "GroupId": group,
            "IsFinished": if finished { 1 } else { 0 },
            "RspMsgList": page,
        }))
    }
}
