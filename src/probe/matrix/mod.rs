//! Matrix homeservers over the client-server API (v3): a password login
//! checked with `whoami`, and messages into a direct and a group room,
//! with delivery confirmed by a second account's `/sync` (docs/providers.md "Matrix").

pub mod client;
pub mod codes;
pub mod delivery;
pub mod settings;
pub mod setup;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use tokio::time::Instant;

pub use settings::MatrixSettings;

use self::client::{CallError, MatrixClient};
use self::codes::Call;
use self::delivery::{PROBE_ID_KEY, Recipient, RecipientLogin};
use super::delivery::DeliveryMode;
use super::{Adapter, Probe, ProbeContext, ProbeOutcome, Provider};
use crate::attempt::{InconclusiveReason, Kind};
use crate::probe::delivery::{AwaitedDelivery, Place, finish_accepted};
use crate::secret::Secret;
use crate::sync::Locked;

/// Synapse holds a rate-limited request for half a second before it answers
/// 429, and a login hashes the password: a healthy homeserver's answers can
/// take this long, so a shorter `timeout` gets a warning.
pub const ANSWERS_WITHIN: Duration = Duration::from_secs(1);

/// How long a background logout may take.
const LOGOUT_TIMEOUT: Duration = Duration::from_secs(30);
/// Tokens kept for a later logout while logouts fail; past this the homeserver
/// expires them itself.
const MAX_STALE_TOKENS: usize = 100;

pub struct MatrixProbe {
    api: MatrixClient,
    /// Keeps no idle connection, so every login opens a new one.
    login_api: MatrixClient,
    user: String,
    password: String,
    direct_room: String,
    group_room: String,
    /// The login operation's device: its token is logged out after each
    /// check, which deletes the device, so none pile up.
    login_device: String,
    /// The long-lived sending session's device and token.
    send_device: String,
    send_token: tokio::sync::Mutex<Option<String>>,
    /// Tokens whose logout failed, logged out at the next login.
    stale_tokens: Arc<Mutex<Vec<String>>>,
    /// Per operation, the instant before which the homeserver asked us not
    /// to come back (`Retry-After`).
    held_until: Mutex<HashMap<Kind, Instant>>,
    recipient: Option<(std::sync::Arc<Recipient>, tokio::task::AbortHandle)>,
    delivery_mode: DeliveryMode,
    timeout: Duration,
    prefix: String,
    sequence: AtomicU64,
}

impl Drop for MatrixProbe {
    fn drop(&mut self) {
        if let Some((_, watch)) = &self.recipient {
            watch.abort();
        }
    }
}

/// A device ID for one role of one prober on one target: fixed, so a
/// restart reuses the device instead of adding one.
fn device_id(context: &ProbeContext, role: &str) -> String {
    format!("improbe-{}-{}-{role}", context.target, context.prober)
}

impl MatrixProbe {
    pub fn new(settings: &MatrixSettings, context: &ProbeContext) -> anyhow::Result<Self> {
        let clients = crate::probe::HttpClients::shared()?;
        let base = settings.api_base();
        let [direct_room, group_room] = settings.rooms()?;
        let password = settings
            .password
            .reveal()
            .map_err(|e| anyhow::anyhow!("password for {}: {e}", settings.user))?;
        let recipient = match (&settings.recipient, &settings.recipient_password) {
            (Some(user), Some(secret)) => {
                let password = secret
                    .reveal()
                    .map_err(|e| anyhow::anyhow!("recipient_password for {user}: {e}"))?;
                Some(Recipient::start(RecipientLogin {
                    client: MatrixClient::new(clients.pooled.clone(), base.clone()),
                    user: user.clone(),
                    password,
                    device_id: device_id(context, "recipient"),
                    rooms: [direct_room.clone(), group_room.clone()],
                }))
            }
            _ => None,
        };
        Ok(Self {
            api: MatrixClient::new(clients.pooled.clone(), base.clone()),
            login_api: MatrixClient::new(clients.unpooled.clone(), base),
            user: settings.user.clone(),
            password,
            direct_room,
            group_room,
            login_device: device_id(context, "login"),
            send_device: device_id(context, "send"),
            send_token: tokio::sync::Mutex::new(None),
            stale_tokens: Arc::default(),
            held_until: Mutex::new(HashMap::new()),
            recipient,
            delivery_mode: context.delivery,
            timeout: context.timeout,
            prefix: format!("{}-{}", context.target, context.prober),
            sequence: AtomicU64::new(0),
        })
    }

    /// A fresh password login checked with `whoami`; the token is then
    /// logged out, so a day of probing leaves no live tokens behind.
    async fn login(&self) -> ProbeOutcome {
        let token = match self
            .login_api
            .login(&self.user, &self.password, &self.login_device)
            .await
        {
            Ok(token) => token,
            Err(e) => return self.failed(Kind::Login, Call::Login, "login", &e),
        };
        // A client goes on over the connection it holds; only the login
        // itself is made on a fresh one (DNS, TCP, TLS), like a new client's.
        let outcome = match self.api.whoami(&token).await {
            Ok(user) if user == self.user => ProbeOutcome::ok(Some(200)),
            Ok(other) => ProbeOutcome::fail(
                Some(200),
                None,
                format!(
                    "whoami: the new token belongs to {other}, not {}",
                    self.user
                ),
            ),
            Err(e) => self.failed(Kind::Login, Call::Login, "whoami", &e),
        };
        self.log_out_later(token);
        outcome
    }

    /// Logs the token out (with any whose logout failed before) off the
    /// attempt's clock: the login was answered, whatever the logout meets.
    fn log_out_later(&self, token: String) {
        let api = self.api.clone();
        let stale = self.stale_tokens.clone();
        let user = self.user.clone();
        tokio::spawn(async move {
            let earlier = std::mem::take(&mut *stale.locked());
            for token in std::iter::once(token).chain(earlier) {
                let error = match tokio::time::timeout(LOGOUT_TIMEOUT, api.logout(&token)).await {
                    Ok(Ok(())) => continue,
                    Ok(Err(e)) if e.errcode() == Some("M_UNKNOWN_TOKEN") => continue,
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => format!("no answer within {}s", LOGOUT_TIMEOUT.as_secs()),
                };
                tracing::debug!(%user, "logout failed, retried after the next login: {error}");
                let mut stale = stale.locked();
                if stale.len() < MAX_STALE_TOKENS {
                    stale.push(token);
                }
            }
        });
    }

    /// The sending session's token, signing in if there is none.
    async fn session(&self, renew: bool) -> Result<String, CallError> {
        let mut token = self.send_token.lock().await;
        if renew {
            *token = None;
        }
        if let Some(token) = token.as_ref() {
            return Ok(token.clone());
        }
        let new = self
            .api
            .login(&self.user, &self.password, &self.send_device)
            .await?;
        Ok(token.insert(new).clone())
    }

    async fn send(&self, kind: Kind) -> ProbeOutcome {
        let started = Instant::now();
        let (room, place) = match kind {
            Kind::SendGroup => (&self.group_room, Place::Group),
            _ => (&self.direct_room, Place::Direct),
        };
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let sent_at = chrono::Utc::now();
        let probe_id = format!(
            "{}-{}-{sequence}",
            self.prefix,
            sent_at.timestamp_nanos_opt().unwrap_or_default()
        );
        let content = json!({
            "msgtype": "m.notice",
            "body": format!("improbe probe {probe_id}, sent {}", sent_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            PROBE_ID_KEY: probe_id,
        });
        let seen = self
            .recipient
            .as_ref()
            .map(|(r, _)| r.book().expect_if(&probe_id, place, || r.can_see(place)));

        let mut renewed = false;
        let answer = loop {
            let token = match self.session(false).await {
                Ok(token) => token,
                Err(e) => break Err(("login for sending", Call::Login, e)),
            };
            match self
                .api
                .send_message(&token, room, &probe_id, &content)
                .await
            {
                Err(e) if e.errcode() == Some("M_UNKNOWN_TOKEN") && !renewed => {
                    renewed = true;
                    if let Err(e) = self.session(true).await {
                        break Err(("login for sending", Call::Login, e));
                    }
                }
                Err(e) => break Err(("send", Call::Send, e)),
                Ok(_event_id) => break Ok(()),
            }
        };
        let answered = started.elapsed();
        if let Err((doing, call, e)) = answer {
            if let Some((r, _)) = &self.recipient {
                r.book().forget(&probe_id);
            }
            return self.failed(kind, call, doing, &e);
        }
        let mut outcome = ProbeOutcome::ok(Some(200));
        outcome.answered_after = Some(answered);
        let awaited = self
            .recipient
            .as_ref()
            .zip(seen)
            .map(|((r, _), seen)| AwaitedDelivery {
                book: r.book(),
                probe_id: &probe_id,
                seen,
                silence_is_missing: true,
            });
        finish_accepted(outcome, started, awaited, self.delivery_mode, self.timeout).await
    }

    /// The outcome of an error answer; a rate limit holds the operation
    /// back for as long as the homeserver asked.
    fn failed(&self, kind: Kind, call: Call, doing: &str, error: &CallError) -> ProbeOutcome {
        if let Some(wait) = error.retry_after() {
            self.held_until
                .lock()
                .expect("lock")
                .insert(kind, Instant::now() + wait);
        }
        error.outcome(call, doing)
    }

    /// An attempt the homeserver asked us not to make yet: inconclusive,
    /// without a call.
    fn held_back(&self, kind: Kind) -> Option<ProbeOutcome> {
        let mut held = self.held_until.locked();
        let until = *held.get(&kind)?;
        let now = Instant::now();
        if now >= until {
            held.remove(&kind);
            return None;
        }
        Some(ProbeOutcome::inconclusive(
            InconclusiveReason::Throttled,
            None,
            Some("M_LIMIT_EXCEEDED".into()),
            format!(
                "held back: the homeserver asked to retry in {} ms",
                (until - now).as_millis()
            ),
        ))
    }
}

#[async_trait]
impl Probe for MatrixProbe {
    async fn attempt(&self, kind: Kind) -> ProbeOutcome {
        if let Some(held) = self.held_back(kind) {
            return held;
        }
        match kind {
            Kind::Login => self.login().await,
            Kind::SendDirect | Kind::SendGroup => self.send(kind).await,
        }
    }
}

#[async_trait]
impl Adapter for MatrixSettings {
    fn kind(&self) -> Provider {
        Provider::Matrix
    }

    fn answers_within(&self) -> Option<Duration> {
        Some(ANSWERS_WITHIN)
    }

    fn check(&self) -> Vec<(&'static str, String)> {
        self.problems()
    }

    fn secrets(&self) -> Vec<(&'static str, &Secret)> {
        let mut secrets = vec![("password", &self.password)];
        secrets.extend(
            self.recipient_password
                .iter()
                .map(|rx| ("recipient_password", rx)),
        );
        secrets
    }

    fn probe(&self, context: &ProbeContext) -> anyhow::Result<Arc<dyn Probe>> {
        Ok(Arc::new(MatrixProbe::new(self, context)?))
    }

    fn confirms_delivery(&self) -> bool {
        self.recipient.is_some()
    }

    async fn setup(&self) -> Option<anyhow::Result<Vec<String>>> {
        Some(setup::setup(self).await)
    }

    fn is_unclassified_code(&self, error_code: &str) -> bool {
        codes::is_unclassified(error_code)
    }
}
