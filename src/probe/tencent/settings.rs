//! `[targets.tencent]`: Tencent Cloud IM's server-side REST API.

use serde::Deserialize;

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
    /// Whether each send is read back from the recipient's history to
    /// confirm it was delivered (docs/providers.md "Delivery confirmation").
    #[serde(default = "confirm_by_default")]
    pub confirm_delivery: bool,
}

/// `confirm_delivery`'s default, for Tencent and the simulator alike.
pub(crate) fn confirm_by_default() -> bool {
    true
}

impl TencentSettings {
    /// What is wrong with the section, as (field, message).
    pub(super) fn problems(&self) -> Vec<(&'static str, String)> {
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
}
