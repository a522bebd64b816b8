//! Which minutes are settled: the one rule every reader that announces or
//! alerts applies. In the daemon one task applies it (`daemon/settled.rs`)
//! and hands each settled minute to the figures, the live pages and the
//! notifications. docs/many-regions.md.
//!
//! With several probers writing one database, a minute's verdict is final
//! only once every prober that measured it has written what it measured.
//! Each prober records a watermark with its writes ("everything I started
//! before T is stored"); a minute is settled when every live prober's
//! watermark has passed its end and no re-decision of it is pending. A
//! prober that stops reporting is waited for [`GIVE_UP_AFTER`], then given
//! up: it no longer holds anything back, and is reported as given up.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::minute::Minute;
use crate::store::{ProberMark, SettlementFacts};

/// Besides the longest attempt, what a minute waits for before this
/// prober takes it as settled: the writer's flush and a margin for other
/// probers.
pub const SETTLE_MARGIN: Duration = Duration::from_secs(3);

/// How long after its end this prober waits before a minute is settled:
/// its longest attempt plus [`SETTLE_MARGIN`], so that its own attempts of
/// the minute have ended whatever the watermarks say (with no prober live
/// they say nothing).
pub fn own_wait(config: &Config) -> chrono::Duration {
    chrono::Duration::from_std(config.longest_timeout() + SETTLE_MARGIN)
        .unwrap_or(chrono::Duration::MAX)
}

/// [`settle`], bounded by this prober's [`own_wait`] too: what the daemon
/// and `improbe notify` announce from.
pub fn settle_here(
    facts: &SettlementFacts,
    now: DateTime<Utc>,
    own_wait: chrono::Duration,
) -> Settlement {
    let mut settlement = settle(facts, now);
    let own_end = Minute::containing(&(now - own_wait));
    settlement.end = settlement.end.min(own_end);
    settlement
}

/// A prober whose last report is older than this no longer holds back
/// settlement. Its writer reports at least every second while the database
/// takes its writes, so this is a stopped prober, a lost network or a
/// database refusing that prober: its attempts, if any, arrive later and
/// may still change a minute that was announced.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(60);

/// A prober silent for longer than this is no longer listed as given up
/// (a prober taken out of service is not an alert for ever).
pub const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);

/// What [`settle`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// Minutes before this one are settled.
    pub end: Minute,
    /// The slowest live prober's watermark (or, with none live, now).
    pub complete_until: DateTime<Utc>,
    /// The prober that holds settlement back, when one does.
    pub slowest: Option<String>,
    /// Probers reporting within [`GIVE_UP_AFTER`].
    pub live: Vec<ProberMark>,
    /// Probers silent for longer, but not yet for [`FORGET_AFTER`].
    pub given_up: Vec<ProberMark>,
}

/// Decides which minutes are settled at `now`.
pub fn settle(facts: &SettlementFacts, now: DateTime<Utc>) -> Settlement {
    let ago = |d: Duration| now - chrono::Duration::from_std(d).expect("short");
    let give_up_at = ago(GIVE_UP_AFTER);
    let forget_at = ago(FORGET_AFTER);
    let (live, silent): (Vec<ProberMark>, Vec<ProberMark>) = facts
        .marks
        .iter()
        .cloned()
        .partition(|m| m.reported_at >= give_up_at);
    let given_up = silent
        .into_iter()
        .filter(|m| m.reported_at > forget_at)
        .collect();
    let slowest = live.iter().min_by_key(|m| m.complete_until);
    // No live prober: nobody is measuring, so nobody is waited for.
    let complete_until = slowest.map_or(now, |m| m.complete_until.min(now));
    let mut end = Minute::containing(&complete_until);
    if let Some(pending) = facts.earliest_pending {
        end = end.min(pending);
    }
    Settlement {
        end,
        complete_until,
        slowest: slowest.map(|m| m.prober.clone()),
        live: live.clone(),
        given_up,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn mark(prober: &str, complete_until: &str, reported_at: &str) -> ProberMark {
        ProberMark {
            prober: prober.into(),
            complete_until: at(complete_until),
            reported_at: at(reported_at),
        }
    }

    #[test]
    fn the_slowest_live_prober_holds_minutes_back() {
        let facts = SettlementFacts {
            marks: vec![
                mark("fast", "2026-05-01T10:04:58Z", "2026-05-01T10:05:00Z"),
                mark("far", "2026-05-01T10:02:30Z", "2026-05-01T10:04:50Z"),
            ],
            earliest_pending: None,
        };
        let s = settle(&facts, at("2026-05-01T10:05:00Z"));
        assert_eq!(s.end, Minute::containing(&at("2026-05-01T10:02:00Z")));
        assert_eq!(s.slowest.as_deref(), Some("far"));
        assert!(s.given_up.is_empty());
    }

    #[test]
    fn a_silent_prober_is_given_up_after_the_bound_and_forgotten_later() {
        let gone = mark("gone", "2026-05-01T10:00:20Z", "2026-05-01T10:00:21Z");
        let here = mark("here", "2026-05-01T10:01:20Z", "2026-05-01T10:01:21Z");
        let facts = SettlementFacts {
            marks: vec![gone.clone(), here],
            earliest_pending: None,
        };
        // 60 s after its last report it still holds minute 10:00 back...
        let waiting = settle(&facts, at("2026-05-01T10:01:21Z"));
        assert_eq!(waiting.end, Minute::containing(&at("2026-05-01T10:00:00Z")));
        // ...one second later it does not.
        let s = settle(&facts, at("2026-05-01T10:01:22Z"));
        assert_eq!(s.end, Minute::containing(&at("2026-05-01T10:01:00Z")));
        assert_eq!(s.given_up, [gone]);
        let much_later = settle(&facts, at("2026-05-02T11:00:00Z"));
        assert!(much_later.given_up.is_empty());
    }

    #[test]
    fn a_pending_re_decision_holds_its_minute_back() {
        let facts = SettlementFacts {
            marks: vec![mark("p", "2026-05-01T10:09:58Z", "2026-05-01T10:10:00Z")],
            earliest_pending: Some(Minute::containing(&at("2026-05-01T10:07:00Z"))),
        };
        let s = settle(&facts, at("2026-05-01T10:10:00Z"));
        assert_eq!(s.end, Minute::containing(&at("2026-05-01T10:07:00Z")));
    }

    #[test]
    fn this_probers_own_attempts_bound_what_is_settled_here() {
        let facts = SettlementFacts {
            marks: vec![mark("p", "2026-05-01T10:10:05Z", "2026-05-01T10:10:05Z")],
            earliest_pending: None,
        };
        let now = at("2026-05-01T10:10:05Z");
        let own = chrono::Duration::seconds(13);
        // The watermarks alone settle 10:09; this prober's attempts of
        // 10:09 may still be running until 10:10:13.
        assert_eq!(
            settle(&facts, now).end,
            Minute::containing(&at("2026-05-01T10:10:00Z"))
        );
        let here = settle_here(&facts, now, own);
        assert_eq!(here.end, Minute::containing(&at("2026-05-01T10:09:00Z")));
        let later = settle_here(&facts, at("2026-05-01T10:10:13Z"), own);
        assert_eq!(later.end, Minute::containing(&at("2026-05-01T10:10:00Z")));
    }

    #[test]
    fn with_no_live_prober_nothing_is_waited_for() {
        let s = settle(&SettlementFacts::default(), at("2026-05-01T10:10:30Z"));
        assert_eq!(s.end, Minute::containing(&at("2026-05-01T10:10:00Z")));
        assert_eq!(s.slowest, None);
    }
}
