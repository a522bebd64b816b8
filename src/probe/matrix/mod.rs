//! Matrix homeservers over the client-server API. Not probed yet: targets
//! are accepted (their imported attempts count) and `check-config` says so.

use serde::Deserialize;

use crate::config::Secret;

/// `[targets.matrix]`: a Matrix homeserver's client-server API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixSettings {
    pub homeserver: String,
    pub user: String,
    pub password: Secret,
    pub direct_room: String,
    pub group_room: String,
}

impl MatrixSettings {
    /// What is wrong with the section, as (field, message).
    pub fn check(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if !(self.homeserver.starts_with("https://") || self.homeserver.starts_with("http://")) {
            problems.push(("homeserver", "must be an http:// or https:// URL".into()));
        }
        if !self.user.starts_with('@') || !self.user.contains(':') {
            problems.push((
                "user",
                "must be a Matrix user ID like @improbe:example.org".into(),
            ));
        }
        problems
    }
}
