//! The few client-server API calls improbe makes, over reqwest. Every call
//! answers with the JSON object or a [`CallError`] that says what happened
//! on the wire; [`super::codes`] decides what that means for the SLA.

use std::fmt;
use std::time::Duration;

use reqwest::Method;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::{Value, json};

use super::codes::{self, Call};
use super::settings::ApiBase;
use crate::probe::Fault;
use crate::probe::{ProbeOutcome, describe};

/// Why a call did not succeed.
#[derive(Debug, Clone)]
pub enum CallError {
    /// No HTTP answer: refused, reset, timed out, TLS failed.
    Transport(String),
    /// An answer that is not a Matrix one (a proxy's HTML page, bad JSON).
    NotMatrix { status: u16, detail: String },
    /// A Matrix error answer.
    Matrix {
        status: u16,
        errcode: Option<String>,
        error: String,
        retry_after: Option<Duration>,
    },
}

impl CallError {
    pub fn errcode(&self) -> Option<&str> {
        match self {
            CallError::Matrix { errcode, .. } => errcode.as_deref(),
            _ => None,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CallError::Matrix { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The HTTP status, if there was an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            CallError::Matrix { status, .. } | CallError::NotMatrix { status, .. } => Some(*status),
            CallError::Transport(_) => None,
        }
    }

    /// What the answer means for the SLA during `call`.
    pub fn class(&self, call: Call) -> Fault {
        match self {
            CallError::Transport(_) | CallError::NotMatrix { .. } => Fault::Provider,
            CallError::Matrix {
                status, errcode, ..
            } => codes::classify(call, *status, errcode.as_deref()),
        }
    }

    /// The attempt's outcome for this error, during `call`.
    pub fn outcome(&self, call: Call, doing: &str) -> ProbeOutcome {
        let text = format!("{doing}: {self}");
        let status = self.status().map(i32::from);
        let errcode = self.errcode().map(str::to_owned);
        self.class(call).outcome(status, errcode, text)
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Transport(text) => f.write_str(text),
            CallError::NotMatrix { status, detail } => {
                write!(f, "HTTP {status}, not a Matrix answer: {detail}")
            }
            CallError::Matrix {
                status,
                errcode,
                error,
                ..
            } => write!(
                f,
                "HTTP {status} {}: {error}",
                errcode.as_deref().unwrap_or("(no errcode)")
            ),
        }
    }
}

/// A client-server API endpoint with one HTTP client.
#[derive(Clone)]
pub struct MatrixClient {
    http: reqwest::Client,
    base: ApiBase,
}

/// The most of a non-Matrix body kept as evidence.
const BODY_EXCERPT: usize = 200;

impl MatrixClient {
    pub fn new(http: reqwest::Client, base: ApiBase) -> Self {
        Self { http, base }
    }

    /// The base with `path` (and the query after its `?`) appended; only
    /// the appended part is parsed.
    fn url(&self, path: &str) -> Result<reqwest::Url, CallError> {
        let mut url = self.base.clone().map_err(CallError::Transport)?;
        let (path, query) = match path.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path, None),
        };
        let full = [url.path(), path].concat();
        url.set_path(&full);
        url.set_query(query);
        Ok(url)
    }

    /// One call. `path` is below `/_matrix/client/v3` and already escaped.
    /// A successful answer is read as `T` (a JSON tree with [`Value`], or
    /// only the fields a caller reads); one that is not a JSON object of
    /// that shape is not a Matrix answer.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        timeout: Option<Duration>,
    ) -> Result<T, CallError> {
        let mut request = self.http.request(method, self.url(path)?);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        let (status, retry_header, bytes) = exchange(request).await?;
        if (200..300).contains(&status)
            && bytes.trim_ascii_start().starts_with(b"{")
            && let Ok(answer) = serde_json::from_slice(&bytes)
        {
            return Ok(answer);
        }
        Err(answer_error(status, retry_header.as_deref(), &bytes))
    }

    /// `m.login.password` for `user` on a fixed device: the access token.
    pub async fn login(
        &self,
        user: &str,
        password: &str,
        device_id: &str,
    ) -> Result<String, CallError> {
        let body = json!({
            "type": "m.login.password",
            "identifier": { "type": "m.id.user", "user": super::settings::localpart(user) },
            "password": password,
            "device_id": device_id,
            "initial_device_display_name": "improbe",
        });
        let answer = self
            .call(Method::POST, "/login", None, Some(&body), None)
            .await?;
        text_field(&answer, "access_token", "login")
    }

    /// The user the token belongs to.
    pub async fn whoami(&self, token: &str) -> Result<String, CallError> {
        let answer = self
            .call(Method::GET, "/account/whoami", Some(token), None, None)
            .await?;
        text_field(&answer, "user_id", "whoami")
    }

    /// Ends the token's session and deletes its device.
    pub async fn logout(&self, token: &str) -> Result<(), CallError> {
        self.call::<IgnoredAny>(Method::POST, "/logout", Some(token), Some(&json!({})), None)
            .await
            .map(drop)
    }

    /// Sends `content` as an `m.room.message` under transaction `txn_id`.
    pub async fn send_message(
        &self,
        token: &str,
        room: &str,
        txn_id: &str,
        content: &Value,
    ) -> Result<String, CallError> {
        let path = format!(
            "/rooms/{}/send/m.room.message/{}",
            escape(room),
            escape(txn_id)
        );
        let answer = self
            .call(Method::PUT, &path, Some(token), Some(content), None)
            .await?;
        text_field(&answer, "event_id", "send")
    }

    /// Stores `filter` on the server for `user_id`: its ID, which a `/sync`
    /// names instead of carrying the filter in its URL.
    pub async fn upload_filter(
        &self,
        token: &str,
        user_id: &str,
        filter: &Value,
    ) -> Result<String, CallError> {
        let path = format!("/user/{}/filter", escape(user_id));
        let answer = self
            .call(Method::POST, &path, Some(token), Some(filter), None)
            .await?;
        text_field(&answer, "filter_id", "filter upload")
    }
}

/// A string field a successful answer must carry; without it the answer is
/// not a Matrix one.
fn text_field(answer: &Value, name: &str, call: &str) -> Result<String, CallError> {
    answer[name]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| CallError::NotMatrix {
            status: 200,
            detail: format!("{call} answer without {name}"),
        })
}

/// The HTTP part of [`MatrixClient::call`], the same whatever the answer is
/// read as: the status, the `Retry-After` header and the body.
async fn exchange(
    request: reqwest::RequestBuilder,
) -> Result<(u16, Option<String>, bytes::Bytes), CallError> {
    let response = request
        .send()
        .await
        .map_err(|e| CallError::Transport(describe(&e.without_url())))?;
    let status = response.status().as_u16();
    let retry_header = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = response
        .bytes()
        .await
        .map_err(|e| CallError::Transport(describe(&e.without_url())))?;
    Ok((status, retry_header, bytes))
}

/// What an answer that [`MatrixClient::call`] cannot use says: a Matrix
/// error, or not a Matrix answer at all.
fn answer_error(status: u16, retry_header: Option<&str>, bytes: &[u8]) -> CallError {
    let parsed: Option<Value> = serde_json::from_slice(bytes).ok().filter(Value::is_object);
    let Some(value) = parsed else {
        let text = String::from_utf8_lossy(bytes);
        let excerpt: String = text.chars().take(BODY_EXCERPT).collect();
        return CallError::NotMatrix {
            status,
            detail: if excerpt.trim().is_empty() {
                "empty body".to_owned()
            } else {
                excerpt
            },
        };
    };
    let errcode = value["errcode"].as_str().map(str::to_owned);
    if errcode.is_none() && status < 400 {
        return CallError::NotMatrix {
            status,
            detail: if (200..300).contains(&status) {
                "an answer of an unexpected shape".to_owned()
            } else {
                "unexpected status".to_owned()
            },
        };
    }
    CallError::Matrix {
        status,
        errcode,
        error: value["error"].as_str().unwrap_or("").to_owned(),
        retry_after: codes::retry_after(value["retry_after_ms"].as_u64(), retry_header),
    }
}

/// Percent-encodes a path segment (room IDs contain `!` and `:`).
pub fn escape(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len() * 3);
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(HEX[usize::from(byte >> 4)] as char);
            out.push(HEX[usize::from(byte & 0xF)] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::matrix::settings::api_base;

    fn client(homeserver: &str) -> MatrixClient {
        MatrixClient::new(reqwest::Client::new(), api_base(homeserver))
    }

    /// Appending to the parsed base gives the URL that parsing the whole
    /// text gave before, query included, under a path prefix too.
    #[test]
    fn a_call_url_is_the_base_with_the_path_and_query_appended() {
        for homeserver in [
            "http://127.0.0.1:8008",
            "https://matrix.example.org/prefix/",
        ] {
            for path in [
                "/login",
                &format!(
                    "/rooms/{}/send/m.room.message/{}",
                    escape("!room:example.org"),
                    escape("t 1")
                ),
                "/sync?filter=0&timeout=30000&since=s72_5%2B1",
            ] {
                let whole = format!(
                    "{}/_matrix/client/v3{path}",
                    homeserver.trim_end_matches('/')
                );
                let expected = reqwest::Url::parse(&whole).unwrap();
                assert_eq!(client(homeserver).url(path).unwrap(), expected);
            }
        }
    }

    #[test]
    fn a_homeserver_that_is_not_a_url_fails_each_call_as_a_transport_error() {
        let error = client("not a url").url("/login").unwrap_err();
        assert!(
            matches!(&error, CallError::Transport(text) if text.starts_with("homeserver is not a URL")),
            "{error:?}"
        );
    }
}
