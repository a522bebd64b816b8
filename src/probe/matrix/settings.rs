//! `[targets.matrix]` and its checks.

use serde::Deserialize;

use crate::secret::Secret;

/// `[targets.matrix]`: a Matrix homeserver's client-server API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixSettings {
    /// The homeserver's base URL, e.g. `https://matrix.example.org`.
    pub homeserver: String,
    /// The probing account, e.g. `@improbe:example.org`.
    pub user: String,
    pub password: Secret,
    /// A second account that confirms delivery by watching both rooms.
    #[serde(default)]
    pub recipient: Option<String>,
    #[serde(default)]
    pub recipient_password: Option<Secret>,
    /// Room IDs printed by `improbe setup` (which runs without them).
    #[serde(default)]
    pub direct_room: Option<String>,
    #[serde(default)]
    pub group_room: Option<String>,
}

impl MatrixSettings {
    /// What is wrong with the section, as (field, message).
    pub(super) fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if !(self.homeserver.starts_with("https://") || self.homeserver.starts_with("http://")) {
            problems.push(("homeserver", "must be an http:// or https:// URL".into()));
        }
        if !is_user_id(&self.user) {
            problems.push((
                "user",
                "must be a Matrix user ID like @improbe:example.org".into(),
            ));
        }
        problems.extend(crate::probe::delivery::check_recipient(
            self.recipient.as_deref(),
            self.recipient_password.as_ref(),
            &self.user,
            is_user_id,
            "@improbe-rx:example.org",
        ));
        for (field, room) in [
            ("direct_room", &self.direct_room),
            ("group_room", &self.group_room),
        ] {
            if let Some(room) = room
                && !room.starts_with('!')
            {
                problems.push((
                    field,
                    "must be a room ID starting with `!` (`improbe setup` prints them)".into(),
                ));
            }
        }
        problems
    }

    /// The two probe rooms, or what to do to get them.
    pub fn rooms(&self) -> anyhow::Result<[String; 2]> {
        match (&self.direct_room, &self.group_room) {
            (Some(direct), Some(group)) => Ok([direct.clone(), group.clone()]),
            _ => anyhow::bail!(
                "[targets.matrix] needs direct_room and group_room; `improbe setup` creates them and prints their IDs"
            ),
        }
    }

    /// The homeserver's client-server API base, parsed once: each call
    /// appends its path to it, so reqwest parses one URL per request fewer
    /// (docs/performance.md). A homeserver that is not a URL fails every
    /// call, as a transport error.
    pub fn api_base(&self) -> ApiBase {
        api_base(&self.homeserver)
    }
}

/// The client-server API base of the homeserver at `homeserver` (an
/// http(s) URL, which [`MatrixSettings::problems`] requires, so it can hold
/// a path).
pub fn api_base(homeserver: &str) -> ApiBase {
    let base = format!("{}/_matrix/client/v3", homeserver.trim_end_matches('/'));
    reqwest::Url::parse(&base).map_err(|e| format!("homeserver is not a URL: {e}"))
}

/// [`MatrixSettings::api_base`]: the parsed base, or why there is none.
pub type ApiBase = Result<reqwest::Url, String>;

fn is_user_id(text: &str) -> bool {
    text.starts_with('@')
        && text
            .split_once(':')
            .is_some_and(|(local, server)| local.len() > 1 && !server.is_empty())
}

/// The localpart of a user ID (`@improbe:example.org` → `improbe`), which
/// password login takes as its identifier.
pub fn localpart(user_id: &str) -> &str {
    user_id
        .strip_prefix('@')
        .and_then(|rest| rest.split_once(':'))
        .map_or(user_id, |(local, _)| local)
}
