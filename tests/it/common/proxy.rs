//! A database "far away": `bench/delay_proxy.py` in front of the test
//! PostgreSQL, delaying every packet in each direction. Frozen (SIGSTOP), it
//! holds every packet: a prober behind it can neither write nor report, as
//! if its region had lost the network.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};

pub struct DelayProxy {
    child: Child,
    pub port: u16,
}

impl DelayProxy {
    /// A proxy to the PostgreSQL server of `url`, adding `one_way_ms` each way.
    pub fn start(url: &str, one_way_ms: u64) -> DelayProxy {
        let upstream = host_port(url);
        let mut child = Command::new("python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/bench/delay_proxy.py"))
            .args(["0", &upstream, &one_way_ms.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs bench/delay_proxy.py");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("delay proxy did not start: {line:?}"));
        DelayProxy { child, port }
    }

    /// `url` with its host and port replaced by the proxy's.
    pub fn url_for(&self, url: &str) -> String {
        url.replacen(&host_port(url), &format!("127.0.0.1:{}", self.port), 1)
    }

    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.thaw();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `HOST:PORT` of a `postgres://user@HOST:PORT/db` URL.
fn host_port(url: &str) -> String {
    let after_at = url.rsplit_once('@').map_or(url, |(_, rest)| rest);
    after_at.split('/').next().unwrap().to_owned()
}
