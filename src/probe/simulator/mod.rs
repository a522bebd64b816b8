//! The `simulator` provider: the real Tencent adapter pointed at improbe's
//! built-in simulator (`improbe simulate`, `crate::simulator`), with the
//! simulator's published credentials.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::tencent::TencentProbe;
use super::{Adapter, Probe, ProbeContext, Provider};
use crate::secret::Secret;

/// Where `improbe simulate` listens, and where simulator targets look by default.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:9480";

/// `[targets.simulator]`: where the built-in simulator listens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatorSettings {
    pub endpoint: String,
    /// As for Tencent: each send is read back from the simulator's histories.
    #[serde(default = "super::tencent::settings::confirm_by_default")]
    pub confirm_delivery: bool,
}

impl Default for SimulatorSettings {
    fn default() -> Self {
        Self {
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            confirm_delivery: true,
        }
    }
}

#[async_trait]
impl Adapter for SimulatorSettings {
    fn kind(&self) -> Provider {
        Provider::Simulator
    }

    /// The built-in simulator answers at once unless told otherwise.
    fn answers_within(&self) -> Option<Duration> {
        None
    }

    fn check(&self) -> Vec<(&'static str, String)> {
        if self.endpoint.starts_with("http://") || self.endpoint.starts_with("https://") {
            Vec::new()
        } else {
            vec![(
                "endpoint",
                "must be an http:// URL such as http://127.0.0.1:9480".into(),
            )]
        }
    }

    /// The simulator's credentials are published: nothing to keep secret.
    fn secrets(&self) -> Vec<(&'static str, &Secret)> {
        Vec::new()
    }

    fn probe(&self, context: &ProbeContext) -> anyhow::Result<Arc<dyn Probe>> {
        let mut settings = crate::simulator::target_settings(&self.endpoint);
        settings.confirm_delivery = self.confirm_delivery;
        Ok(Arc::new(TencentProbe::for_target(&settings, context)?))
    }

    fn confirms_delivery(&self) -> bool {
        self.confirm_delivery
    }

    /// `improbe simulate` starts with its accounts and group in place.
    async fn setup(&self) -> Option<anyhow::Result<Vec<String>>> {
        None
    }

    /// The simulator answers with Tencent's codes.
    fn is_unclassified_code(&self, error_code: &str) -> bool {
        super::tencent::is_unclassified(error_code)
    }
}
