//! The built-in IM simulator: Tencent Cloud IM's REST surface (URL, query
//! parameters, UserSig verification with its own key, envelopes, error codes),
//! so the real adapter is what runs against it, plus a small control API that
//! injects failures, latency, hangs and connection resets, now or by minute.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

use crate::attempt::Kind;
use crate::clock::{Clock, SystemClock};
use crate::config::Secret;
use crate::minute::Minute;
use crate::probe::tencent::TencentSettings;
use crate::probe::tencent::{command, usersig};

/// The simulator's app: these are the credentials a simulator target uses.
pub const SIMULATOR_SDK_APP_ID: u64 = 1_400_000_000;
pub const SIMULATOR_ADMIN: &str = "administrator";
/// Not a secret: the simulator's published key, so UserSigs are really verified.
pub const SIMULATOR_SECRET_KEY: &str = "improbe-simulator-key-not-a-secret";
/// Accounts and group that exist from the start, so probes work at once.
pub const SIMULATOR_SENDER: &str = "improbe_a";
pub const SIMULATOR_RECIPIENT: &str = "improbe_b";
pub const SIMULATOR_GROUP: &str = "improbe-group";
/// How long a `hang` behaviour holds a request before giving up on it.
const HANG_FOR: Duration = Duration::from_secs(600);
/// How long the simulator waits for a request line before serving normally.
const PEEK_TIMEOUT: Duration = Duration::from_secs(2);

/// The Tencent settings that point the real adapter at a simulator.
pub fn target_settings(endpoint: &str) -> TencentSettings {
    TencentSettings {
        endpoint: endpoint.to_owned(),
        sdk_app_id: SIMULATOR_SDK_APP_ID,
        admin: SIMULATOR_ADMIN.to_owned(),
        secret_key: Secret::Plain(SIMULATOR_SECRET_KEY.to_owned()),
        sender: SIMULATOR_SENDER.to_owned(),
        recipient: SIMULATOR_RECIPIENT.to_owned(),
        group: SIMULATOR_GROUP.to_owned(),
    }
}

/// How the simulator answers one operation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Behaviour {
    /// Answer HTTP 200 with this `ErrorCode` (and `error_info`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_info: Option<String>,
    /// Answer with this HTTP status and no envelope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// Wait this long before answering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Never answer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hang: bool,
    /// Reset the connection before answering.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reset: bool,
    /// Group sends: accept but report this `MsgDropReason` (`""` is how
    /// Tencent may send the field on an ordinary success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_reason: Option<String>,
    /// Logins: answer the envelope OK but fail every `account_check` item
    /// with this `ResultCode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_error_code: Option<i64>,
}

impl Behaviour {
    pub fn healthy() -> Self {
        Self::default()
    }

    pub fn error(code: i64) -> Self {
        Self {
            error_code: Some(code),
            error_info: Some(format!("simulated error {code}")),
            ..Self::default()
        }
    }

    pub fn http(status: u16) -> Self {
        Self {
            http_status: Some(status),
            ..Self::default()
        }
    }
}

/// Behaviours for one wall-clock UTC minute; operations not named are healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    pub minute: DateTime<Utc>,
    #[serde(default)]
    pub login: Behaviour,
    #[serde(default)]
    pub send_direct: Behaviour,
    #[serde(default)]
    pub send_group: Behaviour,
}

impl Phase {
    fn behaviour(&self, kind: Kind) -> &Behaviour {
        match kind {
            Kind::Login => &self.login,
            Kind::SendDirect => &self.send_direct,
            Kind::SendGroup => &self.send_group,
        }
    }
}

/// What the simulator answered, per operation (`GET /control/stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationStats {
    /// Requests received (answered or not yet).
    pub received: u64,
    /// Requests answered with success.
    pub ok: u64,
    /// Requests answered with an error (envelope or HTTP status).
    pub error: u64,
    /// Connections reset on purpose.
    pub reset: u64,
}

#[derive(Default)]
struct World {
    behaviours: HashMap<Kind, Behaviour>,
    schedule: HashMap<Minute, Phase>,
    accounts: HashSet<String>,
    groups: HashMap<String, HashSet<String>>,
    stats: HashMap<Kind, OperationStats>,
    /// Probe requests received per wall-clock second (Unix time).
    received_by_second: BTreeMap<i64, u64>,
    next_group: u64,
}

struct Shared {
    world: Mutex<World>,
    clock: Arc<dyn Clock>,
}

impl Shared {
    fn behaviour(&self, kind: Kind) -> Behaviour {
        let world = self.world.lock().expect("simulator state poisoned");
        let minute = Minute::containing(&self.clock.now());
        match world.schedule.get(&minute) {
            Some(phase) => phase.behaviour(kind).clone(),
            None => world.behaviours.get(&kind).cloned().unwrap_or_default(),
        }
    }

    fn record(&self, kind: Kind, update: impl FnOnce(&mut OperationStats)) {
        update(
            self.world
                .lock()
                .expect("simulator state poisoned")
                .stats
                .entry(kind)
                .or_default(),
        );
    }

    fn receive(&self, kind: Kind) {
        let second = self.clock.now().timestamp();
        let mut world = self.world.lock().expect("simulator state poisoned");
        world.stats.entry(kind).or_default().received += 1;
        *world.received_by_second.entry(second).or_default() += 1;
    }

    fn count(&self, kind: Kind, ok: bool) {
        self.record(kind, |s| if ok { s.ok += 1 } else { s.error += 1 });
    }
}

/// A running simulator; stops when dropped.
pub struct Simulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Simulator {
    /// Listens on `addr` (port 0 picks a free one).
    pub async fn start(addr: SocketAddr) -> anyhow::Result<Simulator> {
        Self::start_with_clock(addr, Arc::new(SystemClock)).await
    }

    pub async fn start_with_clock(
        addr: SocketAddr,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Simulator> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("simulator cannot listen on {addr}: {e}"))?;
        let addr = listener.local_addr()?;
        let mut world = World::default();
        world.accounts.extend([
            SIMULATOR_ADMIN.to_owned(),
            SIMULATOR_SENDER.to_owned(),
            SIMULATOR_RECIPIENT.to_owned(),
        ]);
        world.groups.insert(
            SIMULATOR_GROUP.to_owned(),
            [SIMULATOR_SENDER.to_owned(), SIMULATOR_RECIPIENT.to_owned()].into(),
        );
        let shared = Arc::new(Shared {
            world: Mutex::new(world),
            clock,
        });
        let router = Router::new()
            .route("/v4/{service}/{command}", post(rest))
            .route("/control/behaviour/{operation}", put(set_behaviour))
            .route("/control/schedule", put(set_schedule))
            .route("/control/reset", post(reset_all))
            .route("/control/stats", axum::routing::get(stats))
            .with_state(shared.clone());
        let task = tokio::spawn(accept_loop(listener, router, shared.clone()));
        Ok(Simulator { addr, shared, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sets how an operation is answered outside scheduled minutes.
    pub fn set_behaviour(&self, kind: Kind, behaviour: Behaviour) {
        self.shared
            .world
            .lock()
            .expect("poisoned")
            .behaviours
            .insert(kind, behaviour);
    }

    /// Adds phases keyed by their UTC minute.
    pub fn schedule(&self, phases: impl IntoIterator<Item = Phase>) {
        let mut world = self.shared.world.lock().expect("poisoned");
        for phase in phases {
            world
                .schedule
                .insert(Minute::containing(&phase.minute), phase);
        }
    }

    pub fn stats(&self, kind: Kind) -> OperationStats {
        self.shared
            .world
            .lock()
            .expect("poisoned")
            .stats
            .get(&kind)
            .cloned()
            .unwrap_or_default()
    }

    /// Probe requests received in each wall-clock second (Unix time), to
    /// show when probing happened, not just how much.
    pub fn received_by_second(&self) -> BTreeMap<i64, u64> {
        self.shared
            .world
            .lock()
            .expect("poisoned")
            .received_by_second
            .clone()
    }

    /// The `[targets.tencent]` section that points a target at this simulator.
    pub fn config_section(&self) -> String {
        format!(
            "endpoint = \"{}\"\nsdk_app_id = {SIMULATOR_SDK_APP_ID}\nadmin = \"{SIMULATOR_ADMIN}\"\nsecret_key = \"{SIMULATOR_SECRET_KEY}\"\nsender = \"{SIMULATOR_SENDER}\"\nrecipient = \"{SIMULATOR_RECIPIENT}\"\ngroup = \"{SIMULATOR_GROUP}\"\n",
            self.endpoint()
        )
    }
}

/// Serves connections with keep-alive, as Tencent does. A `reset` behaviour
/// resets a new connection with a TCP RST before hyper reads its first
/// request; later requests on a kept-alive connection are aborted mid-response.
async fn accept_loop(listener: TcpListener, router: Router, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let router = router.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            if let Some(kind) = peek_operation(&stream).await
                && shared.behaviour(kind).reset
            {
                shared.record(kind, |s| s.reset += 1);
                // Zero linger turns the close into a TCP RST.
                let _ = stream.set_zero_linger();
                return;
            }
            let service = TowerToHyperService::new(router);
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The operation a request is for, read from its request line without consuming it.
async fn peek_operation(stream: &TcpStream) -> Option<Kind> {
    let mut buf = [0u8; 512];
    let read = tokio::time::timeout(PEEK_TIMEOUT, async {
        loop {
            let n = stream.peek(&mut buf).await.ok()?;
            if n == 0 || buf[..n].contains(&b'\n') || n == buf.len() {
                return Some(n);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .ok()??;
    let line = std::str::from_utf8(&buf[..read]).ok()?.lines().next()?;
    let path = line.split(' ').nth(1)?;
    operation(path.split('?').next()?.trim_start_matches("/v4/"))
}

fn operation(command_path: &str) -> Option<Kind> {
    match command_path {
        command::ACCOUNT_CHECK => Some(Kind::Login),
        command::SEND_MSG => Some(Kind::SendDirect),
        command::SEND_GROUP_MSG => Some(Kind::SendGroup),
        _ => None,
    }
}

fn envelope_error(code: i64, info: &str) -> Response {
    Json(json!({ "ActionStatus": "FAIL", "ErrorCode": code, "ErrorInfo": info })).into_response()
}

fn envelope_ok(mut extra: Value) -> Response {
    let fields = extra.as_object_mut().expect("an object");
    fields.insert("ActionStatus".into(), json!("OK"));
    fields.insert("ErrorCode".into(), json!(0));
    fields.insert("ErrorInfo".into(), json!(""));
    Json(extra).into_response()
}

#[derive(Deserialize)]
struct RestQuery {
    sdkappid: Option<String>,
    identifier: Option<String>,
    usersig: Option<String>,
    random: Option<String>,
    contenttype: Option<String>,
}

/// Checks what Tencent checks before looking at the body.
fn verify_request(q: &RestQuery, now: i64) -> Result<(), (i64, &'static str)> {
    let (Some(app), Some(identifier), Some(sig), Some(random)) =
        (&q.sdkappid, &q.identifier, &q.usersig, &q.random)
    else {
        return Err((
            60004,
            "sdkappid, identifier, usersig and random are required",
        ));
    };
    if q.contenttype.as_deref() != Some("json") {
        return Err((60004, "contenttype must be json"));
    }
    if random.parse::<u32>().is_err() {
        return Err((60004, "random must be a 32-bit unsigned integer"));
    }
    if app.parse::<u64>().ok() != Some(SIMULATOR_SDK_APP_ID) {
        return Err((70020, "SDKAppID not found"));
    }
    let document = usersig::decode(sig).ok_or((70003, "UserSig cannot be decoded"))?;
    if document.sdk_app_id != SIMULATOR_SDK_APP_ID {
        return Err((70014, "SDKAppID in UserSig does not match"));
    }
    if &document.identifier != identifier {
        return Err((70013, "identifier in UserSig does not match the request"));
    }
    let expected = usersig::signature(
        SIMULATOR_SECRET_KEY,
        &document.identifier,
        document.sdk_app_id,
        document.time,
        document.expire,
    );
    if document.sig != expected {
        return Err((70009, "UserSig verification failed"));
    }
    if document.time + document.expire < now {
        return Err((70001, "UserSig expired"));
    }
    if identifier != SIMULATOR_ADMIN {
        return Err((60010, "the request must come from the app administrator"));
    }
    Ok(())
}

async fn rest(
    State(shared): State<Arc<Shared>>,
    Path((service, cmd)): Path<(String, String)>,
    Query(query): Query<RestQuery>,
    body: axum::body::Bytes,
) -> Response {
    let command_path = format!("{service}/{cmd}");
    let kind = operation(&command_path);
    if let Some(kind) = kind {
        shared.receive(kind);
        let behaviour = shared.behaviour(kind);
        if behaviour.reset {
            // A request on a kept-alive connection, past the accept loop's
            // reset: abort the response mid-way, which closes the connection.
            shared.record(kind, |s| s.reset += 1);
            let abort = futures_util::stream::once(async {
                Err::<axum::body::Bytes, _>(std::io::Error::other("simulated reset"))
            });
            return Response::new(axum::body::Body::from_stream(abort));
        }
        if let Some(ms) = behaviour.latency_ms {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if behaviour.hang {
            // Long past any client's deadline, but not forever: a hung request
            // must not keep its task alive after the client gave up.
            tokio::time::sleep(HANG_FOR).await;
        }
        if let Some(status) = behaviour.http_status {
            shared.count(kind, false);
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (status, "simulated HTTP failure").into_response();
        }
        if let Some(code) = behaviour.error_code {
            shared.count(kind, false);
            return envelope_error(
                code,
                behaviour.error_info.as_deref().unwrap_or("simulated error"),
            );
        }
        let response = answer(&shared, &command_path, &query, &body, &behaviour);
        let ok = response.as_ref().is_ok();
        shared.count(kind, ok);
        return response.unwrap_or_else(|(code, info)| envelope_error(code, &info));
    }
    answer(&shared, &command_path, &query, &body, &Behaviour::healthy())
        .unwrap_or_else(|(code, info)| envelope_error(code, &info))
}

fn answer(
    shared: &Shared,
    command_path: &str,
    query: &RestQuery,
    body: &[u8],
    behaviour: &Behaviour,
) -> Result<Response, (i64, String)> {
    verify_request(query, shared.clock.now().timestamp()).map_err(|(c, i)| (c, i.to_owned()))?;
    let body: Value =
        serde_json::from_slice(body).map_err(|e| (90001, format!("JSON parse error: {e}")))?;
    let mut world = shared.world.lock().expect("poisoned");
    let text = |v: &Value, field: &str| v[field].as_str().map(str::to_owned);
    match command_path {
        command::ACCOUNT_CHECK => {
            let items = body["CheckItem"]
                .as_array()
                .ok_or((90001, "CheckItem missing".to_owned()))?;
            let results: Vec<Value> = items
                .iter()
                .map(|item| {
                    let user = item["UserID"].as_str().unwrap_or_default();
                    if let Some(code) = behaviour.item_error_code {
                        return json!({ "UserID": user, "ResultCode": code, "ResultInfo": format!("simulated item error {code}") });
                    }
                    let status = if world.accounts.contains(user) { "Imported" } else { "NotImported" };
                    json!({ "UserID": user, "ResultCode": 0, "ResultInfo": "", "AccountStatus": status })
                })
                .collect();
            Ok(envelope_ok(json!({ "ResultItem": results })))
        }
        command::ACCOUNT_IMPORT => {
            let user = text(&body, "UserID").ok_or((70402, "UserID missing".to_owned()))?;
            world.accounts.insert(user);
            Ok(envelope_ok(json!({})))
        }
        command::SEND_MSG => {
            let from =
                text(&body, "From_Account").ok_or((90008, "From_Account missing".to_owned()))?;
            let to = text(&body, "To_Account").ok_or((90003, "To_Account missing".to_owned()))?;
            if !world.accounts.contains(&from) {
                return Err((90008, format!("From_Account {from} not imported")));
            }
            if !world.accounts.contains(&to) {
                return Err((90012, format!("To_Account {to} not imported")));
            }
            body["MsgRandom"]
                .as_u64()
                .ok_or((90005, "MsgRandom missing".to_owned()))?;
            body["MsgBody"]
                .as_array()
                .filter(|b| !b.is_empty())
                .ok_or((90002, "MsgBody missing".to_owned()))?;
            let now = shared.clock.now().timestamp();
            Ok(envelope_ok(
                json!({ "MsgTime": now, "MsgKey": format!("{now}_{}", fastrand::u32(..)) }),
            ))
        }
        command::SEND_GROUP_MSG => {
            let group = text(&body, "GroupId").ok_or((10015, "GroupId missing".to_owned()))?;
            let from = text(&body, "From_Account").unwrap_or_default();
            let members = world
                .groups
                .get(&group)
                .ok_or((10010, format!("group {group} does not exist")))?;
            if !members.contains(&from) {
                return Err((10007, format!("{from} is not a member of {group}")));
            }
            body["Random"]
                .as_u64()
                .ok_or((90005, "Random missing".to_owned()))?;
            let mut reply =
                json!({ "MsgTime": shared.clock.now().timestamp(), "MsgSeq": fastrand::u32(1..) });
            if let Some(reason) = &behaviour.drop_reason {
                reply["MsgDropReason"] = json!(reason);
            }
            Ok(envelope_ok(reply))
        }
        command::CREATE_GROUP => {
            let owner =
                text(&body, "Owner_Account").ok_or((10004, "Owner_Account missing".to_owned()))?;
            let id = match text(&body, "GroupId") {
                Some(id) if id.starts_with("@TGS#") => {
                    return Err((10004, "custom GroupId may not start with @TGS#".into()));
                }
                Some(id) if world.groups.contains_key(&id) => {
                    return Err((10021, format!("GroupId {id} already used")));
                }
                Some(id) => id,
                None => {
                    world.next_group += 1;
                    format!("@TGS#{:08}", world.next_group)
                }
            };
            world.groups.insert(id.clone(), [owner].into());
            Ok(envelope_ok(json!({ "GroupId": id })))
        }
        command::GET_GROUP_INFO => {
            let ids = body["GroupIdList"]
                .as_array()
                .ok_or((10004, "GroupIdList missing".to_owned()))?;
            let infos: Vec<Value> = ids
                .iter()
                .filter_map(Value::as_str)
                .map(|id| match world.groups.get(id) {
                    Some(members) => json!({ "GroupId": id, "ErrorCode": 0, "MemberNum": members.len() }),
                    None => json!({ "GroupId": id, "ErrorCode": 10010, "ErrorInfo": "group does not exist" }),
                })
                .collect();
            Ok(envelope_ok(json!({ "GroupInfo": infos })))
        }
        command::ADD_GROUP_MEMBER => {
            let group = text(&body, "GroupId").ok_or((10015, "GroupId missing".to_owned()))?;
            let accounts: Vec<String> = body["MemberList"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m["Member_Account"].as_str().map(str::to_owned))
                .collect();
            let members = world
                .groups
                .get_mut(&group)
                .ok_or((10010, format!("group {group} does not exist")))?;
            // Tencent answers 10013 when every account asked for is already in.
            if !accounts.is_empty() && accounts.iter().all(|a| members.contains(a)) {
                return Err((10013, "the accounts are already group members".to_owned()));
            }
            let results: Vec<Value> = accounts
                .into_iter()
                .map(|a| {
                    let result = if members.insert(a.clone()) { 1 } else { 2 };
                    json!({ "Member_Account": a, "Result": result })
                })
                .collect();
            Ok(envelope_ok(json!({ "MemberList": results })))
        }
        other => Err((60004, format!("unknown command {other}"))),
    }
}

async fn set_behaviour(
    State(shared): State<Arc<Shared>>,
    Path(operation): Path<String>,
    Json(behaviour): Json<Behaviour>,
) -> Response {
    let kinds: Vec<Kind> = match operation.as_str() {
        "all" => Kind::ALL.to_vec(),
        other => match other.parse() {
            Ok(kind) => vec![kind],
            Err(e) => return (StatusCode::NOT_FOUND, format!("{e}, or all")).into_response(),
        },
    };
    let mut world = shared.world.lock().expect("poisoned");
    for kind in kinds {
        world.behaviours.insert(kind, behaviour.clone());
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn set_schedule(
    State(shared): State<Arc<Shared>>,
    Json(phases): Json<Vec<Phase>>,
) -> Response {
    let mut world = shared.world.lock().expect("poisoned");
    for phase in phases {
        world
            .schedule
            .insert(Minute::containing(&phase.minute), phase);
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn reset_all(State(shared): State<Arc<Shared>>) -> Response {
    let mut world = shared.world.lock().expect("poisoned");
    world.behaviours.clear();
    world.schedule.clear();
    StatusCode::NO_CONTENT.into_response()
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    let world = shared.world.lock().expect("poisoned");
    let by_name: HashMap<&str, &OperationStats> =
        world.stats.iter().map(|(k, v)| (k.as_str(), v)).collect();
    Json(json!(by_name)).into_response()
}
