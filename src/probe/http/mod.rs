//! The `http` provider: any IM cloud with a REST API, its three operations,
//! authentication and classification described in `[targets.http]`
//! (docs/providers.md "Adding a provider without code"; examples in
//! `config/providers/`).

mod auth;
pub mod classify;
pub mod settings;
pub mod template;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::delivery::{
    AwaitedDelivery, DELIVERY_MARGIN, DeliveryMode, Sighting, Unwatched, Waiters, finish_accepted,
};
use super::{Adapter, Fault, HttpClients, Probe, ProbeContext, ProbeOutcome, Provider, describe};
use crate::attempt::{Kind, Outcome};
use crate::clock::Clock;
use crate::secret::Secret;
use crate::sync::Locked;
use classify::{Answer, Rule, Transport};
pub use settings::HttpSettings;
use settings::{Auth, Operation, ReadBack, Request};
use template::{MissingCapture, Values};

/// Between two read-backs while a send waits to be seen.
const POLL_PERIOD: Duration = Duration::from_millis(500);
/// How long one read-back may take.
const READ_LIMIT: Duration = Duration::from_secs(2);
/// The most of an answer's text an error quotes.
const EXCERPT_CHARS: usize = 200;

#[async_trait]
impl Adapter for HttpSettings {
    fn kind(&self) -> Provider {
        Provider::Http
    }

    fn answers_within(&self) -> Option<Duration> {
        None
    }

    fn check(&self) -> Vec<(&'static str, String)> {
        self.problems()
    }

    fn secrets(&self) -> Vec<(&'static str, &Secret)> {
        self.secrets.values().map(|s| ("secrets", s)).collect()
    }

    fn probe(&self, context: &ProbeContext) -> anyhow::Result<Arc<dyn Probe>> {
        Ok(Arc::new(HttpProbe::new(self, context)?))
    }

    /// Both sends are read back.
    fn confirms_delivery(&self) -> bool {
        self.send_direct.read_back.is_some() && self.send_group.read_back.is_some()
    }

    /// The accounts and conversations are made by hand (docs/providers.md).
    async fn setup(&self) -> Option<anyhow::Result<Vec<String>>> {
        None
    }

    /// A code no rule of the table names at the `error_code` pointer.
    fn is_unclassified_code(&self, error_code: &str) -> bool {
        let Some(pointer) = &self.error_code else {
            return false;
        };
        !self
            .classify
            .iter()
            .any(|rule| rule.names_code(pointer, error_code))
    }
}

/// What the login's answer gave, and until when.
#[derive(Default)]
struct Captured {
    values: BTreeMap<String, String>,
    expires: Option<DateTime<Utc>>,
}

pub struct HttpProbe {
    target: String,
    settings: HttpSettings,
    secrets: BTreeMap<String, String>,
    clients: HttpClients,
    clock: Arc<dyn Clock>,
    timeout: Duration,
    delivery: DeliveryMode,
    defaults: Vec<Rule>,
    captured: Mutex<Captured>,
    /// Held while a send logs in for the captures.
    refreshing: tokio::sync::Mutex<()>,
    /// The signed token and when to sign a new one.
    token: Mutex<Option<(String, DateTime<Utc>)>>,
}

/// One attempt's placeholder values besides the captures.
struct AttemptValues {
    probe_id: String,
    started: DateTime<Utc>,
    random_u32: u32,
    uuid: String,
}

/// Sends wait for nobody but their own read-back.
struct OwnReadBack;

impl Waiters for OwnReadBack {
    fn forget(&self, _probe_id: &str) {}
}

/// Why a request could not be made.
enum Unbuilt {
    Missing(MissingCapture),
    /// The base URL and path do not make a URL once filled in.
    BadUrl,
}

impl From<MissingCapture> for Unbuilt {
    fn from(missing: MissingCapture) -> Self {
        Unbuilt::Missing(missing)
    }
}

/// What one request got.
struct Reply {
    status: Option<u16>,
    json: Option<Value>,
    outcome: ProbeOutcome,
}

impl Reply {
    /// A request that was never sent: inconclusive for `reason`.
    fn unsent(reason: crate::attempt::InconclusiveReason, text: String) -> Reply {
        Reply {
            status: None,
            json: None,
            outcome: ProbeOutcome::inconclusive(reason, None, None, text),
        }
    }
}

impl HttpProbe {
    pub fn new(settings: &HttpSettings, context: &ProbeContext) -> anyhow::Result<Self> {
        let secrets = settings
            .secrets
            .iter()
            .map(|(name, secret)| Ok((name.clone(), secret.reveal()?)))
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            target: context.target.clone(),
            settings: settings.clone(),
            secrets,
            clients: HttpClients::shared()?,
            clock: context.clock.clone(),
            timeout: context.timeout,
            delivery: context.delivery,
            defaults: classify::defaults(),
            captured: Mutex::new(Captured::default()),
            refreshing: tokio::sync::Mutex::new(()),
            token: Mutex::new(None),
        })
    }

    fn values<'a>(
        &'a self,
        attempt: &'a AttemptValues,
        captures: &'a BTreeMap<String, String>,
    ) -> Values<'a> {
        Values {
            probe_id: &attempt.probe_id,
            started: attempt.started,
            random_u32: attempt.random_u32,
            uuid: &attempt.uuid,
            variables: &self.settings.variables,
            secrets: &self.secrets,
            captures,
        }
    }

    /// Text with every secret's value, and every captured session value,
    /// taken out, for errors and logs.
    fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        let captured = self.captured.locked().values.clone();
        for value in self.secrets.values().chain(captured.values()) {
            if value.len() >= 4 {
                text = text.replace(value.as_str(), "<redacted>");
            }
        }
        text
    }

    /// The captures, fresh: the ones the login gave, or, when they are
    /// missing or expired, the ones of a login made now. `Err` is the
    /// attempt's outcome: inconclusive, never the provider's failure.
    async fn captures(&self, needed: bool) -> Result<BTreeMap<String, String>, ProbeOutcome> {
        if !needed {
            return Ok(BTreeMap::new());
        }
        if let Some(values) = self.fresh_captures() {
            return Ok(values);
        }
        // One login for the sends that find the session gone at once (the
        // two sends start together): the second waits and takes its result.
        let _refreshing = self.refreshing.lock().await;
        if let Some(values) = self.fresh_captures() {
            return Ok(values);
        }
        let login = self.login().await;
        if login.outcome != Outcome::Ok {
            // The login's own reason when it has one (a rate limit stays a
            // rate limit); a login the provider failed leaves no session,
            // which the send cannot be blamed for either.
            let reason = login
                .reason
                .unwrap_or(crate::attempt::InconclusiveReason::Credentials);
            return Err(ProbeOutcome::inconclusive(
                reason,
                login.http_status,
                None,
                format!(
                    "no session: the login that gives it did not succeed ({})",
                    login.error.unwrap_or_default()
                ),
            ));
        }
        Ok(self.captured.locked().values.clone())
    }

    fn fresh_captures(&self) -> Option<BTreeMap<String, String>> {
        let captured = self.captured.locked();
        let fresh = captured.expires.is_none_or(|e| self.clock.now() < e);
        (fresh && !captured.values.is_empty()).then(|| captured.values.clone())
    }

    async fn login(&self) -> ProbeOutcome {
        let op = &self.settings.login;
        let attempt = self.attempt_values();
        let empty = BTreeMap::new();
        let reply = self
            .call(&op.request, &self.values(&attempt, &empty), true)
            .await;
        if reply.outcome.outcome != Outcome::Ok || op.capture.is_empty() {
            return reply.outcome;
        }
        let json = reply.json.unwrap_or(Value::Null);
        let mut values = BTreeMap::new();
        for (name, pointer) in &op.capture {
            match json.pointer(pointer).filter(|v| !v.is_null()) {
                Some(v) => {
                    values.insert(name.clone(), classify::code_text(v));
                }
                None => {
                    return ProbeOutcome::inconclusive(
                        crate::attempt::InconclusiveReason::RequestRejected,
                        reply.status.map(i32::from),
                        None,
                        format!("the login's answer has no {pointer} for capture {name:?}"),
                    );
                }
            }
        }
        // The earliest of what the answer states and what the config says.
        let now = self.clock.now();
        let stated_at = op.capture_expires_at.as_ref().and_then(|p| json.pointer(p));
        let stated_in = op.capture_expires_in.as_ref().and_then(|p| json.pointer(p));
        let expires = [
            stated_at.and_then(expiry_instant),
            stated_in
                .and_then(whole_number)
                .map(|seconds| now + chrono::Duration::seconds(seconds)),
            op.capture_lifetime
                .and_then(|l| chrono::Duration::from_std(l).ok())
                .map(|l| now + l),
        ]
        .into_iter()
        .flatten()
        .min();
        *self.captured.locked() = Captured { values, expires };
        reply.outcome
    }

    fn attempt_values(&self) -> AttemptValues {
        AttemptValues {
            probe_id: format!("{:016x}", fastrand::u64(..)),
            started: self.clock.now(),
            random_u32: fastrand::u32(..),
            uuid: template::uuid_v4(),
        }
    }

    /// The auth header, signing a new token when the last one is near expiry.
    fn auth_header(&self, values: &Values<'_>) -> Result<Option<(String, String)>, MissingCapture> {
        let Some(auth) = &self.settings.auth else {
            return Ok(None);
        };
        Ok(Some(match auth {
            Auth::Header { header, value } => (header.clone(), value.0.render(values)?),
            Auth::Bearer { token } => (
                "Authorization".into(),
                format!("Bearer {}", token.0.render(values)?),
            ),
            Auth::Basic { username, password } => {
                let pair = format!(
                    "{}:{}",
                    username.0.render(values)?,
                    password.0.render(values)?
                );
                let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
                ("Authorization".into(), format!("Basic {encoded}"))
            }
            Auth::JwtHs256 {
                key,
                claims,
                lifetime,
                header,
                prefix,
            } => {
                let now = self.clock.now();
                let mut cached = self.token.locked();
                let token = match cached.as_ref() {
                    Some((token, renew_at)) if now < *renew_at => token.clone(),
                    _ => {
                        let claims = claims
                            .iter()
                            .map(|(k, v)| {
                                (k.clone(), serde_json::to_value(v).unwrap_or(Value::Null))
                            })
                            .collect();
                        let key = key.0.render(values)?;
                        let token =
                            auth::sign_hs256(key.as_bytes(), &claims, now, lifetime.map(|l| l.0));
                        // Re-signed when nine tenths of its life are gone,
                        // so a request never carries an expired token.
                        let renew_at = match lifetime {
                            Some(l) => {
                                now + chrono::Duration::from_std(l.0.mul_f64(0.9))
                                    .unwrap_or_default()
                            }
                            None => DateTime::<Utc>::MAX_UTC,
                        };
                        *cached = Some((token.clone(), renew_at));
                        token
                    }
                };
                (header.clone(), format!("{prefix}{token}"))
            }
        }))
    }

    fn build(
        &self,
        request: &Request,
        values: &Values<'_>,
        fresh_connection: bool,
    ) -> Result<reqwest::RequestBuilder, Unbuilt> {
        let base = self.settings.base_url.0.render(values)?;
        let path = request.path.render_with(values, template::path_segment)?;
        let mut url = reqwest::Url::parse(&format!("{}{path}", base.trim_end_matches('/')))
            .map_err(|_| Unbuilt::BadUrl)?;
        {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in self
                .settings
                .query
                .iter()
                .map(|(k, v)| (k, &v.0))
                .chain(request.query.iter().map(|(k, v)| (k, v)))
            {
                pairs.append_pair(name, &value.render(values)?);
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        let client = if fresh_connection {
            &self.clients.unpooled
        } else {
            &self.clients.pooled
        };
        let mut builder = client
            .request(request.method.clone(), url)
            .timeout(self.timeout);
        for (name, value) in self
            .settings
            .headers
            .iter()
            .map(|(k, v)| (k, &v.0))
            .chain(request.headers.iter().map(|(k, v)| (k, v)))
        {
            builder = builder.header(name.as_str(), value.render(values)?);
        }
        if let Some((name, value)) = self.auth_header(values)? {
            builder = builder.header(name, value);
        }
        if let Some(body) = &request.body {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.render(values)?.to_string());
        }
        Ok(builder)
    }

    /// Makes one request and classifies what came back.
    async fn call(&self, request: &Request, values: &Values<'_>, fresh_connection: bool) -> Reply {
        let builder = match self.build(request, values, fresh_connection) {
            Ok(b) => b,
            Err(Unbuilt::BadUrl) => {
                return Reply::unsent(
                    crate::attempt::InconclusiveReason::RequestRejected,
                    "the request's URL is not valid once its placeholders are filled in".into(),
                );
            }
            Err(Unbuilt::Missing(MissingCapture(name))) => {
                return Reply::unsent(
                    crate::attempt::InconclusiveReason::Credentials,
                    format!("no session: capture {name:?} is missing or expired"),
                );
            }
        };
        let (status, body, error) = match builder.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.bytes().await {
                    Ok(body) => (Some(status), body, None),
                    Err(e) => (None, Default::default(), Some(e)),
                }
            }
            Err(e) => (None, Default::default(), Some(e)),
        };
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        let transport = error.map(|e| {
            let kind = if e.is_timeout() {
                Transport::Timeout
            } else if e.is_connect() {
                Transport::Connect
            } else {
                Transport::Reset
            };
            (kind, describe(&e.without_url()))
        });
        let answer = match (&transport, status) {
            (Some((kind, _)), _) => Answer::Transport(*kind),
            (None, Some(status)) => Answer::Http {
                status,
                body: &body,
                json: json.as_ref(),
            },
            (None, None) => unreachable!("a reply has a status or an error"),
        };
        let rule = classify::classify(&self.settings.classify, &self.defaults, &answer);
        let http_status = status.map(i32::from);
        let outcome = if rule.outcome == Outcome::Ok {
            ProbeOutcome::ok(http_status)
        } else {
            let at = |pointer: &Option<String>| {
                pointer
                    .as_ref()
                    .and_then(|p| json.as_ref()?.pointer(p))
                    .filter(|v| !v.is_null())
                    .map(classify::code_text)
            };
            let error_code = at(&self.settings.error_code);
            let text = match (&transport, at(&self.settings.error_message)) {
                (Some((_, text)), _) => text.clone(),
                (None, Some(message)) => format!("HTTP {}: {message}", status.unwrap_or_default()),
                (None, None) => {
                    let excerpt: String = String::from_utf8_lossy(&body)
                        .chars()
                        .take(EXCERPT_CHARS)
                        .collect();
                    format!("HTTP {}: {}", status.unwrap_or_default(), excerpt.trim())
                }
            };
            let text = self.redact(&text);
            match rule.reason {
                Some(reason) => ProbeOutcome::inconclusive(reason, http_status, error_code, text),
                None => ProbeOutcome::fail(http_status, error_code, text),
            }
        };
        Reply {
            status,
            json,
            outcome,
        }
    }

    async fn send(&self, op: &Operation) -> ProbeOutcome {
        let captures = match self.captures(op.uses_capture).await {
            Ok(c) => c,
            Err(outcome) => return outcome,
        };
        let attempt = self.attempt_values();
        let values = self.values(&attempt, &captures);
        let started = Instant::now();
        let mut outcome = self.call(&op.request, &values, false).await.outcome;
        if op.uses_capture
            && outcome.reason == Some(crate::attempt::InconclusiveReason::Credentials)
        {
            // The session was refused (revoked, or expired early): the
            // next attempt logs in again instead of repeating it.
            *self.captured.locked() = Captured::default();
        }
        let Some(read_back) = &op.read_back else {
            return outcome;
        };
        if outcome.outcome != Outcome::Ok {
            return outcome;
        }
        outcome.answered_after = Some(started.elapsed());
        let (seen, sighting) = oneshot::channel();
        let awaited = AwaitedDelivery {
            book: &OwnReadBack,
            probe_id: &attempt.probe_id,
            seen: Ok(sighting),
            silence_is_missing: false,
        };
        let watch = self.watch(read_back, &values, started, seen);
        let (_, outcome) = tokio::join!(
            watch,
            finish_accepted(outcome, started, Some(awaited), self.delivery, self.timeout)
        );
        outcome
    }

    /// Reads back until the send is seen (then says when), or a read that
    /// started late enough does not show it (then drops `seen`: missing),
    /// or time runs out (a failed last read says so; otherwise silence,
    /// which leaves the send unconfirmed, never missing).
    async fn watch(
        &self,
        read_back: &ReadBack,
        values: &Values<'_>,
        started: Instant,
        seen: oneshot::Sender<Sighting>,
    ) {
        let deadline = started + self.timeout.saturating_sub(DELIVERY_MARGIN);
        let check_after = deadline - (READ_LIMIT + POLL_PERIOD).min(self.timeout / 2);
        let mut last_failure;
        loop {
            let read_started = Instant::now();
            let wait = READ_LIMIT.min(deadline.saturating_duration_since(read_started));
            match tokio::time::timeout(wait, self.read(read_back, values)).await {
                Ok(Ok(true)) => {
                    let _ = seen.send(Ok(Instant::now()));
                    return;
                }
                Ok(Ok(false)) if read_started >= check_after => return,
                Ok(Ok(false)) => last_failure = None,
                Ok(Err(fault)) => last_failure = Some(fault),
                Err(_) => last_failure = Some(Fault::Provider),
            }
            if Instant::now() + POLL_PERIOD >= deadline {
                if let Some(fault) = last_failure {
                    let _ = seen.send(Err(Unwatched::HistoryUnread(fault)));
                } else {
                    // Nothing conclusive: keep the channel open, so the
                    // send's deadline leaves it unconfirmed.
                    tokio::time::sleep_until(deadline + DELIVERY_MARGIN).await;
                }
                return;
            }
            tokio::time::sleep(POLL_PERIOD).await;
        }
    }

    /// One read-back: whether the list shows the probe id, or whose fault
    /// it is that it could not be read.
    async fn read(&self, read_back: &ReadBack, values: &Values<'_>) -> Result<bool, Fault> {
        let reply = self.call(&read_back.request, values, false).await;
        crate::probe::calls::count(
            &self.target,
            "read_back",
            (reply.outcome.outcome != Outcome::Ok).then_some("failed"),
        );
        match reply.outcome.outcome {
            Outcome::Ok => {}
            Outcome::Fail => return Err(Fault::Provider),
            Outcome::Inconclusive => {
                return Err(Fault::Ours(
                    reply
                        .outcome
                        .reason
                        .unwrap_or(crate::attempt::InconclusiveReason::RequestRejected),
                ));
            }
        }
        let Some(list) = reply
            .json
            .as_ref()
            .and_then(|j| j.pointer(&read_back.list))
            .and_then(Value::as_array)
        else {
            return Err(Fault::Provider);
        };
        Ok(list.iter().any(|message| {
            message
                .pointer(&read_back.probe_id_in)
                .and_then(Value::as_str)
                .is_some_and(|text| text.contains(values.probe_id))
        }))
    }
}

/// An expiry given as Unix seconds, or milliseconds when it is too large
/// to be seconds (past the year 5138), as a number or as text.
fn expiry_instant(value: &Value) -> Option<DateTime<Utc>> {
    let number = whole_number(value)?;
    if number > 100_000_000_000 {
        DateTime::from_timestamp_millis(number)
    } else {
        DateTime::from_timestamp(number, 0)
    }
}

/// A whole number given as a JSON number or as text.
fn whole_number(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[async_trait]
impl Probe for HttpProbe {
    async fn attempt(&self, kind: Kind) -> ProbeOutcome {
        match kind {
            Kind::Login => self.login().await,
            Kind::SendDirect => self.send(&self.settings.send_direct).await,
            Kind::SendGroup => self.send(&self.settings.send_group).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe_of(auth: &str) -> HttpProbe {
        let text = format!(
            "base_url = \"http://127.0.0.1:9/api\"\n\
             variables = {{ user = \"a b/c\" }}\n\
             secrets = {{ key = \"s3cret-value\" }}\n\
             {auth}\n\
             [login]\npath = \"/login/{{{{var.user}}}}\"\n\
             [send_direct]\npath = \"/d\"\nbody = {{ text = \"{{{{probe_id}}}}\" }}\n\
             [send_group]\npath = \"/g\"\n"
        );
        let settings: HttpSettings = toml::from_str(&text).unwrap();
        assert_eq!(settings.problems(), Vec::new());
        let context = ProbeContext {
            clock: Arc::new(crate::clock::SystemClock),
            target: "t".into(),
            prober: "p".into(),
            timeout: Duration::from_secs(1),
            delivery: DeliveryMode::Record,
        };
        HttpProbe::new(&settings, &context).unwrap()
    }

    /// The header each scheme sends, on the login's request (whose path
    /// carries its variable as one encoded segment).
    fn sent(auth: &str) -> (String, Option<String>) {
        let probe = probe_of(auth);
        let attempt = probe.attempt_values();
        let empty = BTreeMap::new();
        let values = probe.values(&attempt, &empty);
        let Ok(builder) = probe.build(&probe.settings.login.request, &values, true) else {
            panic!("the request builds");
        };
        let request = builder.build().unwrap();
        assert_eq!(request.url().path(), "/api/login/a%20b%2Fc");
        let authorization = ["Authorization", "X-Key"]
            .iter()
            .find_map(|h| request.headers().get(*h))
            .map(|v| v.to_str().unwrap().to_owned());
        (request.method().to_string(), authorization)
    }

    #[test]
    fn each_auth_scheme_sends_its_header() {
        let (method, header) =
            sent("[auth]\nscheme = \"header\"\nheader = \"X-Key\"\nvalue = \"{{secret.key}}\"");
        assert_eq!(
            (method.as_str(), header.as_deref()),
            ("POST", Some("s3cret-value"))
        );
        let (_, bearer) = sent("[auth]\nscheme = \"bearer\"\ntoken = \"{{secret.key}}\"");
        assert_eq!(bearer.as_deref(), Some("Bearer s3cret-value"));
        let (_, basic) =
            sent("[auth]\nscheme = \"basic\"\nusername = \"u\"\npassword = \"{{secret.key}}\"");
        // base64("u:s3cret-value")
        assert_eq!(basic.as_deref(), Some("Basic dTpzM2NyZXQtdmFsdWU="));
        let (_, jwt) = sent(
            "[auth]\nscheme = \"jwt_hs256\"\nkey = \"{{secret.key}}\"\nclaims = { server = true }\nlifetime = \"1h\"",
        );
        let jwt = jwt.unwrap();
        assert!(jwt.starts_with("Bearer eyJ"), "{jwt}");
        assert_eq!(jwt.matches('.').count(), 2);
    }

    /// Transport errors go through the table too: a refused connection
    /// and a silent server each meet their rule, and without one fail.
    #[tokio::test]
    async fn transport_errors_meet_their_rules() {
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let refused = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let probe_at = |addr: std::net::SocketAddr, rules: &str| {
            let text = format!(
                "base_url = \"http://{addr}\"\n\
                 [login]\npath = \"/l\"\n[send_direct]\npath = \"/d\"\n[send_group]\npath = \"/g\"\n{rules}"
            );
            let settings: HttpSettings = toml::from_str(&text).unwrap();
            let context = ProbeContext {
                clock: Arc::new(crate::clock::SystemClock),
                target: "t".into(),
                prober: "p".into(),
                timeout: Duration::from_millis(300),
                delivery: DeliveryMode::Record,
            };
            HttpProbe::new(&settings, &context).unwrap()
        };
        let rules = "[[classify]]\ntransport = \"connect\"\noutcome = \"inconclusive\"\nreason = \"local_network\"\n\
                     [[classify]]\ntransport = \"timeout\"\noutcome = \"inconclusive\"\nreason = \"throttled\"\n";
        let outcome = probe_at(refused, rules).attempt(Kind::Login).await;
        assert_eq!(
            outcome.reason,
            Some(crate::attempt::InconclusiveReason::LocalNetwork),
            "{outcome:?}"
        );
        let outcome = probe_at(silent.local_addr().unwrap(), rules)
            .attempt(Kind::SendDirect)
            .await;
        assert_eq!(
            outcome.reason,
            Some(crate::attempt::InconclusiveReason::Throttled),
            "{outcome:?}"
        );
        let outcome = probe_at(refused, "").attempt(Kind::SendGroup).await;
        assert_eq!(outcome.outcome, Outcome::Fail, "{outcome:?}");
        assert!(
            outcome
                .error
                .as_deref()
                .is_some_and(|e| e.contains("onnect")),
            "{outcome:?}"
        );
    }

    #[test]
    fn secrets_are_taken_out_of_errors() {
        let probe = probe_of("");
        probe.captured.locked().values = BTreeMap::from([("token".into(), "session-7".into())]);
        assert_eq!(
            probe.redact("HTTP 400: bad key s3cret-value given for session-7"),
            "HTTP 400: bad key <redacted> given for <redacted>"
        );
    }

    #[test]
    fn an_expiry_is_seconds_or_milliseconds() {
        let s = expiry_instant(&serde_json::json!(1_780_000_000)).unwrap();
        let ms = expiry_instant(&serde_json::json!(1_780_000_000_000_i64)).unwrap();
        let text = expiry_instant(&serde_json::json!("1780000000")).unwrap();
        assert_eq!(s, ms);
        assert_eq!(s, text);
        assert_eq!(expiry_instant(&serde_json::json!(true)), None);
    }
}
