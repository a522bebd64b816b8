//! How the HTTP surface takes connections: bounded so that no client can
//! take the descriptors probing needs (an attempt that cannot open a socket
//! is our fault, not the provider's), timed so that a slow client cannot
//! hold a slot for good, and optionally behind TLS and basic auth
//! (docs/operations.md "Protecting the HTTP surface").

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

use crate::config::{TlsFiles, WebSettings};

/// A request's headers must arrive within this of the connection opening
/// (or of the previous response): a client sending half a request line is
/// disconnected, not waited for.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// A request is answered within this, or gets 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A TLS handshake must finish within this.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// A kept-alive connection is closed after this, so no slot is held for good.
pub const MAX_CONNECTION_AGE: Duration = Duration::from_secs(120);
/// The most connections served at once, whatever the descriptor limit.
pub const MAX_CONNECTIONS: usize = 64;
/// Paths answered without authentication: orchestrators' probes.
const OPEN_PATHS: [&str; 2] = ["/healthz", "/readyz"];
/// Verified credentials remembered, so bcrypt runs once per client, not per scrape.
const VERIFIED_CACHE: usize = 64;

/// Connections served at once for a process allowed `descriptors` open
/// files: an eighth of them, at most [`MAX_CONNECTIONS`], so seven eighths
/// stay for probing, the database and the spool.
pub fn connection_cap(descriptors: Option<u64>) -> usize {
    descriptors.map_or(MAX_CONNECTIONS, |n| {
        usize::try_from(n / 8)
            .unwrap_or(MAX_CONNECTIONS)
            .clamp(1, MAX_CONNECTIONS)
    })
}

/// This process's soft limit on open files, from `/proc/self/limits`.
pub fn descriptor_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// What guards the surface: TLS and the users allowed in.
#[derive(Clone)]
pub struct Gate {
    tls: Option<TlsAcceptor>,
    access: Arc<Access>,
}

struct Access {
    /// User to bcrypt hash; empty: no authentication.
    users: BTreeMap<String, String>,
    /// SHA-256 of credentials bcrypt accepted.
    verified: Mutex<HashSet<[u8; 32]>>,
}

impl Gate {
    /// Reads the TLS files now, so a bad one stops the start with its key.
    pub fn new(web: &WebSettings) -> anyhow::Result<Gate> {
        let tls = web.tls.as_ref().map(tls_acceptor).transpose()?;
        Ok(Gate {
            tls,
            access: Arc::new(Access {
                users: web.basic_auth_users.clone(),
                verified: Mutex::new(HashSet::new()),
            }),
        })
    }

    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// The router with authentication and the request timeout applied.
    fn guard(&self, app: Router) -> Router {
        app.layer(middleware::from_fn_with_state(
            self.access.clone(),
            authenticate,
        ))
        .layer(middleware::from_fn(answer_in_time))
    }
}

fn tls_acceptor(files: &TlsFiles) -> anyhow::Result<TlsAcceptor> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(&files.cert_file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| pem_error("tls_cert_file", &files.cert_file, e))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "[prober.web] tls_cert_file {}: no certificate in it",
        files.cert_file.display()
    );
    let key = PrivateKeyDer::from_pem_file(&files.key_file)
        .map_err(|e| pem_error("tls_key_file", &files.key_file, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("[prober.web] tls_cert_file and tls_key_file do not make a certificate")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn pem_error(key: &str, path: &Path, error: rustls_pki_types::pem::Error) -> anyhow::Error {
    anyhow::anyhow!("[prober.web] {key} {}: {error}", path.display())
}

/// Serves `app` on `listener` until `stop` turns true, then lets the
/// requests in progress finish (within [`REQUEST_TIMEOUT`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    gate: Gate,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let app = gate.guard(app);
    let cap = connection_cap(descriptor_limit());
    tracing::debug!(connections = cap, "HTTP surface connection cap");
    // While every slot is taken, no connection is accepted: waiting ones
    // stay in the kernel's backlog and cost this process no descriptor.
    let slots = Arc::new(Semaphore::new(cap));
    let mut connections = JoinSet::new();
    loop {
        let slot = tokio::select! {
            _ = stopped(&mut stop) => break,
            slot = slots.clone().acquire_owned() => slot.expect("never closed"),
        };
        let (stream, _) = tokio::select! {
            _ = stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors or similar: back off, never spin.
                    tracing::warn!("HTTP surface cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        while connections.try_join_next().is_some() {}
        let (app, tls, stop) = (app.clone(), gate.tls.clone(), stop.clone());
        connections.spawn(async move {
            let _slot = slot;
            match tls {
                None => serve_connection(stream, app, stop).await,
                Some(acceptor) => {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(stream)) => serve_connection(stream, app, stop).await,
                        Ok(Err(e)) => tracing::debug!("TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(REQUEST_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    Ok(())
}

/// One HTTP/1.1 connection, closed after [`MAX_CONNECTION_AGE`] or at a stop
/// once its request in progress is answered.
async fn serve_connection<S>(stream: S, app: Router, mut stop: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(app);
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        _ = tokio::time::sleep(MAX_CONNECTION_AGE) => {}
        _ = stopped(&mut stop) => {}
    }
    connection.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(REQUEST_TIMEOUT, connection).await;
}

async fn answer_in_time(request: Request, next: Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not answered within {}s\n", REQUEST_TIMEOUT.as_secs()),
        )
            .into_response(),
    }
}

async fn authenticate(State(access): State<Arc<Access>>, request: Request, next: Next) -> Response {
    if access.users.is_empty() || OPEN_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let offered = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(basic_credentials);
    match offered {
        Some((user, password)) => {
            if access.admits(user, password).await {
                next.run(request).await
            } else {
                unauthorized()
            }
        }
        None => unauthorized(),
    }
}

fn unauthorized() -> Response {
    let mut response = Response::new(Body::from("authentication required\n"));
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"improbe\", charset=\"UTF-8\""),
    );
    response
}

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// `(user, password)` of an `Authorization: Basic ...` header.
fn basic_credentials(value: &HeaderValue) -> Option<(String, String)> {
    let encoded = value.to_str().ok()?.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

impl Access {
    async fn admits(&self, user: String, password: String) -> bool {
        let Some(hash) = self.users.get(&user).cloned() else {
            return false;
        };
        let fingerprint: [u8; 32] = Sha256::new()
            .chain_update(user.as_bytes())
            .chain_update([0])
            .chain_update(password.as_bytes())
            .chain_update([0])
            .chain_update(hash.as_bytes())
            .finalize()
            .into();
        if self.remembered().contains(&fingerprint) {
            return true;
        }
        // bcrypt takes tens of milliseconds by design: off the runtime's threads.
        let verified = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(false);
        if verified {
            let mut remembered = self.remembered();
            if remembered.len() >= VERIFIED_CACHE {
                remembered.clear();
            }
            remembered.insert(fingerprint);
        }
        verified
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, HashSet<[u8; 32]>> {
        self.verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_leaves_seven_eighths_of_the_descriptors() {
        assert_eq!(connection_cap(Some(1024)), 64);
        assert_eq!(connection_cap(Some(64)), 8);
        assert_eq!(connection_cap(Some(4)), 1);
        assert_eq!(connection_cap(Some(1 << 20)), MAX_CONNECTIONS);
        assert_eq!(connection_cap(None), MAX_CONNECTIONS);
        assert!(descriptor_limit().is_some_and(|n| n > 0));
    }

    #[test]
    fn basic_credentials_are_read_from_the_header() {
        let value = HeaderValue::from_static("Basic dXNlcjpwYTpzcw==");
        assert_eq!(
            basic_credentials(&value),
            Some(("user".to_owned(), "pa:ss".to_owned()))
        );
        assert_eq!(
            basic_credentials(&HeaderValue::from_static("Bearer x")),
            None
        );
    }
}
