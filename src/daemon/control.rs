//! The control check: is our own network up? (docs/sla.md: faults of networks that
//! are not the provider's do not count.)

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::sync::Locked;
use tokio::sync::watch;
use tokio::time::Instant;

/// Time between background control checks.
pub const CONTROL_INTERVAL: Duration = Duration::from_secs(5);
/// Deadline of one control request.
pub const CONTROL_TIMEOUT: Duration = Duration::from_secs(3);
/// A failed attempt reuses a control result at most this old; older, it asks again.
const CONTROL_FRESHNESS: Duration = Duration::from_secs(2);

/// A cheap request to an endpoint independent of the provider.
pub struct ControlCheck {
    url: String,
    client: reqwest::Client,
    last: Mutex<Option<(Instant, bool)>>,
    healthy: AtomicBool,
}

impl ControlCheck {
    pub fn new(url: String) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(CONTROL_TIMEOUT)
            .build()?;
        Ok(Self {
            url,
            client,
            last: Mutex::new(None),
            healthy: AtomicBool::new(true),
        })
    }

    /// Any HTTP answer proves the network works; only a transport error fails.
    async fn check(&self) -> bool {
        let ok = self.client.get(&self.url).send().await.is_ok();
        *self.last.locked() = Some((Instant::now(), ok));
        let was = self.healthy.swap(ok, Ordering::Relaxed);
        if was && !ok {
            tracing::error!(url = %crate::store::redact_url(self.url.as_str()), "control check failing: our own network is down; failed attempts are inconclusive until it recovers");
        } else if !was && ok {
            tracing::info!(url = %crate::store::redact_url(self.url.as_str()), "control check recovered");
        }
        ok
    }

    /// Whether our network works now: asked again unless known within seconds,
    /// so a local outage cannot be recorded as the provider's failure.
    pub async fn network_ok(&self) -> bool {
        let recent = *self.last.locked();
        match recent {
            Some((at, ok)) if at.elapsed() < CONTROL_FRESHNESS => ok,
            _ => self.check().await,
        }
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Checks every [`CONTROL_INTERVAL`] until `stop`.
    pub async fn run(&self, mut stop: watch::Receiver<bool>) {
        let mut ticker = tokio::time::interval(CONTROL_INTERVAL);
        loop {
            tokio::select! {
                _ = stop.changed() => if *stop.borrow() { return },
                _ = ticker.tick() => { self.check().await; }
            }
        }
    }
}
