//! `[targets.tencent]`: Tencent Cloud IM's server-side REST API.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use crate::probe::{Adapter, Probe, ProbeContext, Provider};

use crate::secret::Secret;

/// Tencent allows UserIDs (the administrator and the probe accounts) of at
/// most this many bytes.
pub const MAX_USER_ID_BYTES: usize = 32;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TencentSettings {
    /// The app's regional REST domain, e.g. `https://adminapisgp.im.qcloud.com`.
    pub endpoint: String,
    pub sdk_app_id: u64,
    /// The app administrator the REST calls are signed as.
    pub admin: String,
    /// The app's key, which signs UserSigs.
    pub secret_key: Secret,
    /// The probe account that sends.
    pub sender: String,
    /// The probe account that receives one-to-one messages.
    pub recipient: String,
    /// The probe group (`improbe setup` creates it).
    pub group: String,
}

#[async_trait]
impl Adapter for TencentSettings {
    fn kind(&self) -> Provider {
        Provider::Tencent
    }

    fn answers_within(&self) -> Option<Duration> {
        Some(super::ANSWERS_WITHIN)
    }

    fn check(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if !(self.endpoint.starts_with("https://") || self.endpoint.starts_with("http://")) {
            problems.push((
                "endpoint",
                "must be an http:// or https:// URL, e.g. https://adminapisgp.im.qcloud.com".into(),
            ));
        }
        for (field, user) in [
            ("admin", &self.admin),
            ("sender", &self.sender),
            ("recipient", &self.recipient),
        ] {
            if user.trim().is_empty() || user.len() > MAX_USER_ID_BYTES {
                problems.push((
                    field,
                    format!("must be a Tencent UserID of 1 to {MAX_USER_ID_BYTES} bytes"),
                ));
            }
        }
        if self.group.trim().is_empty() {
            problems.push(("group", "must name the probe group".into()));
        }
        problems
    }

    fn secrets(&self) -> Vec<(&'static str, &Secret)> {
        vec![("secret_key", &self.secret_key)]
    }

    fn probe(&self, context: &ProbeContext) -> anyhow::Result<Arc<dyn Probe>> {
        Ok(Arc::new(super::TencentProbe::new(
            self,
            context.clock.clone(),
        )?))
    }

    fn confirms_delivery(&self) -> bool {
        false
    }

    async fn setup(&self) -> Option<anyhow::Result<Vec<String>>> {
        Some(super::setup::setup(self).await)
    }

    fn is_unclassified_code(&self, error_code: &str) -> bool {
        super::is_unclassified(error_code)
    }
}
