//! The way to the server, as a client takes it: TCP, then STARTTLS (or TLS
//! from the first byte), with the certificate checked against the public
//! roots and the target's `ca_file`. tokio-xmpp drives the XML stream, SASL
//! and binding; this connector is ours so that `ca_file` and `tls = "none"`
//! apply per target.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::sync::Locked;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, BufStream};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_xmpp::connect::ServerConnector;
use tokio_xmpp::error::ProtocolError;
use tokio_xmpp::jid::Jid;
use tokio_xmpp::parsers::starttls;
use tokio_xmpp::xmlstream::{
    PendingFeaturesRecv, ReadError, StreamHeader, Timeouts, XmppStream, XmppStreamElement,
    initiate_stream,
};

use super::settings::{XmppSettings, XmppTls};

/// The stream's read and write buffers. Every open session holds both for
/// as long as it lives (two per target), and what passes through them is
/// small: a probe's stanza is well under 1 KiB, and a longer one is read or
/// written in pieces. tokio's default, 8 KiB each, made them the largest
/// part of a session's memory (docs/performance.md, XMPP).
const STREAM_BUFFER: usize = 2048;

fn buffered<S: AsyncRead + AsyncWrite>(io: S) -> BufStream<S> {
    BufStream::with_capacity(STREAM_BUFFER, STREAM_BUFFER, io)
}

/// Any byte stream the XML stream runs over: TCP or TLS over TCP.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

#[derive(Clone)]
pub struct Connector {
    host: String,
    port: u16,
    tls: XmppTls,
    /// The name the certificate must carry: the JID's domain.
    domain: String,
    tls_config: Arc<ClientConfig>,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Connector({}:{}, {:?})", self.host, self.port, self.tls)
    }
}

impl Connector {
    pub fn new(settings: &XmppSettings) -> anyhow::Result<Connector> {
        let (host, port) = settings
            .address()
            .map_err(|e| anyhow::anyhow!("server: {e}"))?;
        let tls_config = tls_config(settings.ca_file.as_deref())?;
        Ok(Connector {
            host,
            port,
            tls: settings.tls,
            domain: settings.domain().to_owned(),
            tls_config,
        })
    }

    async fn handshake<S: Io + 'static>(&self, stream: S) -> io::Result<Box<dyn Io>> {
        let name = ServerName::try_from(self.domain.clone())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let tls = TlsConnector::from(self.tls_config.clone())
            .connect(name, stream)
            .await?;
        Ok(Box::new(tls))
    }

    /// Whether the stream runs inside TLS.
    pub fn encrypted(&self) -> bool {
        self.tls != XmppTls::None
    }

    fn header(&self) -> StreamHeader<'_> {
        StreamHeader {
            to: Some(Cow::Borrowed(self.domain.as_str())),
            from: None,
            id: None,
        }
    }
}

/// The TLS client configuration for a `ca_file` (or none), built once and
/// shared by every target naming it: the public roots parsed once instead
/// of once per target, and one session cache, so that a login's TLS
/// handshake resumes the session of an earlier one where the server offers
/// it, as real clients do (docs/performance.md).
fn tls_config(ca_file: Option<&Path>) -> anyhow::Result<Arc<ClientConfig>> {
    static BUILT: Mutex<BTreeMap<Option<PathBuf>, Arc<ClientConfig>>> = Mutex::new(BTreeMap::new());
    let key = ca_file.map(Path::to_path_buf);
    if let Some(config) = BUILT.locked().get(&key) {
        return Ok(config.clone());
    }
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let certificates = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| anyhow::anyhow!("ca_file {}: {e}", path.display()))?;
        if certificates.is_empty() {
            anyhow::bail!("ca_file {} holds no PEM certificate", path.display());
        }
        for certificate in certificates {
            roots
                .add(certificate)
                .map_err(|e| anyhow::anyhow!("ca_file {}: {e}", path.display()))?;
        }
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let mut built = BUILT.locked();
    Ok(built.entry(key).or_insert(config).clone())
}

impl ServerConnector for Connector {
    type Stream = BufStream<Box<dyn Io>>;

    async fn connect(
        &self,
        _jid: &Jid,
        ns: &'static str,
        timeouts: Timeouts,
    ) -> Result<
        (
            PendingFeaturesRecv<Self::Stream>,
            sasl::common::ChannelBinding,
        ),
        tokio_xmpp::Error,
    > {
        let tcp = TcpStream::connect((self.host.as_str(), self.port)).await?;
        tcp.set_nodelay(true)?;
        let io: Box<dyn Io> = match self.tls {
            XmppTls::None => Box::new(tcp),
            XmppTls::Direct => self.handshake(tcp).await?,
            XmppTls::Starttls => {
                let plain = initiate_stream(buffered(tcp), ns, self.header(), timeouts).await?;
                let (features, mut stream): (_, XmppStream<BufStream<TcpStream>>) =
                    plain.recv_features().await?;
                if !features.can_starttls() {
                    return Err(ProtocolError::NoTls.into());
                }
                stream
                    .send(&XmppStreamElement::Starttls(starttls::Nonza::Request(
                        starttls::Request,
                    )))
                    .await?;
                loop {
                    match stream
                        .next()
                        .await
                        .map(|v| v.and_then(|v| v.into_read_error()))
                    {
                        Some(Ok(XmppStreamElement::Starttls(starttls::Nonza::Proceed(_)))) => break,
                        Some(Ok(_)) | Some(Err(ReadError::SoftTimeout)) => {}
                        Some(Err(ReadError::HardError(e))) => return Err(e.into()),
                        Some(Err(ReadError::ParseError(e))) => {
                            return Err(io::Error::new(io::ErrorKind::InvalidData, e).into());
                        }
                        None | Some(Err(ReadError::StreamFooterReceived)) => {
                            return Err(tokio_xmpp::Error::Disconnected);
                        }
                    }
                }
                self.handshake(stream.into_inner().into_inner()).await?
            }
        };
        let stream = initiate_stream(buffered(io), ns, self.header(), timeouts).await?;
        Ok((stream, sasl::common::ChannelBinding::None))
    }
}
