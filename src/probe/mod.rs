//! Probes: one module per provider. A probe performs one attempt and reports
//! its outcome; the scheduler owns timing, deadlines and recording.

pub mod tencent;

use std::sync::Arc;

use async_trait::async_trait;

use crate::attempt::{InconclusiveReason, Kind, Outcome};
use crate::clock::Clock;
use crate::config::{DEFAULT_SIMULATOR_ENDPOINT, Provider, Target};

/// What one attempt found. A failed attempt is data, not an `Err`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOutcome {
    pub outcome: Outcome,
    pub http_status: Option<i32>,
    pub error_code: Option<String>,
    pub error: Option<String>,
    /// Why an attempt is inconclusive.
    pub reason: Option<InconclusiveReason>,
}

impl ProbeOutcome {
    pub fn ok(http_status: Option<i32>) -> Self {
        Self {
            outcome: Outcome::Ok,
            http_status,
            error_code: None,
            error: None,
            reason: None,
        }
    }

    pub fn fail(
        http_status: Option<i32>,
        error_code: Option<String>,
        error: impl Into<String>,
    ) -> Self {
        Self {
            outcome: Outcome::Fail,
            http_status,
            error_code,
            error: Some(error.into()),
            reason: None,
        }
    }

    pub fn inconclusive(
        reason: InconclusiveReason,
        http_status: Option<i32>,
        error_code: Option<String>,
        error: impl Into<String>,
    ) -> Self {
        Self {
            outcome: Outcome::Inconclusive,
            http_status,
            error_code,
            error: Some(error.into()),
            reason: Some(reason),
        }
    }

    /// The attempt's deadline passed: a failure in the minute it started.
    pub fn timed_out(after: std::time::Duration) -> Self {
        Self::fail(
            None,
            None,
            format!("timeout after {}", crate::config::humanize(after)),
        )
    }
}

/// A transport error with its cause chain, e.g. "error sending request:
/// client error (Connect): tcp connect error: Connection refused". Strip the
/// URL first (`without_url`) where it may carry a signature.
pub fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Whether a failed attempt's provider error code is missing from that
/// provider's classification table: it counts against the provider (an
/// outage must not be hidden), but a claim should not rest on it unchecked.
pub fn is_unclassified_code(provider: Provider, error_code: &str) -> bool {
    match provider {
        Provider::Tencent | Provider::Simulator => tencent::is_unclassified(error_code),
        Provider::Matrix => false,
    }
}

/// One provider's way of logging in and sending.
#[async_trait]
pub trait Probe: Send + Sync {
    async fn attempt(&self, kind: Kind) -> ProbeOutcome;
}

/// The probe for a configured target; `None` for providers improbe cannot probe yet.
pub fn for_target(
    target: &Target,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Option<Arc<dyn Probe>>> {
    match target.provider {
        Provider::Tencent => {
            let settings = target.tencent.as_ref().ok_or_else(|| {
                anyhow::anyhow!("target `{}` needs a [targets.tencent] section", target.name)
            })?;
            Ok(Some(Arc::new(tencent::TencentProbe::new(settings, clock)?)))
        }
        Provider::Simulator => {
            let endpoint = target
                .simulator
                .as_ref()
                .map_or(DEFAULT_SIMULATOR_ENDPOINT, |s| s.endpoint.as_str());
            let settings = crate::simulator::target_settings(endpoint);
            Ok(Some(Arc::new(tencent::TencentProbe::new(
                &settings, clock,
            )?)))
        }
        // Validation warns about this; its imported attempts still count.
        Provider::Matrix => Ok(None),
    }
}
