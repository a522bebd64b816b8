//! XMPP (`provider = "xmpp"`): a fresh sign-in for every login check, chat
//! and group chat messages over a long-lived session, each acknowledged by
//! the server, with delivery confirmed by a second account (docs/providers.md "XMPP").

pub mod codes;
pub mod connect;
pub mod scram;
pub mod session;
pub mod settings;
pub mod setup;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::parsers::message::{Id, Lang, Message, MessageType};

pub use settings::{XmppSettings, XmppTls};

use self::codes::CallError;
use self::connect::Connector;
use self::scram::LoginPassword;
use self::session::{BODY_PREFIX, Session, sign_in, sign_out};
use super::Fault;
use super::delivery::DeliveryMode;
use super::delivery::{
    AwaitedDelivery, DeliveryBook, Place, Unwatched, WatchState, finish_accepted,
};
use super::{Adapter, Probe, ProbeContext, ProbeOutcome, Provider};
use crate::attempt::{InconclusiveReason, Kind};
use crate::secret::Secret;
use crate::sync::Locked;

/// A healthy server answers a sign-in or a message well within this.
pub const ANSWERS_WITHIN: Duration = Duration::from_secs(1);

/// Between sign-in tries of the recipient while the server does not answer,
/// and while it refuses the recipient's credentials.
const RECIPIENT_RETRY: Duration = Duration::from_secs(1);
const RECIPIENT_RETRY_REFUSED: Duration = Duration::from_secs(60);

pub struct XmppProbe {
    connector: Connector,
    jid: BareJid,
    /// With its salted form kept between logins (`scram`).
    password: LoginPassword,
    /// Where chat messages go: the recipient, or our own account.
    to: BareJid,
    room: Option<BareJid>,
    /// `improbe-<target>-<prober>`: resources, nicks and probe ids start so.
    prefix: String,
    sender: tokio::sync::Mutex<Option<Arc<Session>>>,
    recipient: Option<(Arc<RecipientWatch>, tokio::task::AbortHandle)>,
    sequence: AtomicU64,
    timeout: Duration,
    delivery_mode: DeliveryMode,
}

impl Drop for XmppProbe {
    fn drop(&mut self) {
        if let Some((_, task)) = &self.recipient {
            task.abort();
        }
    }
}

fn bare(text: &str, field: &str) -> anyhow::Result<BareJid> {
    BareJid::new(text).map_err(|e| anyhow::anyhow!("{field} `{text}`: {e}"))
}

impl XmppProbe {
    pub fn new(settings: &XmppSettings, context: &ProbeContext) -> anyhow::Result<XmppProbe> {
        let connector = Connector::new(settings)?;
        let jid = bare(&settings.jid, "jid")?;
        let password = LoginPassword::new(settings.password.reveal()?);
        let room = settings
            .group_room
            .as_deref()
            .map(|r| bare(r, "group_room"))
            .transpose()?;
        let prefix = format!("improbe-{}-{}", context.target, context.prober);
        let recipient_jid = settings
            .recipient
            .as_deref()
            .map(|rx| bare(rx, "recipient"))
            .transpose()?;
        let recipient = match (&recipient_jid, &settings.recipient_password) {
            (Some(rx), Some(rx_password)) => {
                let watch = Arc::new(RecipientWatch {
                    book: Arc::new(DeliveryBook::default()),
                    state: Mutex::new(WatchState::Starting),
                });
                let task = tokio::spawn(watch.clone().run(
                    connector.clone(),
                    rx.clone(),
                    LoginPassword::new(rx_password.reveal()?),
                    format!("{prefix}-rx"),
                    room.clone(),
                ));
                Some((watch, task.abort_handle()))
            }
            _ => None,
        };
        let to = recipient_jid.unwrap_or_else(|| jid.clone());
        Ok(XmppProbe {
            connector,
            jid,
            password,
            to,
            room,
            prefix,
            sender: tokio::sync::Mutex::new(None),
            recipient,
            sequence: AtomicU64::new(0),
            timeout: context.timeout,
            delivery_mode: context.delivery,
        })
    }

    /// A fresh connection each time: TCP, TLS, SASL, bind. `ok` only when
    /// the bind completes; the stream is then closed off the attempt's clock.
    async fn login(&self) -> ProbeOutcome {
        let resource = format!("{}-login", self.prefix);
        match sign_in(&self.connector, &self.jid, &self.password, &resource).await {
            Ok((stream, _)) => {
                tokio::spawn(sign_out(stream));
                ProbeOutcome::ok(None)
            }
            Err(e) => e.outcome("login"),
        }
    }

    /// The sending session, opened (and the room joined) when there is none
    /// or the last one ended.
    async fn session(&self) -> Result<Arc<Session>, CallError> {
        let mut current = self.sender.lock().await;
        if let Some(session) = current.as_ref()
            && session.ended().is_none()
        {
            return Ok(session.clone());
        }
        *current = None;
        let resource = format!("{}-send", self.prefix);
        let session = Arc::new(
            Session::open(
                &self.connector,
                &self.jid,
                &self.password,
                &resource,
                self.room.as_ref(),
                None,
            )
            .await?,
        );
        *current = Some(session.clone());
        Ok(session)
    }

    async fn send(&self, kind: Kind) -> ProbeOutcome {
        let started = Instant::now();
        let group = kind == Kind::SendGroup;
        let room = match (&self.room, group) {
            (None, true) => {
                return ProbeOutcome::inconclusive(
                    InconclusiveReason::RequestRejected,
                    None,
                    None,
                    "no group_room in [targets.xmpp]: name one and run `improbe setup`",
                );
            }
            (room, _) => room.clone(),
        };
        let session = match self.session().await {
            Ok(session) => session,
            Err(e) => return e.outcome("sign-in for sending"),
        };
        let place = if group { Place::Group } else { Place::Direct };
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let sent_at = chrono::Utc::now();
        let probe_id = format!(
            "{}-{}-{sequence}",
            self.prefix,
            sent_at.timestamp_nanos_opt().unwrap_or_default()
        );
        let body = format!(
            "{BODY_PREFIX}{probe_id} sent {}",
            sent_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        );
        // Only a recipient that is in can see the message: while it signs
        // in (at start, after the server comes back, after the room removed
        // it) nothing is expected.
        let seen = self
            .recipient
            .as_ref()
            .map(|(w, _)| w.book.expect_if(&probe_id, place, || w.can_see()));
        let (type_, to) = match room {
            Some(room) if group => (MessageType::Groupchat, Jid::from(room)),
            _ => (MessageType::Chat, Jid::from(self.to.clone())),
        };
        let mut message = Message::new_with_type(type_, Some(to)).with_body(Lang::default(), body);
        message.id = Some(Id(probe_id.clone()));
        let answer = if group {
            // The room reflects the message to its sender once it has taken
            // it and sent it on to the occupants.
            session.call(message.into(), &probe_id).await
        } else {
            session.send_acknowledged(message, &probe_id).await
        };
        let answered = started.elapsed();
        if let Err(e) = answer {
            if let Some((w, _)) = &self.recipient {
                w.book.forget(&probe_id);
            }
            return e.outcome(if group {
                "group message"
            } else {
                "chat message"
            });
        }
        let mut outcome = ProbeOutcome::ok(None);
        outcome.answered_after = Some(answered);
        let awaited = self
            .recipient
            .as_ref()
            .zip(seen)
            .map(|((w, _), seen)| AwaitedDelivery {
                book: w.book.as_ref(),
                probe_id: &probe_id,
                seen,
                silence_is_missing: true,
            });
        finish_accepted(outcome, started, awaited, self.delivery_mode, self.timeout).await
    }
}

#[async_trait]
impl Probe for XmppProbe {
    async fn attempt(&self, kind: Kind) -> ProbeOutcome {
        match kind {
            Kind::Login => self.login().await,
            Kind::SendDirect | Kind::SendGroup => self.send(kind).await,
        }
    }
}

/// The recipient account, signed in and in the room, confirming the probe
/// ids it sees.
pub struct RecipientWatch {
    book: Arc<DeliveryBook>,
    state: Mutex<WatchState>,
}

impl RecipientWatch {
    pub fn state(&self) -> WatchState {
        *self.state.locked()
    }

    fn set_state(&self, state: WatchState) {
        *self.state.locked() = state;
    }

    /// Whether the recipient can see a send now, or why not: only once it
    /// is signed in and in the room.
    fn can_see(&self) -> Result<(), Unwatched> {
        match self.state() {
            WatchState::Watching => Ok(()),
            WatchState::Starting => Err(Unwatched::NotSignedIn),
            WatchState::Refused(why) => Err(why),
        }
    }

    async fn run(
        self: Arc<Self>,
        connector: Connector,
        jid: BareJid,
        password: LoginPassword,
        resource: String,
        room: Option<BareJid>,
    ) {
        loop {
            // Boxed: signing in is the largest state this task ever holds,
            // and only while it signs in (docs/performance.md, XMPP).
            let opened = Box::pin(Session::open(
                &connector,
                &jid,
                &password,
                &resource,
                room.as_ref(),
                Some(self.book.clone()),
            ))
            .await;
            match opened {
                Ok(session) => {
                    self.set_state(WatchState::Watching);
                    session.closed().await;
                    self.set_state(WatchState::Starting);
                    // All it saw came in before the end; what still waits
                    // it will not see from this session.
                    let why = if session.removed_from_room() {
                        tracing::warn!(recipient = %jid, "{}; joining again", session.ended().unwrap_or_default());
                        Unwatched::NotInRoom
                    } else {
                        Unwatched::NotSignedIn
                    };
                    self.book.give_up(None, why);
                    tokio::time::sleep(RECIPIENT_RETRY).await;
                }
                Err(e) => {
                    // A refused join (banned, members only) is our
                    // configuration like refused credentials: asked again
                    // after a while, not every second.
                    let refused = match &e {
                        CallError::Untrusted(_) => Some(Unwatched::NotSignedIn),
                        CallError::Condition { condition, .. } => match codes::class(condition) {
                            Fault::Ours(InconclusiveReason::Credentials) => {
                                Some(Unwatched::NotSignedIn)
                            }
                            Fault::Ours(InconclusiveReason::RequestRejected) if room.is_some() => {
                                Some(Unwatched::NotInRoom)
                            }
                            _ => None,
                        },
                        CallError::Transport(_) => None,
                    };
                    if let Some(why) = refused {
                        if self.state() != WatchState::Refused(why) {
                            tracing::warn!(recipient = %jid, "the recipient cannot sign in or join the room, delivery is not confirmed: {e}");
                        }
                        self.set_state(WatchState::Refused(why));
                        tokio::time::sleep(RECIPIENT_RETRY_REFUSED).await;
                    } else {
                        tracing::debug!(recipient = %jid, "recipient sign-in failed: {e}");
                        tokio::time::sleep(RECIPIENT_RETRY).await;
                    }
                }
            }
        }
    }
}

#[async_trait]
impl Adapter for XmppSettings {
    fn kind(&self) -> Provider {
        Provider::Xmpp
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
        Ok(Arc::new(XmppProbe::new(self, context)?))
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
