//! `kind = "slack"`: Slack's incoming-webhook format (`text` in mrkdwn),
//! which Mattermost and Rocket.Chat accept as well.

use serde_json::json;

use super::{SendFailure, detail_lines, post_json};
use crate::notify::events::Event;

pub(super) struct Slack {
    pub http: reqwest::Client,
    pub url: String,
}

/// The most characters of `text` sent; Slack advises keeping a message's
/// `text` under 4,000 characters and truncates longer ones.
pub const TEXT_LIMIT: usize = 4_000;

/// The message a Slack incoming webhook receives for `event`.
pub fn message(event: &Event) -> serde_json::Value {
    let mut text = format!("*{}*", escape(&event.summary));
    for line in detail_lines(event) {
        text.push_str("\n• ");
        text.push_str(&escape(&line));
    }
    if text.chars().count() > TEXT_LIMIT {
        text = text.chars().take(TEXT_LIMIT - 1).collect();
        text.push('…');
    }
    json!({ "text": text })
}

/// Text as Slack shows it literally: its three control characters as
/// entities, line breaks as spaces (so no text starts a bullet of its own),
/// and mrkdwn's formatting characters as look-alikes, since mrkdwn has no
/// escape for them. An `_` inside a word (`tim_sgp`) cannot start or end
/// italics and stays.
fn escape(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut escaped = String::with_capacity(text.len());
    for (i, c) in chars.iter().enumerate() {
        let inside_word = || {
            i > 0
                && chars[i - 1].is_alphanumeric()
                && chars.get(i + 1).is_some_and(|next| next.is_alphanumeric())
        };
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '*' => escaped.push('∗'),
            '_' if !inside_word() => escaped.push('ˍ'),
            '~' => escaped.push('∼'),
            '`' => escaped.push('ˋ'),
            c if c.is_control() => escaped.push(' '),
            c => escaped.push(*c),
        }
    }
    escaped
}

impl Slack {
    pub async fn send(&self, event: &Event) -> Result<(), SendFailure> {
        post_json(&self.http, &self.url, &message(event)).await
    }
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn provider_text_cannot_format_or_add_bullets() {
        let shown = escape("*bold* _it_ ~s~ `c` <!channel> &x\n• forged tim_sgp");
        assert_eq!(
            shown,
            "∗bold∗ ˍitˍ ∼s∼ ˋcˋ &lt;!channel&gt; &amp;x • forged tim_sgp"
        );
    }
}
