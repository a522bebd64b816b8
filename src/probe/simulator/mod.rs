//! The `simulator` provider: the real Tencent adapter pointed at improbe's
//! built-in simulator (`improbe simulate`, `crate::simulator`), with the
//! simulator's published credentials.

use std::sync::Arc;

use serde::Deserialize;

use super::Probe;
use super::tencent::TencentProbe;
use crate::clock::Clock;

/// Where `improbe simulate` listens, and where simulator targets look by default.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:9480";

/// `[targets.simulator]`: where the built-in simulator listens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatorSettings {
    pub endpoint: String,
}

impl Default for SimulatorSettings {
    fn default() -> Self {
        Self {
            endpoint: DEFAULT_ENDPOINT.to_owned(),
        }
    }
}

impl SimulatorSettings {
    /// What is wrong with the section, as (field, message).
    pub fn check(&self) -> Vec<(&'static str, String)> {
        if self.endpoint.starts_with("http://") || self.endpoint.starts_with("https://") {
            Vec::new()
        } else {
            vec![(
                "endpoint",
                "must be an http:// URL such as http://127.0.0.1:9480".into(),
            )]
        }
    }

    pub fn probe(&self, clock: Arc<dyn Clock>) -> anyhow::Result<Arc<dyn Probe>> {
        let settings = crate::simulator::target_settings(&self.endpoint);
        Ok(Arc::new(TencentProbe::new(&settings, clock)?))
    }
}
