//! What improbe tells people, decided from what it stores (docs/notifications.md
//! "Notifications"): the events, their stable keys, and the pure rules that
//! decide them from minute verdicts and Service Month statements.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::minute::Minute;
use crate::sla::{Contract, MonthStatement};
use crate::verdict::Verdict;

/// Consecutive minutes without a conclusive verdict after which nobody is
/// measuring a target (excluded minutes neither add to nor break the run).
pub const COVERAGE_LOST_MINUTES: i64 = 5;

/// Shares of the tolerated failure minutes that are announced when reached.
pub const BUDGET_PERCENTS: [u32; 3] = [50, 80, 100];

/// How long before a claim deadline the reminder goes out.
pub const CLAIM_REMINDER_DAYS: i64 = 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    IncidentOpened,
    IncidentResolved,
    Budget,
    Coverage,
    ClaimOpen,
    ClaimReminder,
    /// `improbe notify test`: never stored, never filtered out.
    Test,
}

impl EventKind {
    /// The kinds a `[[notify]] events` list may name.
    pub const ALL: [EventKind; 6] = [
        EventKind::IncidentOpened,
        EventKind::IncidentResolved,
        EventKind::Budget,
        EventKind::Coverage,
        EventKind::ClaimOpen,
        EventKind::ClaimReminder,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::IncidentOpened => "incident_opened",
            EventKind::IncidentResolved => "incident_resolved",
            EventKind::Budget => "budget",
            EventKind::Coverage => "coverage",
            EventKind::ClaimOpen => "claim_open",
            EventKind::ClaimReminder => "claim_reminder",
            EventKind::Test => "test",
        }
    }
}

/// One event, exactly as a webhook receives it (docs/notifications.md, the webhook);
/// the other channels render it from these fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Stable per event: the outbox key and the `Idempotency-Key` header.
    pub id: String,
    pub event: EventKind,
    pub target: String,
    /// When the event was decided.
    pub at: String,
    /// The minute the event is about (UTC), for minute events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minute: Option<String>,
    /// 1-based, of the Service Month the event belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_month: Option<u32>,
    pub failure_minutes: i64,
    pub tolerated_minutes: i64,
    /// "Service Month 6: 2 of 432 tolerated failure minutes used", in the
    /// target contract's words; absent from events stored before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_line: Option<String>,
    /// One line for people.
    pub summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<IncidentFacts>,
    /// The errors behind an opened incident, most frequent first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorFacts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetFacts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<CoverageFacts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<ClaimFacts>,
}

/// Error groups an event carries, and samples per group.
pub const ERRORS_CARRIED: usize = 5;
pub const SAMPLES_CARRIED: usize = 3;
/// The longest summary sent, in bytes.
pub const SUMMARY_BYTES: usize = 1024;

impl Event {
    /// The event as channels send it: at most [`ERRORS_CARRIED`] error
    /// groups of [`SAMPLES_CARRIED`] samples, each quoted (docs/configuration.md "Hostile
    /// input"), so no stored event, however old, makes a message larger than
    /// its receiver takes.
    pub fn quoted(&self) -> Event {
        use crate::attempt::{MAX_CODE_BYTES, bounded, quoted};
        let mut event = self.clone();
        event.summary = bounded(event.summary, SUMMARY_BYTES);
        event.errors.truncate(ERRORS_CARRIED);
        for group in &mut event.errors {
            group.error_code = group.error_code.take().map(|c| bounded(c, MAX_CODE_BYTES));
            group.samples.truncate(SAMPLES_CARRIED);
            for sample in &mut group.samples {
                *sample = quoted(sample);
            }
        }
        event
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentFacts {
    /// The first failure minute (UTC); with the target, it names the incident.
    pub start: String,
    /// The first minute that was not a failure, once resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// Failure minutes in the incident, once resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<i64>,
    /// Ties an incident's opening and resolution together (PagerDuty's dedup key).
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorFacts {
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    pub count: u64,
    /// A few errors verbatim, as the provider answered.
    pub samples: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetFacts {
    /// Which mark was reached: `budget_50`, `budget_80`, `budget_100`,
    /// `credit_10`, `credit_20` or `credit_30`.
    pub mark: String,
    /// Share of the tolerated failure minutes used, for budget marks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_percent: Option<u32>,
    pub credit_percent: u32,
    pub credit_amount: String,
    pub currency: String,
    pub availability_percent: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoverageFacts {
    /// `lost` or `restored`.
    pub state: String,
    /// The first minute without a conclusive verdict (UTC).
    pub since: String,
    /// Minutes without a conclusive verdict, once restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<i64>,
    /// What the heartbeats and the inconclusive attempts say.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimFacts {
    pub opens: String,
    pub deadline: String,
    pub credit_percent: u32,
    pub credit_amount: String,
    pub currency: String,
    /// `improbe claim`'s Markdown for this Service Month.
    pub text: String,
}

/// An instant as events carry it: RFC 3339 UTC, to the second.
pub fn utc(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// What a run of minute verdicts called for, at the minute it became known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinuteTrigger {
    /// `start` is a failure minute after one that was not.
    IncidentOpened { start: Minute },
    /// `end` is the first minute after the failure minutes `start..end`.
    IncidentResolved { start: Minute, end: Minute },
    /// `at` is the [`COVERAGE_LOST_MINUTES`]th minute without a conclusive
    /// verdict since `since`.
    CoverageLost { since: Minute, at: Minute },
    /// `at` is the first conclusive minute after `since..at` had none; the
    /// loss was triggered at `lost_at`.
    CoverageRestored {
        since: Minute,
        lost_at: Minute,
        at: Minute,
        no_data_minutes: i64,
    },
}

impl MinuteTrigger {
    /// The minute whose verdict decided it.
    pub fn minute(self) -> Minute {
        match self {
            MinuteTrigger::IncidentOpened { start } => start,
            MinuteTrigger::IncidentResolved { end, .. } => end,
            MinuteTrigger::CoverageLost { at, .. } | MinuteTrigger::CoverageRestored { at, .. } => {
                at
            }
        }
    }
}

/// Follows one target's settled minutes in order and says when an
/// incident opens or resolves and when coverage is lost or comes back.
/// Incidents are runs of consecutive failure minutes, as in the report.
#[derive(Debug, Clone, Default)]
pub struct MinuteWatch {
    /// The next minute to look at.
    next: Option<Minute>,
    failing_since: Option<Minute>,
    /// The current run without a conclusive verdict, and its no-data minutes.
    no_data_since: Option<(Minute, i64)>,
    /// When the current run became long enough to be announced as lost.
    lost_at: Option<Minute>,
}

impl MinuteWatch {
    /// The next minute [`MinuteWatch::observe`] expects.
    pub fn next(&self) -> Option<Minute> {
        self.next
    }

    /// Takes the verdict of the next minute (minutes must come in order,
    /// none left out) and returns what it triggers.
    pub fn observe(&mut self, minute: Minute, verdict: Verdict) -> Vec<MinuteTrigger> {
        debug_assert!(
            self.next.is_none_or(|n| n == minute),
            "minutes out of order"
        );
        self.next = Some(minute.next());
        let mut triggers = Vec::new();
        // Coverage first: measuring again comes before what is measured.
        match verdict {
            Verdict::NoData => {
                let (since, count) = self.no_data_since.get_or_insert((minute, 0));
                *count += 1;
                if *count == COVERAGE_LOST_MINUTES {
                    self.lost_at = Some(minute);
                    triggers.push(MinuteTrigger::CoverageLost {
                        since: *since,
                        at: minute,
                    });
                }
            }
            Verdict::Excluded => {}
            Verdict::Available | Verdict::Failure => {
                if let Some((since, count)) = self.no_data_since.take()
                    && let Some(lost_at) = self.lost_at.take()
                {
                    triggers.push(MinuteTrigger::CoverageRestored {
                        since,
                        lost_at,
                        at: minute,
                        no_data_minutes: count,
                    });
                }
            }
        }
        match (verdict == Verdict::Failure, self.failing_since) {
            (true, None) => {
                self.failing_since = Some(minute);
                triggers.push(MinuteTrigger::IncidentOpened { start: minute });
            }
            (false, Some(start)) => {
                self.failing_since = None;
                triggers.push(MinuteTrigger::IncidentResolved { start, end: minute });
            }
            _ => {}
        }
        triggers
    }
}

/// A mark of the error budget or a credit tier, reached in a Service Month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetMark {
    /// This share of the tolerated failure minutes is used.
    Budget(u32),
    /// Availability fell below a tier: this credit is owed.
    Credit(u32),
}

impl BudgetMark {
    pub fn label(self) -> String {
        match self {
            BudgetMark::Budget(p) => format!("budget_{p}"),
            BudgetMark::Credit(p) => format!("credit_{p}"),
        }
    }
}

/// Every mark a Service Month's failure minutes have reached, lowest first:
/// shares of its error budget, then each of the contract's credit tiers the
/// statement's credit has reached. Integers only, like the tiers themselves.
pub fn budget_marks(statement: &MonthStatement, contract: &Contract) -> Vec<BudgetMark> {
    let failure_minutes = statement.failure_minutes;
    let tolerated = statement.tolerated_failure_minutes;
    let budget = BUDGET_PERCENTS
        .into_iter()
        .filter(|p| failure_minutes > 0 && failure_minutes * 100 >= tolerated * i64::from(*p))
        .map(BudgetMark::Budget);
    // Tiers are sorted by rising percent (checked where contracts are read).
    let credits = contract
        .credits
        .iter()
        .map(|tier| tier.percent)
        .filter(|percent| statement.credit_percent >= *percent)
        .map(BudgetMark::Credit);
    budget.chain(credits).collect()
}

/// Which claim events a completed Service Month calls for at `now`: none
/// without a credit or outside its claim window.
pub fn claim_events_due(statement: &MonthStatement, now: DateTime<Utc>) -> Vec<EventKind> {
    use crate::sla::ClaimStatus;
    if !statement.complete || statement.credit_percent == 0 {
        return Vec::new();
    }
    if statement.claim.status(now) != ClaimStatus::Open {
        return Vec::new();
    }
    let mut due = vec![EventKind::ClaimOpen];
    let reminder_from =
        statement.claim.deadline.with_timezone(&Utc) - chrono::Duration::days(CLAIM_REMINDER_DAYS);
    if now >= reminder_from {
        due.push(EventKind::ClaimReminder);
    }
    due
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(verdicts: &str) -> Vec<MinuteTrigger> {
        let mut watch = MinuteWatch::default();
        verdicts
            .chars()
            .enumerate()
            .flat_map(|(i, c)| {
                let verdict = match c {
                    'a' => Verdict::Available,
                    'f' => Verdict::Failure,
                    'n' => Verdict::NoData,
                    'x' => Verdict::Excluded,
                    _ => unreachable!(),
                };
                watch.observe(Minute(i as i64), verdict)
            })
            .collect()
    }

    #[test]
    fn an_incident_opens_on_its_first_failure_minute_and_resolves_on_the_next_other() {
        use MinuteTrigger::*;
        assert_eq!(
            watch("aaffaf"),
            vec![
                IncidentOpened { start: Minute(2) },
                IncidentResolved {
                    start: Minute(2),
                    end: Minute(4)
                },
                IncidentOpened { start: Minute(5) },
            ]
        );
        // Watching starts inside an incident: it opens on the first minute seen.
        assert_eq!(watch("f")[0], IncidentOpened { start: Minute(0) });
        // An excluded minute ends an incident, as in the report.
        assert_eq!(watch("fx").len(), 2);
    }

    #[test]
    fn coverage_is_lost_after_five_minutes_without_a_verdict_and_comes_back_once() {
        use MinuteTrigger::*;
        assert!(watch("annnna").is_empty(), "four minutes are not enough");
        assert_eq!(
            watch("annxnnnaa"),
            vec![
                CoverageLost {
                    since: Minute(1),
                    at: Minute(6)
                },
                CoverageRestored {
                    since: Minute(1),
                    lost_at: Minute(6),
                    at: Minute(7),
                    no_data_minutes: 5
                },
            ]
        );
        // A failure minute is a verdict: coverage is back (and an incident opens).
        let triggers = watch("nnnnnf");
        assert!(matches!(triggers[1], CoverageRestored { .. }));
        assert!(matches!(triggers[2], IncidentOpened { .. }));
    }

    /// The marks of April 2026 (30 days, UTC) with this many failure minutes.
    fn marks(failure_minutes: i64) -> Vec<BudgetMark> {
        use crate::sla::{ExcludedMinutes, ObservedMinutes, ServiceCalendar, SlaTerms};
        let terms = SlaTerms {
            calendar: ServiceCalendar::new("2026-04-01".parse().unwrap(), chrono_tz::UTC),
            business_days: Default::default(),
            monthly_fee: 1.into(),
            currency: "USD".into(),
            contract: std::sync::Arc::new(Contract::tencent_im()),
        };
        let month = terms.calendar.month(1).unwrap();
        let mut observed = ObservedMinutes::default();
        observed.add(Verdict::Failure, failure_minutes);
        let now = "2026-05-01T00:00:00Z".parse().unwrap();
        let statement = MonthStatement::compute(
            "t",
            &terms,
            month,
            observed,
            &ExcludedMinutes::default(),
            now,
        );
        budget_marks(&statement, &terms.contract)
    }

    #[test]
    fn budget_marks_follow_whole_minutes() {
        // A 30-day month tolerates 432 failure minutes.
        assert!(marks(0).is_empty());
        assert!(marks(215).is_empty());
        assert_eq!(marks(216), vec![BudgetMark::Budget(50)]);
        assert_eq!(marks(345).len(), 1);
        assert_eq!(marks(346).len(), 2);
        assert_eq!(marks(432).last(), Some(&BudgetMark::Budget(100)));
        assert_eq!(marks(433).last(), Some(&BudgetMark::Credit(10)));
        assert_eq!(marks(2160).len(), 4);
        assert_eq!(marks(2161).last(), Some(&BudgetMark::Credit(20)));
        assert_eq!(marks(4321).last(), Some(&BudgetMark::Credit(30)));
    }
}
