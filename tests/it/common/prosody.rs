//! A real Prosody server for the XMPP tests: Debian's package (installed by
//! `scripts/test.sh`), started here with its own config in a temporary
//! directory, c2s on a free loopback port with STARTTLS required, a MUC
//! component, a certificate from the test's CA, accounts registered with
//! `prosodyctl`. Frozen with SIGSTOP, stopped and restarted as a test
//! scripts it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::ServerUnderTest;
use super::tls::TestCa;

pub const DOMAIN: &str = "localhost";
pub const ROOM: &str = "probe@conference.localhost";

pub struct Prosody {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
    pub ca: TestCa,
}

impl Prosody {
    /// Starts a server; a missing Prosody fails the test ([`super::require`]).
    pub async fn start() -> Prosody {
        super::require(
            Command::new("prosody").arg("--help").output().is_ok(),
            "Prosody (Debian's prosody)",
        );
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let ca = TestCa::generate();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        std::fs::create_dir_all(dir.path().join("certs")).unwrap();
        let d = dir.path().display();
        std::fs::write(
            dir.path().join("prosody.cfg.lua"),
            format!(
                r#"run_as_root = true
pidfile = "{d}/prosody.pid"
data_path = "{d}/data"
certificates = "{d}/certs"
log = {{ warn = "{d}/prosody.log" }}
modules_enabled = {{ "roster"; "saslauth"; "tls"; "disco"; "ping"; "smacks" }}
modules_disabled = {{ "s2s" }}
c2s_ports = {{ {port} }}
c2s_interfaces = {{ "127.0.0.1" }}
s2s_ports = {{ }}
c2s_require_encryption = true
authentication = "internal_hashed"
VirtualHost "{DOMAIN}"
  ssl = {{ certificate = "{cert}"; key = "{key}" }}
Component "conference.{DOMAIN}" "muc"
  restrict_room_creation = false
"#,
                cert = ca.server_cert().display(),
                key = ca.server_key().display(),
            ),
        )
        .unwrap();
        let mut prosody = Prosody {
            dir,
            port,
            child: None,
            ca,
        };
        prosody.launch().await;
        prosody
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("prosody.cfg.lua")
    }

    /// Creates an account `user@localhost`.
    pub fn register(&self, user: &str, password: &str) {
        let status = Command::new("prosodyctl")
            .arg("--config")
            .arg(self.config())
            .args(["register", user, DOMAIN, password])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "prosodyctl register {user}");
    }

    /// Gives `user@localhost` another password, as an operator would: the
    /// account is deleted and registered again (new salt, new keys).
    pub fn change_password(&self, user: &str, password: &str) {
        let status = Command::new("prosodyctl")
            .arg("--config")
            .arg(self.config())
            .args(["deluser", &format!("{user}@{DOMAIN}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "prosodyctl deluser {user}");
        self.register(user, password);
    }

    /// Starts (again) and waits until the c2s port accepts connections.
    pub async fn launch(&mut self) {
        let child = Command::new("prosody")
            .arg("--config")
            .arg(self.config())
            .arg("-F")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let port = self.port;
        let listening = || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        };
        super::wait::until_true(
            &format!("Prosody to listen on {port}"),
            Duration::from_secs(10),
            listening,
        )
        .await;
    }

    /// `[targets.xmpp]` for account `user`, STARTTLS with the test's CA.
    pub fn section(&self, user: &str, password: &str, recipient: Option<(&str, &str)>) -> String {
        let mut text = format!(
            "[targets.xmpp]\njid = \"{user}@{DOMAIN}\"\npassword = \"{password}\"\nserver = \"127.0.0.1:{}\"\n\
             tls = \"starttls\"\nca_file = \"{}\"\ngroup_room = \"{ROOM}\"\n",
            self.port,
            self.ca.ca_pem().display()
        );
        if let Some((rx, rx_password)) = recipient {
            text.push_str(&format!(
                "recipient = \"{rx}@{DOMAIN}\"\nrecipient_password = \"{rx_password}\"\n"
            ));
        }
        text
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        self.thaw();
        self.stop();
    }
}

impl ServerUnderTest for Prosody {
    fn process(&mut self) -> &mut Option<Child> {
        &mut self.child
    }

    async fn launch(&mut self) {
        Prosody::launch(self).await;
    }
}
