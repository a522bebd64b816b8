//! Signing in (TCP, TLS, SASL, resource binding) and a signed-in session
//! that stays open: one task owns the XML stream, sends what callers hand it
//! and routes what comes back (IQ answers, message errors, the room's
//! reflections, the recipient's deliveries) to whoever waits for it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::BufStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_xmpp::connect::ServerConnector;
use tokio_xmpp::jid::{BareJid, FullJid, Jid};
use tokio_xmpp::parsers::bind::{BindQuery, BindResponse};
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::message::{Message, MessageType};
use tokio_xmpp::parsers::muc::{Muc, MucUser, muc::History, user::Status};
use tokio_xmpp::parsers::ns;
use tokio_xmpp::parsers::ping::Ping;
use tokio_xmpp::parsers::presence::{Presence, Type as PresenceType};
use tokio_xmpp::parsers::sasl::{Auth, Mechanism, Nonza, Response};
use tokio_xmpp::parsers::stanza_error::StanzaError;
use tokio_xmpp::xmlstream::{
    InitiatingStream, ReadError, StreamHeader, Timeouts, XmppStream, XmppStreamElement,
};
use tokio_xmpp::{Stanza, minidom::Element};

use super::codes::{CallError, condition_name};
use super::connect::{Connector, Io};
use super::scram::{LoginPassword, ScramClient, ScramHash};
use crate::probe::delivery::DeliveryBook;
use crate::sync::Locked;

type Stream = XmppStream<BufStream<Box<dyn Io>>>;

/// A message body's opening words; the probe id follows.
pub const BODY_PREFIX: &str = "improbe probe ";

/// The stream's own idle checks: quiet this long, the server is pinged.
fn timeouts() -> Timeouts {
    Timeouts {
        read_timeout: Duration::from_secs(60),
        response_timeout: Duration::from_secs(20),
    }
}

/// The next element, or why there is none.
async fn next(stream: &mut Stream) -> Result<XmppStreamElement, CallError> {
    loop {
        match stream
            .next()
            .await
            .map(|v| v.and_then(|v| v.into_read_error()))
        {
            Some(Ok(XmppStreamElement::StreamError(error))) => {
                return Err(CallError::condition(
                    condition_name(&error.0.condition),
                    format!("stream error from the server: {}", error.0),
                ));
            }
            Some(Ok(element)) => return Ok(element),
            Some(Err(ReadError::SoftTimeout)) => {}
            Some(Err(ReadError::HardError(e))) => return Err(CallError::io(&e)),
            Some(Err(ReadError::ParseError(e))) => {
                return Err(CallError::Transport(format!(
                    "unreadable XML from the server: {e}"
                )));
            }
            None | Some(Err(ReadError::StreamFooterReceived)) => {
                return Err(CallError::Transport(
                    "the server closed the stream".to_owned(),
                ));
            }
        }
    }
}

async fn send(stream: &mut Stream, stanza: Stanza) -> Result<(), CallError> {
    stream
        .send(&XmppStreamElement::Stanza(stanza))
        .await
        .map_err(|e| CallError::io(&e))
}

/// The full path a client takes: TCP (or TLS), STARTTLS and the
/// certificate check, SASL (SCRAM where offered), then resource binding.
/// Returns the bound stream.
pub async fn sign_in(
    connector: &Connector,
    jid: &BareJid,
    password: &LoginPassword,
    resource: &str,
) -> Result<(Stream, FullJid), CallError> {
    let from_xmpp = |e: tokio_xmpp::Error| CallError::from_xmpp(&e);
    let io = |e: std::io::Error| CallError::io(&e);
    let (pending, _no_binding) = connector
        .connect(&Jid::from(jid.clone()), ns::JABBER_CLIENT, timeouts())
        .await
        .map_err(from_xmpp)?;
    let features_error =
        |e: tokio_xmpp::xmlstream::RecvFeaturesError| CallError::from_xmpp(&e.into());
    let (features, stream): (_, Stream) = pending.recv_features().await.map_err(features_error)?;
    let node = jid.node().map_or("", |n| n.as_str());
    let authenticated = authenticate(
        stream,
        &features.sasl_mechanisms,
        (node, password),
        connector.encrypted(),
    )
    .await?;
    let pending = authenticated
        .send_header(StreamHeader {
            to: Some(jid.domain().as_str().into()),
            from: None,
            id: None,
        })
        .await
        .map_err(io)?;
    let (_, mut stream): (_, Stream) = pending.recv_features().await.map_err(features_error)?;
    let bind = Iq::from_set("bind", BindQuery::new(Some(resource.to_owned())));
    send(&mut stream, bind.into()).await?;
    loop {
        if let XmppStreamElement::Stanza(Stanza::Iq(iq)) = next(&mut stream).await? {
            match iq {
                Iq::Result {
                    id,
                    payload: Some(payload),
                    ..
                } if id == "bind" => {
                    let bound = BindResponse::try_from(payload).map_err(|e| {
                        CallError::Transport(format!("unreadable bind answer: {e}"))
                    })?;
                    return Ok((stream, bound.jid));
                }
                Iq::Error { id, error, .. } if id == "bind" => {
                    return Err(stanza_error(&error, "resource binding refused"));
                }
                _ => {}
            }
        }
    }
}

/// SASL: SCRAM-SHA-256, else SCRAM-SHA-1, else PLAIN only inside TLS; never
/// ANONYMOUS (a login that names nobody proves nothing about our account).
/// Ends with the stream reset that a successful authentication requires.
async fn authenticate(
    mut stream: Stream,
    offered: &std::collections::BTreeSet<String>,
    (username, password): (&str, &LoginPassword),
    encrypted: bool,
) -> Result<InitiatingStream<BufStream<Box<dyn Io>>>, CallError> {
    let scram = [ScramHash::Sha256, ScramHash::Sha1]
        .into_iter()
        .find(|h| offered.contains(h.mechanism()));
    let mut client = scram.map(|h| ScramClient::new(h, username));
    let mechanism = match scram {
        Some(ScramHash::Sha256) => Mechanism::ScramSha256,
        Some(ScramHash::Sha1) => Mechanism::ScramSha1,
        None if encrypted && offered.contains("PLAIN") => Mechanism::Plain,
        None => {
            return Err(CallError::condition(
                "invalid-mechanism".to_owned(),
                "the server offers no SASL mechanism improbe can use",
            ));
        }
    };
    let initial = match &client {
        Some(client) => client.first_message(),
        None => format!("\0{username}\0{}", password.text).into_bytes(),
    };
    let refused = |why: String| CallError::condition("not-authorized".to_owned(), why);
    stream
        .send(&XmppStreamElement::Sasl(Nonza::Auth(Auth {
            mechanism,
            data: initial,
        })))
        .await
        .map_err(|e| CallError::io(&e))?;
    // PLAIN has no server signature to check.
    let mut signature_checked = client.is_none();
    loop {
        let XmppStreamElement::Sasl(nonza) = next(&mut stream).await? else {
            continue;
        };
        let reply = match (nonza, client.as_mut()) {
            (Nonza::Challenge(challenge), Some(scram)) if !scram.answered() => scram
                .final_message(&challenge.data, &password.text, &password.salted)
                .map_err(refused)?,
            // Some servers send the signature as a last challenge.
            (Nonza::Challenge(challenge), Some(scram)) => {
                scram
                    .verify_server_final(&challenge.data)
                    .map_err(refused)?;
                signature_checked = true;
                Vec::new()
            }
            (Nonza::Success(success), scram) => {
                if let Some(scram) = scram
                    && !signature_checked
                {
                    scram.verify_server_final(&success.data).map_err(refused)?;
                }
                return Ok(stream.initiate_reset());
            }
            (Nonza::Failure(failure), _) => {
                return Err(CallError::condition(
                    condition_name(&failure.defined_condition),
                    "SASL authentication failed",
                ));
            }
            (other, _) => {
                return Err(CallError::Transport(format!(
                    "unexpected SASL element from the server: {other:?}"
                )));
            }
        };
        stream
            .send(&XmppStreamElement::Sasl(Nonza::Response(Response {
                data: reply,
            })))
            .await
            .map_err(|e| CallError::io(&e))?;
    }
}

/// Ends a stream politely; a server that does not answer is not waited for.
pub async fn sign_out(mut stream: Stream) {
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        SinkExt::<&Stanza>::close(&mut stream),
    )
    .await;
}

fn stanza_error(error: &StanzaError, doing: &str) -> CallError {
    let text = error.texts.values().next().cloned().unwrap_or_default();
    CallError::condition(
        condition_name(&error.defined_condition),
        if text.is_empty() {
            doing.to_owned()
        } else {
            format!("{doing}: {text}")
        },
    )
}

/// What a caller waits for after sending: the server's answer to an IQ, the
/// room's reflection of a group message, or an error about either.
type Reply = oneshot::Sender<Result<(), CallError>>;

#[derive(Default)]
struct Routes {
    /// By stanza id.
    waiting: Mutex<HashMap<String, Reply>>,
    /// Why the session ended, once it has.
    ended: Mutex<Option<String>>,
    /// Whether it ended because the room removed us.
    removed: AtomicBool,
}

impl Routes {
    fn answer(&self, id: &str, result: Result<(), CallError>) {
        if let Some(reply) = self.waiting.locked().remove(id) {
            let _ = reply.send(result);
        }
    }
}

/// A signed-in session kept open for sending, or for watching as the recipient.
pub struct Session {
    /// Boxed: the channel allocates its slots 32 at a time whatever its
    /// capacity, and a `Stanza` is about 400 bytes, so 13 KiB per session
    /// where boxes take 256 bytes (docs/performance.md, XMPP).
    outbox: mpsc::Sender<Box<Stanza>>,
    routes: Arc<Routes>,
    pub bound: FullJid,
    /// Where the session sits in the group room: `room/nick`.
    pub occupant: Option<FullJid>,
    task: tokio::task::AbortHandle,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Session {
    /// Signs in, says it is available, and joins `room` when given (rooms
    /// are joined again with every new session). `deliveries`: the
    /// recipient's book, whose probe ids this session confirms on sight.
    pub async fn open(
        connector: &Connector,
        jid: &BareJid,
        password: &LoginPassword,
        resource: &str,
        room: Option<&BareJid>,
        deliveries: Option<Arc<DeliveryBook>>,
    ) -> Result<Session, CallError> {
        let (mut stream, bound) = sign_in(connector, jid, password, resource).await?;
        send(&mut stream, Presence::available().into()).await?;
        let occupant = match room {
            Some(room) => Some(join(&mut stream, room, resource).await?),
            None => None,
        };
        let routes = Arc::new(Routes::default());
        let (outbox, queue) = mpsc::channel(64);
        let task = tokio::spawn(run(
            stream,
            queue,
            routes.clone(),
            occupant.clone(),
            deliveries,
        ));
        Ok(Session {
            outbox,
            routes,
            bound,
            occupant,
            task: task.abort_handle(),
        })
    }

    /// Why the session ended, or `None` while it is open.
    pub fn ended(&self) -> Option<String> {
        // The task records why before it lets waiting callers go.
        let reason = self.routes.ended.locked().clone();
        reason.or_else(|| {
            self.task
                .is_finished()
                .then(|| "the session ended".to_owned())
        })
    }

    /// Waits until the session has ended (its task lets go of the queue).
    pub async fn closed(&self) {
        self.outbox.closed().await;
    }

    /// Whether the session ended because the room removed us (kicked,
    /// banned, no longer a member).
    pub fn removed_from_room(&self) -> bool {
        self.routes.removed.load(Ordering::Relaxed)
    }

    /// Sends `stanza` and waits for what answers the id `awaited`: an IQ
    /// result, or a message reflected by the room; an error stanza or the
    /// end of the session is an `Err`.
    pub async fn call(&self, stanza: Stanza, awaited: &str) -> Result<(), CallError> {
        let (reply, answer) = oneshot::channel();
        self.routes
            .waiting
            .lock()
            .expect("routes lock")
            .insert(awaited.to_owned(), reply);
        let ended = || {
            CallError::Transport(
                self.ended()
                    .unwrap_or_else(|| "the session ended".to_owned()),
            )
        };
        if self.outbox.send(Box::new(stanza)).await.is_err() {
            return Err(ended());
        }
        match answer.await {
            Ok(result) => result,
            Err(_) => Err(ended()),
        }
    }

    /// Sends a message, then a ping on the same stream: the server answers
    /// the ping only after it has taken the message, so the answer is the
    /// message's acknowledgement (an error about the message comes first).
    pub async fn send_acknowledged(&self, message: Message, id: &str) -> Result<(), CallError> {
        let (reply, mut refused) = oneshot::channel();
        self.routes
            .waiting
            .lock()
            .expect("routes lock")
            .insert(id.to_owned(), reply);
        let ping_id = format!("{id}-ack");
        let server = Jid::from(BareJid::from_parts(None, self.bound.domain()));
        let ping = Iq::from_get(ping_id.clone(), Ping).with_to(server);
        let acknowledged = match self.outbox.send(Box::new(message.into())).await {
            Ok(()) => self.call(ping.into(), &ping_id).await,
            Err(_) => Err(CallError::Transport(
                self.ended()
                    .unwrap_or_else(|| "the session ended".to_owned()),
            )),
        };
        self.routes.waiting.locked().remove(id);
        // An error about the message reached us before the ping's answer.
        if let Ok(Err(error)) = refused.try_recv() {
            return Err(error);
        }
        acknowledged
    }
}

/// Joins a room as `nick` and waits for the room's own presence for us
/// (status 110), or its refusal.
async fn join(stream: &mut Stream, room: &BareJid, nick: &str) -> Result<FullJid, CallError> {
    let occupant = room
        .with_resource_str(nick)
        .map_err(|e| CallError::Transport(format!("room nick: {e}")))?;
    let presence = Presence::available()
        .with_to(occupant.clone())
        .with_payload(Muc::new().with_history(History::new().with_maxstanzas(0)));
    send(stream, presence.into()).await?;
    loop {
        if let XmppStreamElement::Stanza(Stanza::Presence(p)) = next(stream).await?
            && p.from.as_ref().is_some_and(|f| f.to_bare() == *room)
        {
            if p.type_ == PresenceType::Error {
                let error = p
                    .payloads
                    .iter()
                    .find(|e| e.name() == "error")
                    .and_then(|e| StanzaError::try_from(e.clone()).ok());
                return Err(match error {
                    Some(error) => stanza_error(&error, "joining the room"),
                    None => CallError::Transport("the room refused the join".to_owned()),
                });
            }
            let is_self = p
                .payloads
                .iter()
                .filter(|e| e.is("x", ns::MUC_USER))
                .filter_map(|e| MucUser::try_from(e.clone()).ok())
                .any(|user| user.status.contains(&Status::SelfPresence));
            if is_self {
                return Ok(occupant);
            }
        }
    }
}

/// Why the room no longer has us, when `presence` is the room saying so:
/// our own occupant gone unavailable (kicked, banned, the room closed). The
/// session then ends, so that the next one joins again or learns that the
/// room refuses it; until then, nothing sent to the room is expected of it.
fn removed_from_room(presence: &Presence, occupant: Option<&FullJid>) -> Option<String> {
    let occupant = occupant?;
    let ours = presence
        .from
        .as_ref()
        .is_some_and(|from| from.as_str() == occupant.as_str());
    if presence.type_ != PresenceType::Unavailable || !ours {
        return None;
    }
    let statuses: Vec<String> = presence
        .payloads
        .iter()
        .filter(|e| e.is("x", ns::MUC_USER))
        .filter_map(|e| MucUser::try_from(e.clone()).ok())
        .flat_map(|user| user.status)
        .filter(|status| *status != Status::SelfPresence)
        .map(|status| format!("{status:?}"))
        .collect();
    Some(format!(
        "the room {} removed us ({})",
        occupant.to_bare(),
        if statuses.is_empty() {
            "no reason given".to_owned()
        } else {
            statuses.join(", ")
        }
    ))
}

/// The probe id a message body carries, if it is one of ours.
pub fn probe_id(message: &Message) -> Option<&str> {
    message
        .bodies
        .values()
        .find_map(|body| body.strip_prefix(BODY_PREFIX))
        .and_then(|rest| rest.split_whitespace().next())
}

/// The session's task: sends what callers queue, answers the server's
/// pings, routes answers, confirms deliveries, until the stream ends.
async fn run(
    mut stream: Stream,
    mut queue: mpsc::Receiver<Box<Stanza>>,
    routes: Arc<Routes>,
    occupant: Option<FullJid>,
    deliveries: Option<Arc<DeliveryBook>>,
) {
    let ended = loop {
        tokio::select! {
            stanza = queue.recv() => {
                let Some(stanza) = stanza else { break "the session was closed".to_owned() };
                if let Err(e) = send(&mut stream, *stanza).await {
                    break e.to_string();
                }
            }
            element = next(&mut stream) => {
                let element = match element {
                    Ok(element) => element,
                    Err(e) => break e.to_string(),
                };
                let XmppStreamElement::Stanza(stanza) = element else { continue };
                match stanza {
                    Stanza::Iq(Iq::Result { id, .. }) => routes.answer(&id, Ok(())),
                    Stanza::Iq(Iq::Error { id, error, .. }) => {
                        routes.answer(&id, Err(stanza_error(&error, "the server refused")))
                    }
                    Stanza::Iq(Iq::Get { from, id, .. } | Iq::Set { from, id, .. }) => {
                        // Every request gets an answer, or the server may drop us.
                        let answer = match from {
                            Some(from) => Iq::empty_result(from, id),
                            None => Iq::Result { from: None, to: None, id, payload: None },
                        };
                        if let Err(e) = send(&mut stream, answer.into()).await {
                            break e.to_string();
                        }
                    }
                    Stanza::Message(message) => route_message(&routes, &message, occupant.as_ref(), deliveries.as_deref()),
                    Stanza::Presence(presence) => {
                        if let Some(why) = removed_from_room(&presence, occupant.as_ref()) {
                            // What still waits for the room is answered as
                            // the room answers a non-occupant (XEP-0045
                            // 7.4): ours to fix, not the provider's failure.
                            routes.removed.store(true, Ordering::Relaxed);
                            for (_, reply) in routes.waiting.locked().drain() {
                                let _ = reply.send(Err(CallError::condition("not-acceptable".to_owned(), why.clone())));
                            }
                            break why;
                        }
                    }
                }
            }
        }
    };
    *routes.ended.locked() = Some(ended);
    // Whoever still waits learns that the session ended, and so does
    // whoever waits for the end (`Session::closed`).
    routes.waiting.locked().clear();
    drop(queue);
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        SinkExt::<&Stanza>::close(&mut stream),
    )
    .await;
}

fn route_message(
    routes: &Routes,
    message: &Message,
    occupant: Option<&FullJid>,
    deliveries: Option<&DeliveryBook>,
) {
    let id = message.id.as_ref().map(|i| i.0.as_str());
    if message.type_ == MessageType::Error {
        let error = message
            .payloads
            .iter()
            .find(|e| e.name() == "error")
            .and_then(|e| StanzaError::try_from(Element::clone(e)).ok());
        if let Some(id) = id {
            routes.answer(
                id,
                Err(match error {
                    Some(error) => stanza_error(&error, "the message was refused"),
                    None => CallError::Transport("the message was refused".to_owned()),
                }),
            );
        }
        return;
    }
    let seen_at = Instant::now();
    // Our own group message, reflected by the room to its sender.
    if message.type_ == MessageType::Groupchat
        && let (Some(from), Some(occupant), Some(id)) = (&message.from, occupant, id)
        && from.try_as_full().is_ok_and(|full| full == occupant)
    {
        routes.answer(id, Ok(()));
    }
    if let (Some(book), Some(probe_id)) = (deliveries, probe_id(message)) {
        book.confirm(probe_id, seen_at);
    }
}
