//! Deciding events from what is stored and writing them to the outbox.
//!
//! Every prober decides independently from the shared database; an event's
//! key is derived from what it is about (target, minute, Service Month,
//! mark), so several probers, or one prober after a restart, write one row
//! per event and channel (docs/notifications.md).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::channels::ChannelConfig;
use super::events::{
    self, BudgetFacts, BudgetMark, ClaimFacts, CoverageFacts, ErrorFacts, Event, EventKind,
    IncidentFacts, MinuteTrigger, MinuteWatch, utc,
};
use crate::accounting::{self, Figures};
use crate::config::{Config, Target};
use crate::minute::{Minute, MinuteRange};
use crate::report::claim_text::Claim;
use crate::report::evidence::{self, Depth};
use crate::settlement;
use crate::sla::contract::{Words, budget_used};
use crate::sla::{MonthStatement, tiers};
use crate::store::{NewNotification, Store};

/// How far back a starting prober reads verdicts to know which incident or
/// coverage gap it starts inside: as long as [`Figures`] keeps a completed
/// month's statement.
pub const WARMUP_MINUTES: i64 = accounting::RECENT_MINUTES;

/// Events about minutes older than this when a prober starts are not sent:
/// a restart catches up on what it missed while down, an old history does
/// not flood anyone.
pub const CATCH_UP_MINUTES: i64 = 60;

/// Decides every target's events and writes them to the outbox.
pub struct Decider {
    prober: String,
    /// Shared, so a tick walks them without copying every target.
    targets: Arc<[Target]>,
    channels: Vec<ChannelConfig>,
    /// [`settlement::own_wait`].
    own_wait: chrono::Duration,
    watches: HashMap<String, TargetWatch>,
    /// Keys of events already in the outbox, so that the Service Month
    /// marks re-checked every minute are written only once per run.
    written: HashSet<String>,
}

#[derive(Clone)]
struct TargetWatch {
    watch: MinuteWatch,
    /// Triggers before this minute were history when the prober started.
    announce_from: Minute,
}

impl Decider {
    pub fn new(config: &Config) -> Decider {
        Decider {
            prober: config.prober.id.clone(),
            targets: config.targets.clone().into(),
            channels: config.notify.clone(),
            own_wait: settlement::own_wait(config),
            watches: HashMap::new(),
            written: HashSet::new(),
        }
    }

    /// Decides what happened up to `now` and writes new events to the
    /// outbox, with the settlement and figures read now (as `improbe
    /// notify` and the tests drive it). Returns how many outbox rows were
    /// new.
    pub async fn decide(&mut self, store: &dyn Store, now: DateTime<Utc>) -> anyhow::Result<u64> {
        if self.channels.is_empty() {
            return Ok(0);
        }
        let facts = store.settlement_facts().await?;
        let settled_end = settlement::settle_here(&facts, now, self.own_wait).end;
        let figures = accounting::Figures::compute(store, &self.targets, now).await?;
        self.decide_with(store, &figures, settled_end, now).await
    }

    /// Decides what happened before `settled_end` (the settlement at `now`,
    /// [`settlement::settle_here`]) from `figures`, computed at `now` or a
    /// little before (the daemon computes them once per settled minute),
    /// and writes new events to the outbox. Returns how many outbox rows
    /// were new. Nothing is taken as decided unless it was written: an
    /// error leaves it for the next call.
    pub async fn decide_with(
        &mut self,
        store: &dyn Store,
        figures: &Figures,
        settled_end: Minute,
        now: DateTime<Utc>,
    ) -> anyhow::Result<u64> {
        if self.channels.is_empty() {
            return Ok(0);
        }
        let mut written = 0;
        let targets = self.targets.clone();
        for target in targets.iter() {
            if !self.channels.iter().any(|c| {
                EventKind::ALL
                    .iter()
                    .any(|kind| c.wants(*kind, &target.name))
            }) {
                continue;
            }
            let watch = self
                .watches
                .get(&target.name)
                .cloned()
                .unwrap_or_else(|| TargetWatch {
                    watch: MinuteWatch::default(),
                    announce_from: Minute(settled_end.0 - CATCH_UP_MINUTES),
                });
            let start = watch
                .watch
                .next()
                .unwrap_or(Minute(settled_end.0 - WARMUP_MINUTES));
            if start >= settled_end {
                continue;
            }
            let (watch, mut decided) = self
                .minute_events(
                    store,
                    figures,
                    target,
                    watch,
                    MinuteRange::new(start, settled_end),
                    now,
                )
                .await?;
            decided.extend(
                self.month_events(store, figures, target, settled_end, now)
                    .await?,
            );
            written += self.write(store, &decided, now).await?;
            self.watches.insert(target.name.clone(), watch);
        }
        Ok(written)
    }

    /// Writes events to the outbox, one row per channel that wants each.
    async fn write(
        &mut self,
        store: &dyn Store,
        events: &[Event],
        now: DateTime<Utc>,
    ) -> anyhow::Result<u64> {
        let mut rows = Vec::new();
        for event in events {
            let payload = serde_json::to_string(event).expect("an event serialises");
            for channel in self
                .channels
                .iter()
                .filter(|c| c.wants(event.event, &event.target))
            {
                rows.push(NewNotification {
                    event_key: event.id.clone(),
                    channel: channel.name.clone(),
                    target: event.target.clone(),
                    event: event.event.as_str().to_owned(),
                    payload: payload.clone(),
                    decided_by: self.prober.clone(),
                    created_at: now,
                });
            }
        }
        let new = store.enqueue_notifications(&rows).await?;
        for event in events {
            if new > 0 {
                tracing::info!(event = event.event.as_str(), target = %event.target, "{}", event.summary);
            }
            self.written.insert(event.id.clone());
        }
        Ok(new)
    }

    /// Follows the target's verdicts over `range` and builds the events
    /// they trigger; returns the watch as it stands after `range`.
    async fn minute_events(
        &self,
        store: &dyn Store,
        figures: &Figures,
        target: &Target,
        mut watch: TargetWatch,
        range: MinuteRange,
        now: DateTime<Utc>,
    ) -> anyhow::Result<(TargetWatch, Vec<Event>)> {
        let (book, _) = accounting::minute_book(store, &target.name, range).await?;
        let mut triggers = Vec::new();
        for m in range.start.0..range.end.0 {
            triggers.extend(watch.watch.observe(Minute(m), book.verdict(Minute(m))));
        }
        let mut decided = Vec::new();
        for trigger in triggers {
            let announced = match trigger {
                // A return is news only to whoever heard of the loss.
                MinuteTrigger::CoverageRestored { lost_at, .. } => lost_at,
                other => other.minute(),
            };
            if announced >= watch.announce_from {
                let statement = figures.containing(&target.name, trigger.minute());
                decided.push(
                    self.minute_event(store, target, statement, trigger, now)
                        .await?,
                );
            }
        }
        Ok((watch, decided))
    }

    async fn minute_event(
        &self,
        store: &dyn Store,
        target: &Target,
        statement: Option<&MonthStatement>,
        trigger: MinuteTrigger,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Event> {
        let name = &target.name;
        let mut event = base_event(target, statement, now);
        event.minute = Some(utc(trigger.minute().start()));
        let used = budget_phrase(target, statement);
        let when = |m: Minute| local(m.start(), target);
        match trigger {
            MinuteTrigger::IncidentOpened { start } => {
                let errors =
                    evidence::errors_within(store, target, MinuteRange::new(start, start.next()))
                        .await?;
                event.errors = errors
                    .into_iter()
                    .map(|g| ErrorFacts {
                        outcome: g.outcome.as_str().to_owned(),
                        http_status: g.http_status,
                        error_code: g.error_code,
                        count: g.count,
                        samples: g
                            .samples
                            .into_iter()
                            .map(|s| s.error.unwrap_or_else(|| "(no message)".to_owned()))
                            .collect(),
                    })
                    .collect();
                // Stored as channels send it: bounded in one place.
                event = event.quoted();
                let cause = event.errors.first().map_or(String::new(), |e| {
                    let code = e
                        .error_code
                        .as_deref()
                        .map(|c| format!(" {c}"))
                        .unwrap_or_default();
                    let status = e
                        .http_status
                        .map(|s| format!(" HTTP {s}"))
                        .unwrap_or_default();
                    format!(" ({}×{status}{code})", e.count)
                });
                event.id = format!("incident_opened:{name}:{}", utc(start.start()));
                event.event = EventKind::IncidentOpened;
                event.incident = Some(incident_facts(name, start, None));
                event.summary = format!(
                    "{name}: Apparent Failure since {}{cause}; {used}",
                    when(start)
                );
            }
            MinuteTrigger::IncidentResolved { start, end } => {
                event.id = format!("incident_resolved:{name}:{}", utc(start.start()));
                event.event = EventKind::IncidentResolved;
                event.incident = Some(incident_facts(name, start, Some(end)));
                event.summary = format!(
                    "{name}: available again at {} after {} failure minute(s) since {}; {used}",
                    when(end),
                    end.0 - start.0,
                    when(start)
                );
            }
            MinuteTrigger::CoverageLost { since, at } => {
                let reason =
                    evidence::gap_reason(store, target, MinuteRange::new(since, at.next())).await?;
                event.id = format!("coverage_lost:{name}:{}", utc(since.start()));
                event.event = EventKind::Coverage;
                event.summary = format!(
                    "{name}: nothing measured for {} minutes since {}: {reason}",
                    at.0 - since.0 + 1,
                    when(since)
                );
                event.coverage = Some(CoverageFacts {
                    state: "lost".to_owned(),
                    since: utc(since.start()),
                    minutes: None,
                    reason,
                });
            }
            MinuteTrigger::CoverageRestored {
                since,
                at,
                no_data_minutes,
                ..
            } => {
                let reason =
                    evidence::gap_reason(store, target, MinuteRange::new(since, at)).await?;
                event.id = format!("coverage_restored:{name}:{}", utc(since.start()));
                event.event = EventKind::Coverage;
                event.summary = format!(
                    "{name}: measured again from {} after {no_data_minutes} minute(s) without a verdict",
                    when(at)
                );
                event.coverage = Some(CoverageFacts {
                    state: "restored".to_owned(),
                    since: utc(since.start()),
                    minutes: Some(no_data_minutes),
                    reason,
                });
            }
        }
        Ok(event)
    }

    /// Budget and credit marks of the current Service Month, and the claim
    /// windows of completed ones.
    async fn month_events(
        &self,
        store: &dyn Store,
        figures: &Figures,
        target: &Target,
        settled_end: Minute,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<Event>> {
        let name = &target.name;
        let mut decided = Vec::new();
        if let Some(statement) = figures.containing(name, Minute(settled_end.0 - 1)) {
            let k = statement.month.index;
            let period = Words::capitalised(target.sla.contract.words().period);
            for mark in events::budget_marks(statement, &target.sla.contract) {
                let id = format!("budget:{name}:{k}:{}", mark.label());
                if self.written.contains(&id) {
                    continue;
                }
                let mut event = base_event(target, Some(statement), now);
                event.id = id;
                event.event = EventKind::Budget;
                event.summary = match mark {
                    BudgetMark::Budget(p) => format!(
                        "{name}: {p} % of the error budget used in {period} {k}: {}",
                        budget_phrase(target, Some(statement))
                    ),
                    BudgetMark::Credit(p) => format!(
                        "{name}: availability {} % in {period} {k}: a {p} % credit ({} {}) is owed so far",
                        statement.availability_percent,
                        tiers::format_money(tiers::credit_amount(target.sla.monthly_fee, p)),
                        statement.currency
                    ),
                };
                event.budget = Some(BudgetFacts {
                    mark: mark.label(),
                    budget_percent: match mark {
                        BudgetMark::Budget(p) => Some(p),
                        BudgetMark::Credit(_) => None,
                    },
                    credit_percent: statement.credit_percent,
                    credit_amount: tiers::format_money(statement.credit_amount),
                    currency: statement.currency.clone(),
                    availability_percent: statement.availability_percent.clone(),
                });
                decided.push(event);
            }
        }
        decided.extend(self.claim_events(store, figures, target, now).await?);
        Ok(decided)
    }

    /// `claim_open` and `claim_reminder` for completed months whose claim
    /// window is open at `now` and that owe a credit.
    async fn claim_events(
        &self,
        store: &dyn Store,
        figures: &Figures,
        target: &Target,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<Event>> {
        let name = &target.name;
        let period = Words::capitalised(target.sla.contract.words().period);
        let mut decided = Vec::new();
        let completed = figures
            .open(name)
            .iter()
            .filter(|s| s.month.is_complete(now));
        for statement in completed {
            let k = statement.month.index;
            for kind in events::claim_events_due(statement, now) {
                let id = format!("{}:{name}:{k}", kind.as_str());
                if self.written.contains(&id) {
                    continue;
                }
                let evidence =
                    evidence::gather_to(store, target, statement, now, Depth::WithAttempts).await?;
                let claim = Claim::from_evidence(&evidence, target.provider.kind().as_str());
                let amount = tiers::format_money(statement.credit_amount);
                let deadline = statement.claim.deadline.to_rfc3339();
                let mut event = base_event(target, Some(statement), now);
                event.id = id;
                event.event = kind;
                event.summary = if kind == EventKind::ClaimOpen {
                    format!(
                        "{name}: {period} {k} owes a {} % credit ({amount} {}); the claim window is open until {deadline}",
                        statement.credit_percent, statement.currency
                    )
                } else {
                    format!(
                        "{name}: the claim for {period} {k} ({amount} {}) must be filed by {deadline}",
                        statement.currency
                    )
                };
                event.claim = Some(ClaimFacts {
                    opens: statement.claim.opens.to_rfc3339(),
                    deadline,
                    credit_percent: statement.credit_percent,
                    credit_amount: amount,
                    currency: statement.currency.clone(),
                    text: claim.text,
                });
                decided.push(event);
            }
        }
        Ok(decided)
    }
}

/// An event with the fields every kind carries; the caller names it.
fn base_event(target: &Target, statement: Option<&MonthStatement>, now: DateTime<Utc>) -> Event {
    Event {
        id: String::new(),
        event: EventKind::Test,
        target: target.name.clone(),
        at: utc(now),
        minute: None,
        service_month: statement.map(|s| s.month.index),
        failure_minutes: statement.map_or(0, |s| s.failure_minutes),
        tolerated_minutes: statement.map_or(0, |s| s.tolerated_failure_minutes),
        budget_line: statement.map(|s| {
            let words = target.sla.contract.words();
            format!(
                "{} {}: {}",
                Words::capitalised(words.period),
                s.month.index,
                budget_used(&words, s.down_units(), s.tolerated_down_units())
            )
        }),
        summary: String::new(),
        incident: None,
        errors: Vec::new(),
        budget: None,
        coverage: None,
        claim: None,
    }
}

/// The event `improbe notify test` sends.
pub fn test_event(target: &str, prober: &str, now: DateTime<Utc>) -> Event {
    Event {
        id: format!("test:{prober}:{}", now.timestamp_millis()),
        event: EventKind::Test,
        target: target.to_owned(),
        at: utc(now),
        minute: None,
        service_month: None,
        failure_minutes: 0,
        tolerated_minutes: 0,
        budget_line: None,
        summary: format!("improbe test notification from prober {prober}: this channel works"),
        incident: None,
        errors: Vec::new(),
        budget: None,
        coverage: None,
        claim: None,
    }
}

fn incident_facts(target: &str, start: Minute, end: Option<Minute>) -> IncidentFacts {
    IncidentFacts {
        start: utc(start.start()),
        end: end.map(|e| utc(e.start())),
        minutes: end.map(|e| e.0 - start.0),
        key: format!("improbe/{target}/incident/{}", utc(start.start())),
    }
}

/// "17 of 432 tolerated failure minutes used in Service Month 3", in the
/// target contract's words.
fn budget_phrase(target: &Target, statement: Option<&MonthStatement>) -> String {
    let words = target.sla.contract.words();
    match statement {
        Some(s) => format!(
            "{} in {} {}",
            budget_used(&words, s.down_units(), s.tolerated_down_units()),
            Words::capitalised(words.period),
            s.month.index
        ),
        None => "before the service start".to_owned(),
    }
}

/// An instant in the target's SLA zone, to the minute, for people.
fn local(instant: DateTime<Utc>, target: &Target) -> String {
    let tz = target.sla.calendar.timezone;
    format!(
        "{} ({})",
        instant.with_timezone(&tz).format("%Y-%m-%d %H:%M %:z"),
        tz.name()
    )
}
