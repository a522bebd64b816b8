//! Tencent Cloud IM over its server-side REST API.
//!
//! `POST https://<endpoint>/v4/<service>/<command>?sdkappid=..&identifier=<admin>
//! &usersig=..&random=<u32>&contenttype=json`. Most errors arrive with HTTP
//! 200, so the `ActionStatus` / `ErrorCode` / `ErrorInfo` envelope is always read.

pub mod codes;
pub mod delivery;
pub mod settings;
pub mod setup;
pub mod usersig;

pub use settings::TencentSettings;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::delivery::{AwaitedDelivery, DeliveryMode, Place, Waiters, finish_accepted};
use super::{Adapter, Lenient, Probe, ProbeContext, ProbeOutcome, Provider, describe};
use crate::attempt::InconclusiveReason::{Credentials, RequestRejected, Throttled};
use crate::attempt::{Kind, Outcome};
use crate::clock::Clock;
use crate::secret::Secret;
use crate::sync::Locked;
use delivery::{Histories, HistoryWatch};

/// How long a minted administrator UserSig is valid.
pub const USERSIG_LIFETIME_SECS: i64 = 86_400;
/// A cached UserSig is replaced once less than this much of its life is left.
const USERSIG_RENEW_BEFORE_SECS: i64 = 3_600;
/// Tencent's REST backend answers within this long and tells callers to wait
/// longer; a shorter `timeout` would record slow successes as failures.
pub const ANSWERS_WITHIN: std::time::Duration = std::time::Duration::from_secs(3);
/// Probe messages expire quickly: they exist to be accepted, not read.
const MESSAGE_LIFETIME_SECS: i64 = 60;

/// REST commands, as `service/command`.
pub mod command {
    pub const ACCOUNT_CHECK: &str = "im_open_login_svc/account_check";
    pub const ACCOUNT_IMPORT: &str = "im_open_login_svc/account_import";
    pub const SEND_MSG: &str = "openim/sendmsg";
    pub const SEND_GROUP_MSG: &str = "group_open_http_svc/send_group_msg";
    pub const CREATE_GROUP: &str = "group_open_http_svc/create_group";
    pub const GET_GROUP_INFO: &str = "group_open_http_svc/get_group_info";
    pub const ADD_GROUP_MEMBER: &str = "group_open_http_svc/add_group_member";
    pub const ADMIN_GET_ROAM_MSG: &str = "openim/admin_getroammsg";
    pub const GROUP_MSG_GET_SIMPLE: &str = "group_open_http_svc/group_msg_get_simple";
}

/// The REST client: signs, sends and reads envelopes.
pub struct TencentClient {
    /// The endpoint's `/v4/` URL, parsed once; an endpoint that is not a URL
    /// fails every call, as a transport error.
    api_base: Result<reqwest::Url, String>,
    sdk_app_id: u64,
    admin: String,
    key: String,
    /// Reused connections for sends.
    pooled: reqwest::Client,
    /// Keeps no idle connection, so every login opens a new one (DNS, TCP,
    /// TLS); built once, since building a client parses the root store.
    unpooled: reqwest::Client,
    cached_sig: Mutex<Option<(String, i64)>>,
    clock: Arc<dyn Clock>,
}

/// A REST answer: the HTTP status and the body as it came.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: bytes::Bytes,
}

impl Reply {
    /// The body read as Tencent's answer, or `None` when it is not a JSON
    /// object of that shape.
    pub fn answer(&self) -> Option<Answer> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The body as JSON of any shape (the setup commands read their own
    /// fields from it); an unparseable body is `null`.
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The body as text, cut for a log line.
    fn excerpt(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        text.chars().take(1_024).collect()
    }
}

/// The fields of a Tencent answer the probes read: the envelope every answer
/// carries, `account_check`'s items and `send_group_msg`'s drop reason. Read
/// straight from the bytes, without building a JSON tree per attempt.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Answer {
    action_status: Option<String>,
    error_code: Option<i64>,
    error_info: Option<String>,
    #[serde(default)]
    result_item: Lenient<Vec<CheckedAccount>>,
    #[serde(default)]
    msg_drop_reason: Lenient<String>,
    /// A send's server time (Unix seconds), as the histories show it.
    #[serde(default)]
    msg_time: Lenient<i64>,
}

/// One item of `account_check`'s `ResultItem`.
#[derive(Debug, Default, Deserialize)]
struct CheckedAccount {
    #[serde(rename = "UserID", default)]
    user_id: Lenient<String>,
    #[serde(rename = "ResultCode", default)]
    result_code: Lenient<i64>,
    #[serde(rename = "ResultInfo", default)]
    result_info: Lenient<String>,
    #[serde(rename = "AccountStatus", default)]
    account_status: Lenient<String>,
}

impl TencentClient {
    pub fn new(settings: &TencentSettings, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let shared = crate::probe::HttpClients::shared()?;
        let key = settings
            .secret_key
            .reveal()
            .map_err(|e| anyhow::anyhow!("secret_key for {}: {e}", settings.endpoint))?;
        Ok(Self {
            api_base: reqwest::Url::parse(&format!(
                "{}/v4/",
                settings.endpoint.trim_end_matches('/')
            ))
            .map_err(|e| format!("endpoint is not a URL: {e}")),
            sdk_app_id: settings.sdk_app_id,
            admin: settings.admin.clone(),
            key,
            pooled: shared.pooled,
            unpooled: shared.unpooled,
            cached_sig: Mutex::new(None),
            clock,
        })
    }

    /// The administrator's UserSig, minted again well before it expires.
    fn admin_sig(&self, fresh: bool) -> String {
        let now = self.clock.now().timestamp();
        let mut cached = self.cached_sig.locked();
        match cached.as_ref() {
            Some((sig, minted))
                if !fresh && now < minted + USERSIG_LIFETIME_SECS - USERSIG_RENEW_BEFORE_SECS =>
            {
                sig.clone()
            }
            _ => {
                let sig = usersig::mint(
                    &self.key,
                    &self.admin,
                    self.sdk_app_id,
                    now,
                    USERSIG_LIFETIME_SECS,
                );
                *cached = Some((sig.clone(), now));
                sig
            }
        }
    }

    /// The command's URL with its query. The path and the query are appended
    /// to the parsed endpoint piece by piece, which encodes each value once;
    /// parsing a whole URL string would read the long UserSig again on every
    /// attempt (docs/performance.md).
    fn url(&self, command: &str, fresh_sig: bool) -> Result<reqwest::Url, String> {
        let mut url = self.api_base.clone()?;
        url.path_segments_mut()
            .map_err(|()| "endpoint cannot hold a path".to_owned())?
            .pop_if_empty()
            .extend(command.split('/'));
        url.query_pairs_mut()
            .append_pair("sdkappid", itoa::Buffer::new().format(self.sdk_app_id))
            .append_pair("identifier", &self.admin)
            .append_pair("usersig", &self.admin_sig(fresh_sig))
            .append_pair("random", itoa::Buffer::new().format(fastrand::u32(..)))
            .append_pair("contenttype", "json");
        Ok(url)
    }

    /// Calls one REST command. `Err` is a transport failure (no HTTP answer).
    /// Errors never include the URL, which carries the UserSig.
    pub async fn call(
        &self,
        command: &str,
        body: &impl serde::Serialize,
        fresh_connection: bool,
    ) -> Result<Reply, String> {
        let body = serde_json::to_vec(body).map_err(|e| e.to_string())?;
        self.call_with(command, body, fresh_connection).await
    }

    /// The part of [`Self::call`] that does not depend on the body's type,
    /// so its future is compiled once rather than once per request type.
    async fn call_with(
        &self,
        command: &str,
        body: Vec<u8>,
        fresh_connection: bool,
    ) -> Result<Reply, String> {
        let client = if fresh_connection {
            &self.unpooled
        } else {
            &self.pooled
        };
        let url = self.url(command, fresh_connection)?;
        let response = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| describe(&e.without_url()))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| describe(&e.without_url()))?;
        Ok(Reply { status, body })
    }
}

/// Classifies a REST reply per docs/sla.md and [`codes`].
pub fn classify_reply(reply: &Reply) -> ProbeOutcome {
    classify(reply, reply.answer().as_ref())
}

/// [`classify_reply`] for an answer already read from the reply.
fn classify(reply: &Reply, answer: Option<&Answer>) -> ProbeOutcome {
    let status = Some(i32::from(reply.status));
    if reply.status >= 500 {
        return ProbeOutcome::fail(status, None, format!("HTTP {}", reply.status));
    }
    if reply.status == 429 {
        return ProbeOutcome::inconclusive(Throttled, status, None, "HTTP 429");
    }
    if reply.status >= 400 {
        return ProbeOutcome::inconclusive(
            RequestRejected,
            status,
            None,
            format!("HTTP {}", reply.status),
        );
    }
    let Some(answer) = answer else {
        return ProbeOutcome::fail(status, None, "response is not a Tencent IM envelope");
    };
    let code = answer.error_code.unwrap_or(-1);
    if answer.action_status.as_deref() == Some("OK") && code == 0 {
        return ProbeOutcome::ok(status);
    }
    if answer.action_status.is_none() {
        return ProbeOutcome::fail(status, None, "response has no ActionStatus");
    }
    classify_code(
        status,
        code,
        answer.error_info.clone().unwrap_or_default(),
        reply,
    )
}

/// The outcome for a non-zero error code, from the envelope or from one item
/// of a batch answer (`reply` carried it, logged for unknown codes).
fn classify_code(status: Option<i32>, code: i64, info: String, reply: &Reply) -> ProbeOutcome {
    let message = if info.is_empty() {
        format!("ErrorCode {code}")
    } else {
        info
    };
    match codes::lookup(code) {
        Some(fault) => fault.outcome(status, Some(code.to_string()), message),
        None => {
            warn_unclassified_once(code, reply);
            ProbeOutcome::fail(status, Some(code.to_string()), message)
        }
    }
}

/// Whether a recorded `error_code` is missing from [`codes`]: such a failure
/// counts (an outage must not be hidden) but must be checked before claiming.
pub fn is_unclassified(error_code: &str) -> bool {
    error_code
        .parse::<i64>()
        .map_or(true, |code| codes::lookup(code).is_none())
}

/// Logs an error code missing from [`codes`] once per process, with the raw
/// answer that carried it, so someone extends the table.
fn warn_unclassified_once(code: i64, reply: &Reply) {
    static SEEN: Mutex<BTreeSet<i64>> = Mutex::new(BTreeSet::new());
    if SEEN.locked().insert(code) {
        tracing::warn!(
            code,
            envelope = %reply.excerpt(),
            "Tencent answered with an error code that is not in the classification table; it counts as a provider failure: check it before claiming and add it to src/probe/tencent/codes.rs"
        );
    }
}

/// Reads `account_check`'s items once the envelope said OK. Each item carries
/// its own `ResultCode` (0 success, otherwise an error code like the
/// envelope's): a failed item is classified by its code, a provider fault
/// first; only an item that succeeded and says the account is not imported is
/// our setup.
fn account_check_items(reply: &Reply, answer: &Answer, ok: ProbeOutcome) -> ProbeOutcome {
    let items = answer.result_item.get().map_or(&[][..], Vec::as_slice);
    let failed = items.iter().filter_map(|item| {
        let code = item.result_code.get().copied().unwrap_or(0);
        (code != 0).then(|| {
            let info = item.result_info.get().cloned().unwrap_or_default();
            classify_code(ok.http_status, code, info, reply)
        })
    });
    let failed: Vec<ProbeOutcome> = failed.collect();
    if let Some(worst) = failed
        .iter()
        .find(|o| o.outcome == Outcome::Fail)
        .or_else(|| failed.first())
    {
        return worst.clone();
    }
    let missing: Vec<&str> = items
        .iter()
        .filter(|item| item.account_status.get().map(String::as_str) != Some("Imported"))
        .filter_map(|item| item.user_id.get().map(String::as_str))
        .collect();
    if missing.is_empty() {
        return ok;
    }
    let message = format!(
        "probe accounts not imported: {}; run `improbe setup`",
        missing.join(", ")
    );
    ProbeOutcome::inconclusive(Credentials, ok.http_status, None, message)
}

/// `account_check`'s request: the two probe accounts.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct AccountCheck<'a> {
    check_item: [UserRef<'a>; 2],
}

#[derive(Serialize)]
struct UserRef<'a> {
    #[serde(rename = "UserID")]
    user_id: &'a str,
}

/// `sendmsg`'s request: one text message between the probe accounts.
#[derive(Serialize)]
struct SendMsg<'a> {
    #[serde(rename = "SyncOtherMachine")]
    sync_other_machine: u8,
    #[serde(rename = "From_Account")]
    from: &'a str,
    #[serde(rename = "To_Account")]
    to: &'a str,
    #[serde(rename = "MsgLifeTime")]
    lifetime_secs: i64,
    #[serde(rename = "MsgRandom")]
    random: u32,
    #[serde(rename = "MsgBody")]
    body: [TextElem; 1],
}

/// `send_group_msg`'s request: one text message to the probe group.
#[derive(Serialize)]
struct SendGroupMsg<'a> {
    #[serde(rename = "GroupId")]
    group_id: &'a str,
    #[serde(rename = "From_Account")]
    from: &'a str,
    #[serde(rename = "Random")]
    random: u32,
    #[serde(rename = "MsgBody")]
    body: [TextElem; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct TextElem {
    msg_type: &'static str,
    msg_content: TextContent,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct TextContent {
    text: String,
}

/// Login, one-to-one and group sends against one Tencent Cloud IM app.
pub struct TencentProbe {
    client: Arc<TencentClient>,
    sender: String,
    recipient: String,
    group: String,
    /// Reads the histories back while sends wait (`confirm_delivery`).
    watch: Option<(Arc<HistoryWatch>, tokio::task::AbortHandle)>,
    delivery_mode: DeliveryMode,
    timeout: std::time::Duration,
}

impl Drop for TencentProbe {
    fn drop(&mut self) {
        if let Some((_, task)) = &self.watch {
            task.abort();
        }
    }
}

impl TencentProbe {
    /// A probe whose sends are judged by the API's answer alone.
    pub fn new(settings: &TencentSettings, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        Ok(Self {
            client: Arc::new(TencentClient::new(settings, clock)?),
            sender: settings.sender.clone(),
            recipient: settings.recipient.clone(),
            group: settings.group.clone(),
            watch: None,
            delivery_mode: DeliveryMode::Record,
            timeout: ANSWERS_WITHIN,
        })
    }

    /// The target's probe, confirming delivery when its settings say so.
    pub fn for_target(settings: &TencentSettings, context: &ProbeContext) -> anyhow::Result<Self> {
        let mut probe = Self::new(settings, context.clock.clone())?;
        probe.delivery_mode = context.delivery;
        probe.timeout = context.timeout;
        if settings.confirm_delivery {
            probe.watch = Some(HistoryWatch::start(
                &context.target,
                Histories {
                    client: probe.client.clone(),
                    sender: probe.sender.clone(),
                    recipient: probe.recipient.clone(),
                    group: probe.group.clone(),
                },
            ));
        }
        Ok(probe)
    }

    /// The message and the probe id it carries.
    fn text(&self, kind: Kind) -> ([TextElem; 1], String) {
        let id = format!("{:016x}", fastrand::u64(..));
        let at = self
            .client
            .clock
            .now()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let text = [TextElem {
            msg_type: "TIMTextElem",
            msg_content: TextContent {
                text: format!("improbe {kind} probe {id} sent {at}"),
            },
        }];
        (text, id)
    }

    /// Sends `body` with `command`, waiting for the recipient's history to
    /// show it when delivery is confirmed; `judge` reads the answer.
    async fn send(
        &self,
        command: &str,
        body: &impl Serialize,
        probe_id: &str,
        place: Place,
        judge: impl FnOnce(&Reply) -> ProbeOutcome,
    ) -> ProbeOutcome {
        let started = tokio::time::Instant::now();
        let seen = self.watch.as_ref().map(|(w, _)| {
            let sent_at = self.client.clock.now().timestamp();
            w.expect(probe_id, place, sent_at, started, self.timeout)
        });
        let mut server_time = None;
        let mut outcome = match self.client.call(command, body, false).await {
            Ok(reply) => {
                if self.watch.is_some() {
                    server_time = reply.answer().and_then(|a| a.msg_time.get().copied());
                }
                judge(&reply)
            }
            Err(e) => ProbeOutcome::fail(None, None, e),
        };
        let Some(((watch, _), seen)) = self.watch.as_ref().zip(seen) else {
            return outcome;
        };
        if outcome.outcome != Outcome::Ok {
            watch.forget(probe_id);
            return outcome;
        }
        if let Some(server_secs) = server_time {
            watch.answered(probe_id, server_secs);
        }
        outcome.answered_after = Some(started.elapsed());
        let awaited = AwaitedDelivery {
            book: watch.as_ref(),
            probe_id,
            seen: Ok(seen),
            silence_is_missing: false,
        };
        finish_accepted(
            outcome,
            started,
            Some(awaited),
            self.delivery_mode,
            self.timeout,
        )
        .await
    }

    /// The authentication path: a fresh UserSig over a fresh connection, and
    /// a check that the probe accounts exist.
    async fn login(&self) -> ProbeOutcome {
        let body = AccountCheck {
            check_item: [
                UserRef {
                    user_id: &self.sender,
                },
                UserRef {
                    user_id: &self.recipient,
                },
            ],
        };
        let reply = match self.client.call(command::ACCOUNT_CHECK, &body, true).await {
            Ok(reply) => reply,
            Err(e) => return ProbeOutcome::fail(None, None, e),
        };
        let answer = reply.answer();
        let outcome = classify(&reply, answer.as_ref());
        match answer {
            Some(answer) if outcome.outcome == Outcome::Ok => {
                account_check_items(&reply, &answer, outcome)
            }
            _ => outcome,
        }
    }

    async fn send_direct(&self) -> ProbeOutcome {
        let (text, probe_id) = self.text(Kind::SendDirect);
        let body = SendMsg {
            sync_other_machine: 2,
            from: &self.sender,
            to: &self.recipient,
            lifetime_secs: MESSAGE_LIFETIME_SECS,
            random: fastrand::u32(..),
            body: text,
        };
        self.send(
            command::SEND_MSG,
            &body,
            &probe_id,
            Place::Direct,
            classify_reply,
        )
        .await
    }

    async fn send_group(&self) -> ProbeOutcome {
        let (text, probe_id) = self.text(Kind::SendGroup);
        let body = SendGroupMsg {
            group_id: &self.group,
            from: &self.sender,
            random: fastrand::u32(..),
            body: text,
        };
        self.send(
            command::SEND_GROUP_MSG,
            &body,
            &probe_id,
            Place::Group,
            judge_group_send,
        )
        .await
    }

    pub fn client(&self) -> &TencentClient {
        &self.client
    }
}

/// A group send's answer: an accepted message may still be dropped.
fn judge_group_send(reply: &Reply) -> ProbeOutcome {
    let answer = reply.answer();
    let outcome = classify(reply, answer.as_ref());
    // Tencent documents the field as empty by default and otherwise the
    // reason the message was dropped (today only frequency control).
    let dropped = answer
        .as_ref()
        .and_then(|a| a.msg_drop_reason.get())
        .filter(|reason| !reason.is_empty());
    match dropped {
        // Accepted but dropped (e.g. MsgFreqCtrl): not a success. Tencent
        // drops for our own send rate, so it is throttling, not an outage.
        Some(reason) if outcome.outcome == Outcome::Ok => ProbeOutcome::inconclusive(
            Throttled,
            outcome.http_status,
            None,
            format!("message dropped: {reason}"),
        ),
        _ => outcome,
    }
}

#[async_trait]
impl Probe for TencentProbe {
    async fn attempt(&self, kind: Kind) -> ProbeOutcome {
        match kind {
            Kind::Login => self.login().await,
            Kind::SendDirect => self.send_direct().await,
            Kind::SendGroup => self.send_group().await,
        }
    }
}

#[async_trait]
impl Adapter for TencentSettings {
    fn kind(&self) -> Provider {
        Provider::Tencent
    }

    fn answers_within(&self) -> Option<std::time::Duration> {
        Some(ANSWERS_WITHIN)
    }

    fn check(&self) -> Vec<(&'static str, String)> {
        self.problems()
    }

    fn secrets(&self) -> Vec<(&'static str, &Secret)> {
        vec![("secret_key", &self.secret_key)]
    }

    fn probe(&self, context: &ProbeContext) -> anyhow::Result<Arc<dyn Probe>> {
        Ok(Arc::new(TencentProbe::for_target(self, context)?))
    }

    fn confirms_delivery(&self) -> bool {
        self.confirm_delivery
    }

    async fn setup(&self) -> Option<anyhow::Result<Vec<String>>> {
        Some(setup::setup(self).await)
    }

    fn is_unclassified_code(&self, error_code: &str) -> bool {
        is_unclassified(error_code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attempt::Outcome;
    use serde_json::json;

    fn reply(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body: serde_json::to_vec(&body).unwrap().into(),
        }
    }

    #[test]
    fn envelopes_are_read_whatever_the_http_status() {
        let ok = classify_reply(&reply(
            200,
            json!({"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""}),
        ));
        assert_eq!(ok.outcome, Outcome::Ok);
        let server = classify_reply(&reply(
            200,
            json!({"ActionStatus": "FAIL", "ErrorCode": 70500, "ErrorInfo": "internal"}),
        ));
        assert_eq!(
            (server.outcome, server.error_code.as_deref()),
            (Outcome::Fail, Some("70500"))
        );
        let ours = classify_reply(&reply(
            200,
            json!({"ActionStatus": "FAIL", "ErrorCode": 70001, "ErrorInfo": "expired"}),
        ));
        assert_eq!(
            (ours.outcome, ours.reason),
            (Outcome::Inconclusive, Some(Credentials))
        );
        let unknown = classify_reply(&reply(
            200,
            json!({"ActionStatus": "FAIL", "ErrorCode": 12345}),
        ));
        assert_eq!(
            (unknown.outcome, unknown.error.as_deref()),
            (Outcome::Fail, Some("ErrorCode 12345"))
        );
        assert_eq!(
            classify_reply(&reply(502, json!({}))).outcome,
            Outcome::Fail
        );
        assert_eq!(
            classify_reply(&reply(429, json!({}))).reason,
            Some(Throttled)
        );
        let html = Reply {
            status: 200,
            body: bytes::Bytes::from_static(b"<html>"),
        };
        assert_eq!(classify_reply(&html).outcome, Outcome::Fail);
    }

    #[test]
    fn request_bodies_carry_the_documented_field_names() {
        let text = || {
            [TextElem {
                msg_type: "TIMTextElem",
                msg_content: TextContent { text: "hi".into() },
            }]
        };
        let check = AccountCheck {
            check_item: [UserRef { user_id: "a" }, UserRef { user_id: "b" }],
        };
        assert_eq!(
            serde_json::to_value(&check).unwrap(),
            json!({"CheckItem": [{"UserID": "a"}, {"UserID": "b"}]})
        );
        let direct = SendMsg {
            sync_other_machine: 2,
            from: "a",
            to: "b",
            lifetime_secs: 60,
            random: 7,
            body: text(),
        };
        assert_eq!(
            serde_json::to_value(&direct).unwrap(),
            json!({"SyncOtherMachine": 2, "From_Account": "a", "To_Account": "b",
                   "MsgLifeTime": 60, "MsgRandom": 7,
                   "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "hi"}}]})
        );
        let group = SendGroupMsg {
            group_id: "g",
            from: "a",
            random: 7,
            body: text(),
        };
        assert_eq!(
            serde_json::to_value(&group).unwrap(),
            json!({"GroupId": "g", "From_Account": "a", "Random": 7,
                   "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "hi"}}]})
        );
    }

    /// A field of an unexpected type is read as absent, as the JSON tree
    /// this replaced read it, instead of making the whole answer unreadable.
    #[test]
    fn an_odd_field_does_not_make_an_answer_unreadable() {
        let ok = || ProbeOutcome::ok(Some(200));
        let odd = reply(
            200,
            json!({"ActionStatus": "OK", "ErrorCode": 0, "MsgDropReason": 5,
                   "ResultItem": [{"UserID": "a", "ResultCode": "x", "AccountStatus": "Imported"},
                                  {"UserID": 7, "ResultCode": 0, "AccountStatus": "NotImported"}]}),
        );
        let answer = odd.answer().expect("readable");
        assert_eq!(classify_reply(&odd).outcome, Outcome::Ok);
        assert!(answer.msg_drop_reason.get().is_none());
        // The first item's code reads as 0, the second has no readable user.
        assert_eq!(
            account_check_items(&odd, &answer, ok()).outcome,
            Outcome::Ok
        );
        let missing = reply(
            200,
            json!({"ActionStatus": "OK", "ErrorCode": 0,
                   "ResultItem": [{"UserID": "b", "ResultCode": 0, "AccountStatus": "NotImported"}]}),
        );
        let answer = missing.answer().unwrap();
        let outcome = account_check_items(&missing, &answer, ok());
        assert_eq!(
            (outcome.outcome, outcome.reason),
            (Outcome::Inconclusive, Some(Credentials))
        );
        let failed = reply(
            200,
            json!({"ActionStatus": "OK", "ErrorCode": 0, "ResultItem": "not a list"}),
        );
        let answer = failed.answer().unwrap();
        assert_eq!(
            account_check_items(&failed, &answer, ok()).outcome,
            Outcome::Ok
        );
    }

    #[test]
    fn the_query_carries_every_parameter_encoded_once() {
        let settings: TencentSettings = toml::from_str(
            r#"
            endpoint = "https://console.tim.qq.com/"
            sdk_app_id = 1400000000
            admin = "admin a&b=c"
            secret_key = "key"
            sender = "a"
            recipient = "b"
            group = "g"
            "#,
        )
        .unwrap();
        let clock: Arc<dyn Clock> = Arc::new(crate::clock::SystemClock);
        let client = TencentClient::new(&settings, clock.clone()).unwrap();
        let url = client.url(command::SEND_MSG, false).unwrap();
        assert_eq!(url.path(), "/v4/openim/sendmsg");
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            ["sdkappid", "identifier", "usersig", "random", "contenttype"]
        );
        assert_eq!(pairs[0].1, "1400000000");
        assert_eq!(pairs[1].1, "admin a&b=c", "decoded back to the identifier");
        assert!(url.query().unwrap().contains("identifier=admin+a%26b%3Dc&"));
        assert_eq!(pairs[2].1, client.admin_sig(false), "the cached UserSig");
        assert!(pairs[3].1.parse::<u32>().is_ok());
        assert_eq!(pairs[4].1, "json");

        let unparseable = TencentSettings {
            endpoint: "http://exa mple.com".into(),
            ..settings
        };
        let error = TencentClient::new(&unparseable, clock)
            .unwrap()
            .url(command::SEND_MSG, false)
            .unwrap_err();
        assert!(error.starts_with("endpoint is not a URL"), "{error}");
    }
}
