//! `[targets.http]`: a provider described in the config (docs/providers.md
//! "Adding a provider without code").

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::classify::{Rule, json_pointer};
use super::template::{JsonTemplate, Placeholder, Template, is_name};
use crate::secret::Secret;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Where the API is, e.g. `https://api-APP_ID.sendbird.com/v3`; paths
    /// are appended to it.
    pub base_url: TemplateText,
    /// Values the templates name as `{{var.NAME}}`.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// Values the templates name as `{{secret.NAME}}`, from `env` or `file`
    /// as every secret: never logged, never stored.
    #[serde(default)]
    pub secrets: BTreeMap<String, Secret>,
    /// Headers of every request.
    #[serde(default)]
    pub headers: BTreeMap<String, TemplateText>,
    /// Query parameters of every request.
    #[serde(default)]
    pub query: BTreeMap<String, TemplateText>,
    pub auth: Option<Auth>,
    /// JSON pointer to the provider's error code in an answer, recorded as
    /// the attempt's `error_code`.
    pub error_code: Option<String>,
    /// JSON pointer to the provider's error text, recorded as its `error`.
    pub error_message: Option<String>,
    pub login: Operation,
    pub send_direct: Operation,
    pub send_group: Operation,
    /// The classification table: the first matching rule wins, then the
    /// documented defaults.
    #[serde(default)]
    pub classify: Vec<Rule>,
}

/// A template given as a string in the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateText(pub Template);

impl<'de> Deserialize<'de> for TemplateText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Template::parse(&text)
            .map(TemplateText)
            .map_err(serde::de::Error::custom)
    }
}

/// A duration given as text (`"10m"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationText(pub Duration);

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        crate::text::parse_duration(&text)
            .map(DurationText)
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "{text:?} is not a duration such as \"30s\", \"10m\" or \"1h\""
                ))
            })
    }
}

/// How requests authenticate, besides `headers`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "scheme", rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    /// `header: value`, e.g. `Api-Token`.
    Header { header: String, value: TemplateText },
    /// `Authorization: Bearer <token>`.
    Bearer { token: TemplateText },
    /// `Authorization: Basic <base64 of user:password>`.
    Basic {
        username: TemplateText,
        password: TemplateText,
    },
    /// A JSON Web Token signed with HMAC-SHA256 by `key`, with `claims`,
    /// `iat` and, with `lifetime`, `exp`; re-signed before it expires.
    /// Sent as `header: <prefix><token>` (default `Authorization: Bearer `).
    JwtHs256 {
        key: TemplateText,
        #[serde(default)]
        claims: BTreeMap<String, toml::Value>,
        lifetime: Option<DurationText>,
        #[serde(default = "authorization")]
        header: String,
        #[serde(default = "bearer_prefix")]
        prefix: String,
    },
}

fn authorization() -> String {
    "Authorization".into()
}

fn bearer_prefix() -> String {
    "Bearer ".into()
}

/// One request: the login, a send, or a send's read-back.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: reqwest::Method,
    pub path: Template,
    pub query: Vec<(String, Template)>,
    pub headers: Vec<(String, Template)>,
    pub body: Option<JsonTemplate>,
}

/// An operation: its request, what its answer gives the later ones, and
/// for a send, how to read it back.
#[derive(Debug, Clone)]
pub struct Operation {
    pub request: Request,
    /// Values taken from a successful answer, by name: JSON pointers.
    pub capture: BTreeMap<String, String>,
    /// JSON pointer to when the captures expire (Unix seconds, or
    /// milliseconds for values past the year 5138 in seconds).
    pub capture_expires_at: Option<String>,
    /// JSON pointer to how long the captures last, in seconds from the
    /// answer.
    pub capture_expires_in: Option<String>,
    /// How long captures last when the answer does not say.
    pub capture_lifetime: Option<Duration>,
    pub read_back: Option<ReadBack>,
    /// Whether its request or read-back names a `{{capture.NAME}}`: known
    /// when the config is read, so no attempt looks for it.
    pub uses_capture: bool,
}

/// Delivery confirmation: a request that lists what the recipient sees.
#[derive(Debug, Clone)]
pub struct ReadBack {
    pub request: Request,
    /// JSON pointer to the list of messages in the answer.
    pub list: String,
    /// JSON pointer, within one message, to the text holding the probe id.
    pub probe_id_in: String,
}

/// The request fields an operation and a read-back both have, as read.
struct RawRequest {
    method: String,
    path: TemplateText,
    query: BTreeMap<String, TemplateText>,
    headers: BTreeMap<String, TemplateText>,
    body: Option<toml::Value>,
}

fn post() -> String {
    "POST".into()
}

fn get() -> String {
    "GET".into()
}

impl RawRequest {
    fn into_request(self) -> Result<Request, String> {
        let method = reqwest::Method::from_bytes(self.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("method = {:?} is not an HTTP method", self.method))?;
        Ok(Request {
            method,
            path: self.path.0,
            query: self.query.into_iter().map(|(k, v)| (k, v.0)).collect(),
            headers: self.headers.into_iter().map(|(k, v)| (k, v.0)).collect(),
            body: self
                .body
                .as_ref()
                .map(JsonTemplate::from_toml)
                .transpose()?,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperation {
    #[serde(default = "post")]
    method: String,
    path: TemplateText,
    #[serde(default)]
    query: BTreeMap<String, TemplateText>,
    #[serde(default)]
    headers: BTreeMap<String, TemplateText>,
    body: Option<toml::Value>,
    #[serde(default)]
    capture: BTreeMap<String, String>,
    capture_expires_at: Option<String>,
    capture_expires_in: Option<String>,
    capture_lifetime: Option<DurationText>,
    read_back: Option<RawReadBack>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReadBack {
    #[serde(default = "get")]
    method: String,
    path: TemplateText,
    #[serde(default)]
    query: BTreeMap<String, TemplateText>,
    #[serde(default)]
    headers: BTreeMap<String, TemplateText>,
    body: Option<toml::Value>,
    list: String,
    probe_id_in: String,
}

impl<'de> Deserialize<'de> for Operation {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawOperation::deserialize(d)?;
        let build = || -> Result<Operation, String> {
            let request = RawRequest {
                method: raw.method,
                path: raw.path,
                query: raw.query,
                headers: raw.headers,
                body: raw.body,
            }
            .into_request()?;
            let mut capture = BTreeMap::new();
            for (name, p) in raw.capture {
                if !is_name(&name) {
                    return Err(format!(
                        "capture {name:?}: a name is letters, digits, _ and -"
                    ));
                }
                capture.insert(name.clone(), json_pointer(&format!("capture.{name}"), &p)?);
            }
            let read_back = raw
                .read_back
                .map(|r| -> Result<ReadBack, String> {
                    Ok(ReadBack {
                        request: RawRequest {
                            method: r.method,
                            path: r.path,
                            query: r.query,
                            headers: r.headers,
                            body: r.body,
                        }
                        .into_request()?,
                        list: json_pointer("read_back.list", &r.list)?,
                        probe_id_in: json_pointer("read_back.probe_id_in", &r.probe_id_in)?,
                    })
                })
                .transpose()?;
            let uses_capture = request
                .placeholders()
                .into_iter()
                .chain(read_back.iter().flat_map(|r| r.request.placeholders()))
                .any(|p| matches!(p, Placeholder::Capture(_)));
            Ok(Operation {
                request,
                capture,
                capture_expires_at: raw
                    .capture_expires_at
                    .map(|p| json_pointer("capture_expires_at", &p))
                    .transpose()?,
                capture_expires_in: raw
                    .capture_expires_in
                    .map(|p| json_pointer("capture_expires_in", &p))
                    .transpose()?,
                capture_lifetime: raw.capture_lifetime.map(|d| d.0),
                read_back,
                uses_capture,
            })
        };
        build().map_err(serde::de::Error::custom)
    }
}

impl Request {
    pub fn placeholders(&self) -> Vec<&Placeholder> {
        let mut all: Vec<&Placeholder> = self.path.placeholders().collect();
        for (_, t) in self.query.iter().chain(&self.headers) {
            all.extend(t.placeholders());
        }
        if let Some(body) = &self.body {
            all.extend(body.placeholders());
        }
        all
    }
}

impl Auth {
    pub fn placeholders(&self) -> Vec<&Placeholder> {
        match self {
            Auth::Header { value, .. } => value.0.placeholders().collect(),
            Auth::Bearer { token } => token.0.placeholders().collect(),
            Auth::Basic { username, password } => username
                .0
                .placeholders()
                .chain(password.0.placeholders())
                .collect(),
            Auth::JwtHs256 { key, .. } => key.0.placeholders().collect(),
        }
    }
}

impl HttpSettings {
    pub fn operations(&self) -> [(&'static str, &Operation); 3] {
        [
            ("login", &self.login),
            ("send_direct", &self.send_direct),
            ("send_group", &self.send_group),
        ]
    }

    /// The captures the login gives.
    fn captured(&self) -> impl Iterator<Item = &String> {
        self.login.capture.keys()
    }

    /// What is wrong with the section, as (field, message).
    pub(super) fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        let base = self.base_url.0.render(&super::template::Values {
            probe_id: "",
            started: chrono::DateTime::UNIX_EPOCH,
            random_u32: 0,
            uuid: "",
            variables: &self.variables,
            secrets: &BTreeMap::new(),
            captures: &BTreeMap::new(),
        });
        if !base.as_deref().is_ok_and(|b| {
            (b.starts_with("https://") || b.starts_with("http://"))
                && reqwest::Url::parse(b).is_ok()
        }) {
            problems.push((
                "base_url",
                "must be an http:// or https:// URL, e.g. https://api.example.com/v1".into(),
            ));
        }
        let unknown = |placeholders: Vec<&Placeholder>, login: bool| -> Vec<String> {
            let mut found = Vec::new();
            for p in placeholders {
                let missing = match p {
                    Placeholder::Var(n) if !self.variables.contains_key(n) => Some(format!(
                        "{{{{var.{n}}}}} names no entry of [targets.http.variables]"
                    )),
                    Placeholder::Secret(n) if !self.secrets.contains_key(n) => Some(format!(
                        "{{{{secret.{n}}}}} names no entry of [targets.http.secrets]"
                    )),
                    Placeholder::Capture(n) if login => Some(format!(
                        "{{{{capture.{n}}}}}: the login makes the captures, it cannot use one"
                    )),
                    Placeholder::Capture(n) if !self.captured().any(|c| c == n) => Some(format!(
                        "{{{{capture.{n}}}}} names no capture of [targets.http.login]"
                    )),
                    _ => None,
                };
                found.extend(missing);
            }
            found
        };
        let check = |problems: &mut Vec<(&'static str, String)>,
                     field: &'static str,
                     placeholders: Vec<&Placeholder>,
                     login: bool| {
            problems.extend(unknown(placeholders, login).into_iter().map(|m| (field, m)));
        };
        let shared: Vec<&Placeholder> = self
            .headers
            .values()
            .chain(self.query.values())
            .flat_map(|t| t.0.placeholders())
            .collect();
        check(&mut problems, "headers", shared.clone(), false);
        if let Some(auth) = &self.auth {
            check(&mut problems, "auth", auth.placeholders(), false);
        }
        for (field, op) in self.operations() {
            check(
                &mut problems,
                field,
                op.request.placeholders(),
                field == "login",
            );
            if let Some(read_back) = &op.read_back {
                check(
                    &mut problems,
                    field,
                    read_back.request.placeholders(),
                    false,
                );
                if field == "login" {
                    problems.push((field, "read_back is for the sends".into()));
                }
                let carries_id = op
                    .request
                    .placeholders()
                    .into_iter()
                    .any(|p| *p == Placeholder::ProbeId);
                if !carries_id {
                    problems.push((
                        field,
                        "read_back looks for the send's {{probe_id}}: put it in the message".into(),
                    ));
                }
            }
            if field != "login" && !op.capture.is_empty() {
                problems.push((field, "captures are made by the login only".into()));
            }
        }
        // The login, which makes the captures, runs without them.
        let auth = self.auth.iter().flat_map(Auth::placeholders);
        let login_needs_capture = shared
            .into_iter()
            .chain(auth)
            .any(|p| matches!(p, Placeholder::Capture(_)));
        if login_needs_capture {
            problems.push((
                "headers",
                "shared headers, query and auth go with the login too, which cannot use a capture: \
                 put {{capture.NAME}} in the sends' own headers"
                    .into(),
            ));
        }
        for name in self.variables.keys().chain(self.secrets.keys()) {
            if !is_name(name) {
                problems.push((
                    "variables",
                    format!("{name:?}: a name is letters, digits, _ and -"),
                ));
            }
        }
        for (field, p) in [
            ("error_code", &self.error_code),
            ("error_message", &self.error_message),
        ] {
            if let Some(p) = p
                && let Err(e) = json_pointer(field, p)
            {
                problems.push((field, e));
            }
        }
        problems
    }
}
