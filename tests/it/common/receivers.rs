//! Local receivers for the notification tests: one HTTP server that plays a
//! webhook endpoint, a Slack incoming webhook and PagerDuty's Events API v2
//! (checking what PagerDuty checks), and a real SMTP server (aiosmtpd from
//! PyPI, with STARTTLS and AUTH required) with a test CA.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};

pub use super::tls::TestCa;

/// The routing key the PagerDuty fake accepts.
pub const PAGERDUTY_KEY: &str = "R0UT1NGKEY0123456789abcdefabcdef";

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: BTreeMap<String, String>,
    pub body: Value,
    pub raw: Vec<u8>,
}

#[derive(Default)]
struct Shared {
    received: Mutex<BTreeMap<String, Vec<Received>>>,
    /// Answer with this status instead of success when not 0.
    failing: AtomicU16,
    /// Hold each answer this long (ms), to catch a sender mid-request.
    delay_ms: AtomicU64,
}

/// The HTTP receiver; routes `/hook/{token}`, `/slack/{token}`, `/pagerduty`.
pub struct HttpReceiver {
    pub base: String,
    shared: Arc<Shared>,
}

impl HttpReceiver {
    pub async fn start() -> HttpReceiver {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/hook/{token}", post(hook))
            .route("/slack/{token}", post(slack))
            .route("/pagerduty", post(pagerduty))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        HttpReceiver { base, shared }
    }

    /// Every request so far on one route (`hook`, `slack`, `pagerduty`).
    pub fn received(&self, route: &str) -> Vec<Received> {
        self.shared
            .received
            .lock()
            .unwrap()
            .get(route)
            .cloned()
            .unwrap_or_default()
    }

    /// Answers `status` from now on (0: success again).
    pub fn fail_with(&self, status: u16) {
        self.shared.failing.store(status, Ordering::SeqCst);
    }

    pub fn delay(&self, delay: Duration) {
        self.shared
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Waits until `done` holds for what was received, or panics after `limit`.
    pub async fn wait_for(
        &self,
        limit: Duration,
        what: &str,
        done: impl Fn(&HttpReceiver) -> bool,
    ) {
        super::wait::until_true(what, limit, || async { done(self) }).await;
    }
}

async fn record(
    shared: &Shared,
    route: &str,
    headers: &HeaderMap,
    raw: &[u8],
) -> Option<StatusCode> {
    let delay = shared.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let failing = shared.failing.load(Ordering::SeqCst);
    if failing != 0 {
        return Some(StatusCode::from_u16(failing).unwrap());
    }
    let received = Received {
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body: serde_json::from_slice(raw).unwrap_or(Value::Null),
        raw: raw.to_vec(),
    };
    shared
        .received
        .lock()
        .unwrap()
        .entry(route.to_owned())
        .or_default()
        .push(received);
    None
}

async fn hook(
    State(shared): State<Arc<Shared>>,
    UrlPath(_token): UrlPath<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    record(&shared, "hook", &headers, &body)
        .await
        .unwrap_or(StatusCode::NO_CONTENT)
}

async fn slack(
    State(shared): State<Arc<Shared>>,
    UrlPath(_token): UrlPath<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, &'static str) {
    // Slack answers `invalid_payload` to anything without text.
    let ok = serde_json::from_slice::<Value>(&body)
        .is_ok_and(|v| v["text"].as_str().is_some_and(|t| !t.is_empty()));
    if !ok {
        return (StatusCode::BAD_REQUEST, "invalid_payload");
    }
    match record(&shared, "slack", &headers, &body).await {
        Some(status) => (status, "down"),
        None => (StatusCode::OK, "ok"),
    }
}

/// What PagerDuty's Events API v2 checks before taking an event.
fn pagerduty_problems(event: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    if event["routing_key"] != PAGERDUTY_KEY {
        problems.push("Invalid routing key".to_owned());
    }
    let action = event["event_action"].as_str().unwrap_or("");
    if !["trigger", "acknowledge", "resolve"].contains(&action) {
        problems.push("'event_action' is invalid".to_owned());
    }
    if action != "trigger" && event["dedup_key"].as_str().is_none_or(str::is_empty) {
        problems.push("'dedup_key' is required for this event_action".to_owned());
    }
    if event["dedup_key"].as_str().is_some_and(|k| k.len() > 255) {
        problems.push("'dedup_key' is too long".to_owned());
    }
    if action == "trigger" {
        let payload = &event["payload"];
        if payload["summary"]
            .as_str()
            .is_none_or(|s| s.is_empty() || s.len() > 1024)
        {
            problems.push("'payload.summary' is missing or too long".to_owned());
        }
        if payload["source"].as_str().is_none_or(str::is_empty) {
            problems.push("'payload.source' is missing".to_owned());
        }
        if !["critical", "error", "warning", "info"]
            .contains(&payload["severity"].as_str().unwrap_or(""))
        {
            problems.push("'payload.severity' is invalid".to_owned());
        }
        if let Some(ts) = payload["timestamp"].as_str()
            && chrono::DateTime::parse_from_rfc3339(ts).is_err()
        {
            problems.push("'payload.timestamp' is not ISO 8601".to_owned());
        }
    }
    problems
}

async fn pagerduty(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, axum::Json<Value>) {
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"status": "invalid event", "message": "Event object is invalid"})),
        );
    };
    let problems = pagerduty_problems(&event);
    if !problems.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(
                json!({"status": "invalid event", "message": "Event object is invalid", "errors": problems}),
            ),
        );
    }
    if let Some(status) = record(&shared, "pagerduty", &headers, &body).await {
        return (status, axum::Json(json!({"status": "throttled"})));
    }
    (
        StatusCode::ACCEPTED,
        axum::Json(
            json!({"status": "success", "message": "Event processed", "dedup_key": event["dedup_key"]}),
        ),
    )
}

/// A real SMTP server (aiosmtpd) requiring STARTTLS, then AUTH, that writes
/// each message it takes to a directory.
pub struct SmtpServer {
    pub port: u16,
    child: Child,
    out: tempfile::TempDir,
}

pub const SMTP_USER: &str = "improbe";
pub const SMTP_PASSWORD: &str = "smtp-pa55word";

impl SmtpServer {
    /// Starts the server; a missing aiosmtpd fails the test ([`super::require`]).
    pub fn start(ca: &TestCa) -> SmtpServer {
        let installed = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        super::require(installed, "aiosmtpd (Python)");
        let out = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args([
                &port.to_string(),
                ca.server_cert().to_str().unwrap(),
                ca.server_key().to_str().unwrap(),
            ])
            .arg(out.path())
            .args([SMTP_USER, SMTP_PASSWORD])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "ready", "the SMTP server did not start");
        SmtpServer { port, child, out }
    }

    /// Every message taken so far, oldest first.
    pub fn messages(&self) -> Vec<Value> {
        let mut names: Vec<_> = std::fs::read_dir(self.out.path())
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .filter(|n| n.ends_with(".json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|n| {
                serde_json::from_slice(&std::fs::read(self.out.path().join(n)).unwrap()).unwrap()
            })
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
