//! Fakes of four IM clouds' server-side REST APIs, written from each
//! vendor's published reference (the same pages `config/providers/*.toml`
//! cite), for the `http` provider's tests: the three operations the
//! examples use, their documented answers and error envelopes, the
//! read-back, and faults a test scripts as the simulator's are.
//!
//! Each fake checks what its vendor checks: Sendbird's `Api-Token`,
//! Stream's `api_key` and HS256 server token (signature, `exp`),
//! CometChat's `apikey` and `onBehalfOf`, OpenIM's `operationID` and the
//! administrator token its login issued, with the expiry it stated. Time
//! is the test's clock, so a test moves it instead of waiting.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use improbe::clock::Clock;
use serde_json::{Value, json};
use sha2::Sha256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    Sendbird,
    StreamChat,
    CometChat,
    OpenIm,
}

impl Vendor {
    pub const ALL: [Vendor; 4] = [
        Vendor::Sendbird,
        Vendor::StreamChat,
        Vendor::CometChat,
        Vendor::OpenIm,
    ];

    /// The example's file name in `config/providers/`.
    pub fn example(self) -> &'static str {
        match self {
            Vendor::Sendbird => "sendbird",
            Vendor::StreamChat => "stream-chat",
            Vendor::CometChat => "cometchat",
            Vendor::OpenIm => "openim",
        }
    }

    /// The path the example's `base_url` ends with on the vendor's host.
    fn base_path(self) -> &'static str {
        match self {
            Vendor::Sendbird | Vendor::CometChat => "/v3",
            Vendor::StreamChat | Vendor::OpenIm => "",
        }
    }
}

/// What the fake does to every request until told otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Healthy,
    /// The vendor's internal error (an HTTP 5xx, or OpenIM's errCode 500).
    ServerError,
    /// The vendor's rate limit.
    Throttled,
    /// The key (or secret) the example is configured with is revoked:
    /// every request with it is refused, and every token issued before.
    KeyRevoked,
}

/// The key the fakes accept: the tests configure it as the example's secret.
pub const KEY: &str = "fake-key-0123456789";
/// Stream's public API key the fake accepts.
pub const STREAM_API_KEY: &str = "fake-api-key";
/// The users and conversations the examples name (made by hand for a real
/// vendor, docs/providers.md).
const USERS: [&str; 3] = ["improbe-sender", "improbe-recipient", "imAdmin"];
const CHANNELS: [&str; 3] = ["improbe-direct", "improbe-group", "improbe-probe"];

struct Shared {
    vendor: Vendor,
    clock: Arc<dyn Clock>,
    fault: Mutex<Fault>,
    /// Accepted sends are not shown by the read-back.
    hide_messages: AtomicBool,
    /// OpenIM: tokens issued, with their expiry.
    tokens: Mutex<HashMap<String, DateTime<Utc>>>,
    /// OpenIM: how long a new token lasts, in seconds.
    token_lifetime: AtomicU64,
    logins: AtomicU64,
    /// Sends answered with success.
    accepted: AtomicU64,
    /// Tokens a send was accepted with (OpenIM's issued, Stream's signed).
    tokens_used: Mutex<Vec<String>>,
    messages: Mutex<HashMap<String, Vec<Value>>>,
    next_id: AtomicU64,
}

pub struct VendorFake {
    shared: Arc<Shared>,
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for VendorFake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl VendorFake {
    pub async fn start(vendor: Vendor, clock: Arc<dyn Clock>) -> VendorFake {
        let shared = Arc::new(Shared {
            vendor,
            clock,
            fault: Mutex::new(Fault::Healthy),
            hide_messages: AtomicBool::new(false),
            tokens: Mutex::new(HashMap::new()),
            token_lifetime: AtomicU64::new(7_776_000),
            logins: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            tokens_used: Mutex::new(Vec::new()),
            messages: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        });
        let app = Router::new().fallback(answer).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        VendorFake { shared, addr, task }
    }

    /// What the example's `base_url` becomes.
    pub fn base_url(&self) -> String {
        format!("http://{}{}", self.addr, self.shared.vendor.base_path())
    }

    pub fn set_fault(&self, fault: Fault) {
        *self.shared.fault.lock().unwrap() = fault;
        if fault == Fault::KeyRevoked {
            self.shared.tokens.lock().unwrap().clear();
        }
    }

    pub fn hide_messages(&self, hide: bool) {
        self.shared.hide_messages.store(hide, Ordering::SeqCst);
    }

    /// OpenIM: how long tokens issued from now on last.
    pub fn set_token_lifetime(&self, seconds: u64) {
        self.shared.token_lifetime.store(seconds, Ordering::SeqCst);
    }

    pub fn logins(&self) -> u64 {
        self.shared.logins.load(Ordering::SeqCst)
    }

    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// The distinct tokens sends were accepted with, in first-use order.
    pub fn tokens_used(&self) -> Vec<String> {
        let mut distinct: Vec<String> = Vec::new();
        for t in self.shared.tokens_used.lock().unwrap().iter() {
            if !distinct.contains(t) {
                distinct.push(t.clone());
            }
        }
        distinct
    }
}

fn reply(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

async fn answer(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = *shared.fault.lock().unwrap();
    let query: HashMap<String, String> = uri
        .query()
        .map(|q| {
            url_pairs(q)
                .into_iter()
                .collect::<HashMap<String, String>>()
        })
        .unwrap_or_default();
    let json: Option<Value> = serde_json::from_slice(&body).ok();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let path = uri.path().to_owned();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let request = Request {
        method: &method,
        segments: &segments,
        query: &query,
        json: json.as_ref(),
        header: &header,
    };
    match shared.vendor {
        Vendor::Sendbird => sendbird(&shared, fault, &request),
        Vendor::StreamChat => stream_chat(&shared, fault, &request),
        Vendor::CometChat => cometchat(&shared, fault, &request),
        Vendor::OpenIm => openim(&shared, fault, &request),
    }
}

struct Request<'a> {
    method: &'a Method,
    segments: &'a [&'a str],
    query: &'a HashMap<String, String>,
    json: Option<&'a Value>,
    header: &'a dyn Fn(&str) -> Option<&'a str>,
}

fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8()
                    .ok()
                    .map(|c| c.into_owned())
            };
            Some((decode(k)?, decode(v)?))
        })
        .collect()
}

impl Shared {
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Stores an accepted send in `channel`, unless messages are hidden.
    fn keep(&self, channel: &str, message: Value) {
        self.accepted.fetch_add(1, Ordering::SeqCst);
        if !self.hide_messages.load(Ordering::SeqCst) {
            self.messages
                .lock()
                .unwrap()
                .entry(channel.to_owned())
                .or_default()
                .push(message);
        }
    }

    fn latest(&self, channel: &str, limit: usize) -> Vec<Value> {
        let messages = self.messages.lock().unwrap();
        let all = messages.get(channel).cloned().unwrap_or_default();
        all[all.len().saturating_sub(limit)..].to_vec()
    }

    fn id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::SeqCst)
    }
}

fn text_at<'a>(json: Option<&'a Value>, pointer: &str) -> Option<&'a str> {
    json?.pointer(pointer)?.as_str()
}

/// Sendbird Chat Platform API v3: `Api-Token`, errors as
/// `{"error": true, "code": ..., "message": ...}`.
fn sendbird(shared: &Shared, fault: Fault, r: &Request<'_>) -> Response {
    let error = |status: StatusCode, code: u64, message: &str| {
        reply(
            status,
            json!({"error": true, "code": code, "message": message}),
        )
    };
    if (r.header)("Api-Token") != Some(KEY) || fault == Fault::KeyRevoked {
        return error(
            StatusCode::UNAUTHORIZED,
            400401,
            "Invalid value: \"Api-Token\".",
        );
    }
    match fault {
        Fault::ServerError => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                500901,
                "Unexpected error.",
            );
        }
        Fault::Throttled => {
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                500910,
                "Rate limit exceeded.",
            );
        }
        _ => {}
    }
    match (r.method.as_str(), r.segments) {
        ("GET", ["v3", "users", user]) if USERS.contains(user) => reply(
            StatusCode::OK,
            json!({"user_id": user, "nickname": "", "is_active": true}),
        ),
        ("GET", ["v3", "users", _]) => {
            error(StatusCode::BAD_REQUEST, 400201, "\"User\" not found.")
        }
        (_, ["v3", "group_channels", channel, "messages"]) if !CHANNELS.contains(channel) => {
            error(StatusCode::BAD_REQUEST, 400201, "\"Channel\" not found.")
        }
        ("POST", ["v3", "group_channels", channel, "messages"]) => {
            let (Some("MESG"), Some(user), Some(text)) = (
                text_at(r.json, "/message_type"),
                text_at(r.json, "/user_id"),
                text_at(r.json, "/message"),
            ) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    400105,
                    "\"message_type\", \"user_id\" and \"message\" are required.",
                );
            };
            if !USERS.contains(&user) {
                return error(StatusCode::BAD_REQUEST, 400201, "\"User\" not found.");
            }
            let message = json!({
                "message_id": shared.id(), "type": "MESG", "message": text,
                "created_at": shared.now().timestamp_millis(), "channel_url": channel,
                "user": {"user_id": user}
            });
            shared.keep(channel, message.clone());
            reply(StatusCode::OK, message)
        }
        ("GET", ["v3", "group_channels", channel, "messages"]) => {
            let Some(ts) = r
                .query
                .get("message_ts")
                .and_then(|t| t.parse::<i64>().ok())
            else {
                return error(
                    StatusCode::BAD_REQUEST,
                    400105,
                    "\"message_ts\" or \"message_id\" is required.",
                );
            };
            let limit = |name: &str| {
                r.query
                    .get(name)
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(15)
            };
            let all = shared.latest(channel, usize::MAX);
            let (before, after): (Vec<Value>, Vec<Value>) = all
                .into_iter()
                .partition(|m| m["created_at"].as_i64().unwrap_or(0) < ts);
            let mut messages = before[before.len().saturating_sub(limit("prev_limit"))..].to_vec();
            messages.extend(after.into_iter().take(limit("next_limit")));
            reply(StatusCode::OK, json!({"messages": messages}))
        }
        _ => error(StatusCode::BAD_REQUEST, 400100, "Unexpected request."),
    }
}

/// Stream Chat REST: `api_key` in the query, an HS256 server token in
/// `Authorization` with `stream-auth-type: jwt`; errors as
/// `{"code": ..., "message": ..., "StatusCode": ...}`.
fn stream_chat(shared: &Shared, fault: Fault, r: &Request<'_>) -> Response {
    let error = |status: StatusCode, code: i64, message: &str| {
        reply(
            status,
            json!({"code": code, "message": message, "StatusCode": status.as_u16(), "duration": "0.01ms"}),
        )
    };
    if r.query.get("api_key").map(String::as_str) != Some(STREAM_API_KEY) {
        return error(StatusCode::UNAUTHORIZED, 5, "api_key not found");
    }
    if (r.header)("stream-auth-type") != Some("jwt") {
        return error(
            StatusCode::UNAUTHORIZED,
            5,
            "stream-auth-type header missing",
        );
    }
    let token = (r.header)("Authorization").unwrap_or("");
    let key = if fault == Fault::KeyRevoked {
        "rotated"
    } else {
        KEY
    };
    if let Err((code, message)) = verify_server_token(token, key, shared.now()) {
        return error(StatusCode::UNAUTHORIZED, code, message);
    }
    match fault {
        Fault::ServerError => {
            return error(StatusCode::INTERNAL_SERVER_ERROR, -1, "internal error");
        }
        Fault::Throttled => {
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                9,
                "Too many requests, check response headers for more information.",
            );
        }
        _ => {}
    }
    match (r.method.as_str(), r.segments) {
        ("GET", ["app"]) => reply(
            StatusCode::OK,
            json!({"app": {"name": "fake"}, "duration": "0.01ms"}),
        ),
        (_, ["channels", kind, channel, _])
            if !["messaging", "team"].contains(kind) || !CHANNELS.contains(channel) =>
        {
            error(StatusCode::NOT_FOUND, 16, "channel does not exist")
        }
        ("POST", ["channels", _, channel, "message"]) => {
            let (Some(text), Some(user)) = (
                text_at(r.json, "/message/text"),
                text_at(r.json, "/message/user_id"),
            ) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    4,
                    "message.text and message.user_id are required for server-side sends",
                );
            };
            let message = json!({
                "id": format!("m{}", shared.id()), "text": text, "user": {"id": user},
                "created_at": shared.now().to_rfc3339(), "type": "regular"
            });
            shared.tokens_used.lock().unwrap().push(token.to_owned());
            shared.keep(channel, message.clone());
            reply(
                StatusCode::CREATED,
                json!({"message": message, "duration": "0.01ms"}),
            )
        }
        ("POST", ["channels", _, channel, "query"]) => {
            let limit = r
                .json
                .and_then(|j| j.pointer("/messages/limit"))
                .and_then(Value::as_u64)
                .unwrap_or(25);
            reply(
                StatusCode::CREATED,
                json!({"channel": {"id": channel}, "messages": shared.latest(channel, limit as usize), "duration": "0.01ms"}),
            )
        }
        _ => error(StatusCode::NOT_FOUND, 4, "endpoint not found"),
    }
}

/// Checks a server token as Stream documents: HS256 over the app secret;
/// an `exp` in the past is code 40, a bad signature 43.
fn verify_server_token(
    token: &str,
    key: &str,
    now: DateTime<Utc>,
) -> Result<(), (i64, &'static str)> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts.as_slice() else {
        return Err((5, "JWT token is malformed"));
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(format!("{header}.{payload}").as_bytes());
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| (5, "JWT token is malformed"))?;
    if mac.verify_slice(&signature).is_err() {
        return Err((43, "JWTAuth error: token signature is invalid"));
    }
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap_or_default())
        .unwrap_or_default();
    if header["alg"] != "HS256" {
        return Err((5, "JWT alg must be HS256"));
    }
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap_or_default())
            .unwrap_or_default();
    if claims.get("user_id").is_some() {
        return Err((17, "a user token cannot make server-side calls"));
    }
    if let Some(exp) = claims["exp"].as_i64()
        && exp < now.timestamp()
    {
        return Err((40, "JWTAuth error: token has expired"));
    }
    if claims["iat"]
        .as_i64()
        .is_some_and(|iat| iat > now.timestamp() + 5)
    {
        return Err((42, "JWTAuth error: token used before issue at (iat)"));
    }
    Ok(())
}

/// CometChat REST API v3: the `apikey` header, `onBehalfOf` for user
/// calls; errors as `{"error": {"code": "ERR_...", "message": ...}}`.
fn cometchat(shared: &Shared, fault: Fault, r: &Request<'_>) -> Response {
    let error = |status: StatusCode, code: &str, message: &str| {
        reply(
            status,
            json!({"error": {"message": message, "devMessage": message, "source": "fake", "code": code}}),
        )
    };
    if (r.header)("apikey") != Some(KEY) || fault == Fault::KeyRevoked {
        return error(
            StatusCode::UNAUTHORIZED,
            "AUTH_ERR_APIKEY_NOT_FOUND",
            "The apikey is not found.",
        );
    }
    match fault {
        Fault::ServerError => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ERR_INTERNAL_SERVER_ERROR",
                "Something went wrong.",
            );
        }
        Fault::Throttled => {
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                "ERR_TOO_MANY_REQUESTS",
                "Too many requests.",
            );
        }
        _ => {}
    }
    let on_behalf = (r.header)("onBehalfOf");
    match (r.method.as_str(), r.segments) {
        ("POST", ["v3", "users", uid, "auth_tokens"]) if USERS.contains(uid) => reply(
            StatusCode::OK,
            json!({"data": {"uid": uid, "authToken": format!("{uid}_{}", shared.id()), "createdAt": shared.now().timestamp()}}),
        ),
        ("POST", ["v3", "users", _, "auth_tokens"]) => error(
            StatusCode::NOT_FOUND,
            "ERR_UID_NOT_FOUND",
            "The uid does not exist.",
        ),
        ("POST", ["v3", "messages"]) => {
            let Some(sender) = on_behalf.filter(|u| USERS.contains(u)) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "ERR_UID_NOT_FOUND",
                    "onBehalfOf names no user.",
                );
            };
            let (Some(receiver), Some(kind), Some(text)) = (
                text_at(r.json, "/receiver"),
                text_at(r.json, "/receiverType"),
                text_at(r.json, "/data/text"),
            ) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "ERR_BAD_REQUEST",
                    "receiver, receiverType and data.text are required.",
                );
            };
            let conversation = match kind {
                "user" if USERS.contains(&receiver) => conversation_of(sender, receiver),
                "group" if CHANNELS.contains(&receiver) => format!("group_{receiver}"),
                "user" => {
                    return error(
                        StatusCode::NOT_FOUND,
                        "ERR_UID_NOT_FOUND",
                        "The receiver does not exist.",
                    );
                }
                _ => {
                    return error(
                        StatusCode::NOT_FOUND,
                        "ERR_GUID_NOT_FOUND",
                        "The group does not exist.",
                    );
                }
            };
            let message = json!({
                "id": shared.id().to_string(), "conversationId": conversation, "sender": sender,
                "receiver": receiver, "receiverType": kind, "category": "message", "type": "text",
                "data": {"text": text}, "sentAt": shared.now().timestamp()
            });
            shared.keep(&conversation, message.clone());
            reply(StatusCode::OK, json!({"data": message}))
        }
        ("GET", ["v3", "users", uid, "messages"]) => {
            let Some(reader) = on_behalf.filter(|u| USERS.contains(u)) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "ERR_UID_NOT_FOUND",
                    "onBehalfOf names no user.",
                );
            };
            let limit = r
                .query
                .get("limit")
                .and_then(|l| l.parse().ok())
                .unwrap_or(30);
            reply(
                StatusCode::OK,
                json!({"data": shared.latest(&conversation_of(reader, uid), limit)}),
            )
        }
        ("GET", ["v3", "groups", guid, "messages"]) if CHANNELS.contains(guid) => {
            let limit = r
                .query
                .get("limit")
                .and_then(|l| l.parse().ok())
                .unwrap_or(30);
            reply(
                StatusCode::OK,
                json!({"data": shared.latest(&format!("group_{guid}"), limit)}),
            )
        }
        _ => error(StatusCode::NOT_FOUND, "ERR_GUID_NOT_FOUND", "Not found."),
    }
}

fn conversation_of(a: &str, b: &str) -> String {
    let (x, y) = if a < b { (a, b) } else { (b, a) };
    format!("{x}_user_{y}")
}

/// OpenIM server REST API: an `operationID` header on every call, the
/// administrator token in `token`; HTTP 200 with `errCode` (0 is success).
fn openim(shared: &Shared, fault: Fault, r: &Request<'_>) -> Response {
    let error = |code: i64, message: &str| {
        reply(
            StatusCode::OK,
            json!({"errCode": code, "errMsg": message, "errDlt": format!(": [{code}]{message}")}),
        )
    };
    if (r.header)("operationID").is_none_or(str::is_empty) {
        return error(1001, "ArgsError: header must have operationID");
    }
    match fault {
        Fault::ServerError => return error(500, "ServerInternalError"),
        // OpenIM's gateway answers a rate limit with HTTP 429.
        Fault::Throttled => {
            return (StatusCode::TOO_MANY_REQUESTS, "Too Many Requests").into_response();
        }
        _ => {}
    }
    match (r.method.as_str(), r.segments) {
        ("POST", ["auth", "get_admin_token"]) => {
            shared.logins.fetch_add(1, Ordering::SeqCst);
            let secret = if fault == Fault::KeyRevoked {
                "rotated"
            } else {
                KEY
            };
            if text_at(r.json, "/secret") != Some(secret) {
                return error(1002, "NoPermissionError: secret invalid");
            }
            if text_at(r.json, "/userID") != Some("imAdmin") {
                return error(1004, "RecordNotFoundError");
            }
            let lifetime = shared.token_lifetime.load(Ordering::SeqCst);
            let token = format!("token-{}", shared.id());
            shared.tokens.lock().unwrap().insert(
                token.clone(),
                shared.now() + chrono::Duration::seconds(lifetime as i64),
            );
            reply(
                StatusCode::OK,
                json!({"errCode": 0, "errMsg": "", "errDlt": "", "data": {"token": token, "expireTimeSeconds": lifetime}}),
            )
        }
        ("POST", ["msg", "send_msg"]) => {
            let token = (r.header)("token").unwrap_or("").to_owned();
            let expires = shared.tokens.lock().unwrap().get(&token).copied();
            match expires {
                None => return error(1507, "TokenNotExistError"),
                Some(at) if at <= shared.now() => return error(1501, "TokenExpiredError"),
                Some(_) => {}
            }
            let (Some(sender), Some(text)) = (
                text_at(r.json, "/sendID"),
                text_at(r.json, "/content/content"),
            ) else {
                return error(1001, "ArgsError: sendID and content are required");
            };
            let session = r.json.and_then(|j| j["sessionType"].as_i64());
            let place = match (
                session,
                text_at(r.json, "/recvID"),
                text_at(r.json, "/groupID"),
            ) {
                (Some(1), Some(recv), _) if USERS.contains(&recv) => conversation_of(sender, recv),
                (Some(3), _, Some(group)) if CHANNELS.contains(&group) => format!("group_{group}"),
                (Some(1 | 3), _, _) => return error(1004, "RecordNotFoundError"),
                _ => return error(1001, "ArgsError: sessionType"),
            };
            shared.tokens_used.lock().unwrap().push(token);
            let id = shared.id();
            shared.keep(&place, json!({"content": text}));
            reply(
                StatusCode::OK,
                json!({"errCode": 0, "errMsg": "", "errDlt": "", "data": {"serverMsgID": format!("s{id}"), "clientMsgID": format!("c{id}"), "sendTime": shared.now().timestamp_millis()}}),
            )
        }
        _ => error(1001, "ArgsError: no such API"),
    }
}
