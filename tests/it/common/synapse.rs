//! A real Synapse homeserver for the Matrix tests: installed from PyPI into
//! a cached virtualenv by `scripts/test.sh`, started here on a free loopback
//! port with its own SQLite database, users registered with the shared
//! secret. Frozen with SIGSTOP, stopped and restarted as a test scripts it.

use std::path::{Path, PathBuf};

use super::ServerUnderTest;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

const SHARED_SECRET: &str = "improbe-test-registration";

/// The virtualenv holding `matrix-synapse`; `scripts/test.sh` creates it.
pub fn venv() -> PathBuf {
    std::env::var_os("IMPROBE_SYNAPSE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
            Path::new(&home).join(".cache/improbe-synapse-venv")
        })
}

/// How Synapse limits request rates.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum RateLimits {
    /// Synapse's defaults (`rc_login`, `rc_message`): what a stock server does.
    Default,
    /// What docs/providers.md tells an admin to set for the probe accounts.
    Relaxed,
}

pub struct Synapse {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
    http: reqwest::Client,
}

impl Synapse {
    /// Starts a homeserver; a missing Synapse fails the test ([`super::require`]).
    pub async fn start(limits: RateLimits) -> Synapse {
        let python = venv().join("bin/python");
        let installed = Command::new(&python)
            .args(["-c", "import synapse"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        super::require(
            installed,
            &format!("Synapse in the virtualenv {}", venv().display()),
        );
        let dir = tempfile::tempdir().unwrap();
        let port = super::free_port();
        write_config(dir.path(), port, limits);
        let mut synapse = Synapse {
            dir,
            port,
            child: None,
            http: reqwest::Client::new(),
        };
        synapse.launch().await;
        synapse
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the process on the same database and port.
    pub async fn launch(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("stdout.log")).unwrap();
        let child = Command::new(venv().join("bin/python"))
            .args(["-m", "synapse.app.homeserver", "-c"])
            .arg(self.dir.path().join("homeserver.yaml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let versions = format!("{}/_matrix/client/versions", self.url());
        let (http, child) = (&self.http, self.child.as_mut().unwrap());
        let exited = super::wait::until(Duration::from_secs(30), || {
            let answered = http.get(&versions).send();
            let exited = child.try_wait().unwrap();
            async move {
                if let Some(status) = exited {
                    return Ok(Some(status));
                }
                match answered.await {
                    Ok(r) if r.status().is_success() => Ok(None),
                    _ => Err("Synapse to answer".to_owned()),
                }
            }
        })
        .await;
        if let Some(status) = exited {
            panic!("Synapse exited with {status}: {}", self.log());
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default()
            + &std::fs::read_to_string(self.dir.path().join("homeserver.log")).unwrap_or_default()
    }

    /// Registers a user with the shared secret (Synapse's admin API).
    pub async fn register(&self, localpart: &str, password: &str) {
        let endpoint = format!("{}/_synapse/admin/v1/register", self.url());
        let nonce: Value = self
            .http
            .get(&endpoint)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let nonce = nonce["nonce"].as_str().unwrap().to_owned();
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(SHARED_SECRET.as_bytes()).unwrap();
        mac.update(format!("{nonce}\0{localpart}\0{password}\0notadmin").as_bytes());
        let digest: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let answer = self
            .http
            .post(&endpoint)
            .json(&json!({ "nonce": nonce, "username": localpart, "password": password, "admin": false, "mac": digest }))
            .send()
            .await
            .unwrap();
        assert!(
            answer.status().is_success(),
            "register {localpart}: {}",
            answer.text().await.unwrap()
        );
    }

    /// A client-server API call as a test user, for what the test checks
    /// or arranges beside improbe.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}/_matrix/client/v3{path}", self.url()));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.unwrap();
        let status = answer.status();
        let value: Value = answer.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {value}");
        value
    }

    pub async fn login(&self, localpart: &str, password: &str) -> String {
        let answer = self
            .call(
                reqwest::Method::POST,
                "/login",
                None,
                Some(json!({ "type": "m.login.password", "identifier": { "type": "m.id.user", "user": localpart }, "password": password })),
            )
            .await;
        answer["access_token"].as_str().unwrap().to_owned()
    }
}

impl Drop for Synapse {
    fn drop(&mut self) {
        if self.child.is_some() {
            // A frozen process must be woken to die cleanly.
            self.thaw();
        }
        self.stop();
    }
}

fn write_config(dir: &Path, port: u16, limits: RateLimits) {
    let d = dir.display();
    let relaxed = "{per_second: 1000, burst_count: 1000}";
    let rate_limits = match limits {
        RateLimits::Default => String::new(),
        RateLimits::Relaxed => format!(
            "rc_message: {relaxed}\nrc_login:\n  address: {relaxed}\n  account: {relaxed}\n  failed_attempts: {relaxed}\n"
        ),
    };
    // A fresh ed25519 seed: Synapse reads `ed25519 <version> <base64 seed>`.
    let seed: [u8; 32] =
        std::array::from_fn(|i| (port as usize * 31 + i * 7 + std::process::id() as usize) as u8);
    let key = base64::engine::general_purpose::STANDARD_NO_PAD.encode(seed);
    std::fs::write(dir.join("signing.key"), format!("ed25519 a_test {key}\n")).unwrap();
    std::fs::write(
        dir.join("log.yaml"),
        format!(
            "version: 1\nformatters:\n  precise:\n    format: '%(asctime)s %(name)s %(levelname)s %(message)s'\n\
             handlers:\n  file:\n    class: logging.FileHandler\n    filename: {d}/homeserver.log\n    formatter: precise\n\
             root:\n  level: WARNING\n  handlers: [file]\ndisable_existing_loggers: false\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("homeserver.yaml"),
        format!(
            "server_name: localhost\npid_file: {d}/homeserver.pid\n\
             listeners:\n  - port: {port}\n    bind_addresses: ['127.0.0.1']\n    type: http\n    tls: false\n    x_forwarded: false\n    resources:\n      - names: [client]\n        compress: false\n\
             database:\n  name: sqlite3\n  args:\n    database: {d}/homeserver.db\n\
             log_config: {d}/log.yaml\nmedia_store_path: {d}/media\nsigning_key_path: {d}/signing.key\n\
             registration_shared_secret: \"{SHARED_SECRET}\"\nreport_stats: false\ntrusted_key_servers: []\n\
             suppress_key_server_warning: true\nenable_metrics: false\nbcrypt_rounds: 4\n{rate_limits}"
        ),
    )
    .unwrap();
}

impl ServerUnderTest for Synapse {
    fn process(&mut self) -> &mut Option<Child> {
        &mut self.child
    }

    async fn launch(&mut self) {
        Synapse::launch(self).await;
    }
}
