//! `kind = "slack"`: Slack's incoming-webhook format (`text` in mrkdwn),
//! which Mattermost and Rocket.Chat accept as well.

use serde_json::json;

use super::{SendFailure, detail_lines, post_json};
use crate::notify::events::Event;

pub(super) struct Slack {
    pub http: reqwest::Client,
    pub url: String,
}

/// The message a Slack incoming webhook receives for `event`.
pub fn message(event: &Event) -> serde_json::Value {
    let mut text = format!("*{}*", escape(&event.summary));
    for line in detail_lines(event) {
        text.push_str("\n• ");
        text.push_str(&escape(&line));
    }
    json!({ "text": text })
}

/// Slack's three control characters in message text.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Slack {
    pub async fn send(&self, event: &Event) -> Result<(), SendFailure> {
        post_json(&self.http, &self.url, &message(event)).await
    }
}
