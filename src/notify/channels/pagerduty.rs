//! `kind = "pagerduty"`: PagerDuty's Events API v2. An incident's opening
//! triggers and its resolution resolves the same alert (one dedup key per
//! incident); coverage loss and return do the same; budget and claim events
//! trigger alerts of their own for someone to act on.

use serde_json::json;

use super::{SendFailure, detail_lines, post_json};
use crate::notify::events::{Event, EventKind};

pub const DEFAULT_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// PagerDuty cuts summaries longer than this.
const SUMMARY_LIMIT: usize = 1024;

pub(super) struct Pagerduty {
    pub http: reqwest::Client,
    pub url: String,
    pub routing_key: String,
}

/// The alert an event triggers or resolves: `(action, dedup key, severity)`.
fn action(event: &Event) -> (&'static str, String, &'static str) {
    let incident_key = || {
        event
            .incident
            .as_ref()
            .map_or_else(|| event.id.clone(), |i| i.key.clone())
    };
    let coverage_key = || {
        let since = event.coverage.as_ref().map_or("", |c| c.since.as_str());
        format!("improbe/{}/coverage/{since}", event.target)
    };
    match event.event {
        EventKind::IncidentOpened => ("trigger", incident_key(), "critical"),
        EventKind::IncidentResolved => ("resolve", incident_key(), "critical"),
        EventKind::Coverage
            if event
                .coverage
                .as_ref()
                .is_some_and(|c| c.state == "restored") =>
        {
            ("resolve", coverage_key(), "warning")
        }
        EventKind::Coverage => ("trigger", coverage_key(), "warning"),
        EventKind::Budget | EventKind::ClaimReminder => ("trigger", event.id.clone(), "warning"),
        EventKind::ClaimOpen | EventKind::Test => ("trigger", event.id.clone(), "info"),
    }
}

/// The Events API v2 body for `event`.
pub fn body(event: &Event, routing_key: &str) -> serde_json::Value {
    let (action, dedup_key, severity) = action(event);
    if action == "resolve" {
        return json!({ "routing_key": routing_key, "event_action": action, "dedup_key": dedup_key });
    }
    let summary: String = event.summary.chars().take(SUMMARY_LIMIT).collect();
    json!({
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": dedup_key,
        "payload": {
            "summary": summary,
            "source": format!("improbe/{}", event.target),
            "severity": severity,
            "timestamp": event.at,
            "component": event.target,
            "class": event.event.as_str(),
            "custom_details": { "details": detail_lines(event), "event": event },
        },
    })
}

impl Pagerduty {
    /// PagerDuty answers 202 Accepted when it takes an event.
    pub async fn send(&self, event: &Event) -> Result<(), SendFailure> {
        post_json(&self.http, &self.url, &body(event, &self.routing_key)).await
    }
}
