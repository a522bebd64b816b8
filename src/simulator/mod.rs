//! The built-in IM simulator: Tencent Cloud IM's REST surface (URL, query
//! parameters, UserSig verification with its own key, envelopes, error codes),
//! so the real adapter is what runs against it, plus a small control API that
//! injects failures, latency, hangs and connection resets, now or by minute.

mod control;
mod history;
mod rest;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::{post, put};
use chrono::{DateTime, Utc};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};

use crate::attempt::Kind;
use crate::clock::{Clock, SystemClock};
use crate::minute::Minute;
use crate::probe::tencent::TencentSettings;
use crate::secret::Secret;
use crate::sync::Locked;

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
        confirm_delivery: true,
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
    /// Sends: answer OK, but never show the message in the histories.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub undelivered: bool,
    /// Sends: show the message in the histories only this long after
    /// accepting it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_delay_ms: Option<u64>,
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

    /// Sends accepted but never shown in the histories.
    pub fn undelivered() -> Self {
        Self {
            undelivered: true,
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
    /// The history reads (`admin_getroammsg`, `group_msg_get_simple`).
    #[serde(default)]
    pub history: Behaviour,
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
    /// How the history reads are answered outside scheduled minutes.
    history_behaviour: Behaviour,
    history_stats: OperationStats,
    direct: std::collections::VecDeque<history::Stored>,
    direct_seq: u64,
    group_messages: HashMap<String, std::collections::VecDeque<history::Stored>>,
    group_seq: HashMap<String, u64>,
}

struct Shared {
    world: Mutex<World>,
    clock: Arc<dyn Clock>,
}

impl Shared {
    fn behaviour(&self, kind: Kind) -> Behaviour {
        let world = self.world.locked();
        let minute = Minute::containing(&self.clock.now());
        match world.schedule.get(&minute) {
            Some(phase) => phase.behaviour(kind).clone(),
            None => world.behaviours.get(&kind).cloned().unwrap_or_default(),
        }
    }

    /// How the history reads are answered now.
    fn history_behaviour(&self) -> Behaviour {
        let world = self.world.locked();
        let minute = Minute::containing(&self.clock.now());
        match world.schedule.get(&minute) {
            Some(phase) => phase.history.clone(),
            None => world.history_behaviour.clone(),
        }
    }

    fn record(&self, kind: Kind, update: impl FnOnce(&mut OperationStats)) {
        update(self.world.locked().stats.entry(kind).or_default());
    }

    fn receive(&self, kind: Kind) {
        let second = self.clock.now().timestamp();
        let mut world = self.world.locked();
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
            .route("/v4/{service}/{command}", post(rest::rest))
            .route(
                "/control/behaviour/{operation}",
                put(control::set_behaviour),
            )
            .route("/control/schedule", put(control::set_schedule))
            .route("/control/reset", post(control::reset_all))
            .route("/control/stats", axum::routing::get(control::stats))
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
            .locked()
            .behaviours
            .insert(kind, behaviour);
    }

    /// Adds phases keyed by their UTC minute.
    pub fn schedule(&self, phases: impl IntoIterator<Item = Phase>) {
        let mut world = self.shared.world.locked();
        for phase in phases {
            world
                .schedule
                .insert(Minute::containing(&phase.minute), phase);
        }
    }

    pub fn stats(&self, kind: Kind) -> OperationStats {
        self.shared
            .world
            .locked()
            .stats
            .get(&kind)
            .cloned()
            .unwrap_or_default()
    }

    /// Sets how the history reads are answered outside scheduled minutes.
    pub fn set_history_behaviour(&self, behaviour: Behaviour) {
        self.shared.world.locked().history_behaviour = behaviour;
    }

    /// What the history reads were answered.
    pub fn history_stats(&self) -> OperationStats {
        self.shared.world.locked().history_stats.clone()
    }

    /// Probe requests received in each wall-clock second (Unix time), to
    /// show when probing happened, not just how much.
    pub fn received_by_second(&self) -> BTreeMap<i64, u64> {
        self.shared.world.locked().received_by_second.clone()
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
    rest::operation(path.split('?').next()?.trim_start_matches("/v4/"))
}
