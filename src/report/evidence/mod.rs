//! The evidence for one target and Service Month, gathered once and rendered
//! as Markdown, HTML or JSON: the figures of `improbe sla`, every incident
//! with the attempts behind it, coverage with its gaps, the exclusions
//! applied, a per-day picture and a digest over the attempts.

mod digest;
mod stream;
mod words;

use digest::CanonicalDigest;
pub use words::{Cell, NO_PRIOR_NOTICE, Table};

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::accounting;
use crate::attempt::jsonl;
use crate::attempt::rollup::{Histogram, Rollup, RollupKey};
use crate::attempt::{Attempt, Delivery, Kind, Outcome};
use crate::config::Target;
use crate::minute::{Minute, MinuteRange};
use crate::report::sla_table::SlaRecord;
use crate::sla::contract::Words;
use crate::sla::{MonthStatement, ServiceMonth};
use crate::store::{Heartbeat, Store};
use crate::verdict::Verdict;

/// No-data runs longer than this are listed as coverage gaps.
pub const GAP_MINUTES: i64 = 5;
/// Verbatim error samples kept per distinct error.
pub const SAMPLES_PER_ERROR: usize = 3;
/// Minutes of context drawn on each side of an incident's minute strip.
pub const STRIP_CONTEXT_MINUTES: i64 = 5;

#[derive(Debug, Serialize)]
pub struct Evidence {
    pub target: String,
    pub timezone: String,
    pub generated_at: String,
    pub improbe_version: &'static str,
    pub figures: SlaRecord,
    pub incidents: Vec<Incident>,
    pub coverage: Coverage,
    pub exclusions: Vec<AppliedExclusion>,
    pub days: Vec<Day>,
    /// Sends the provider accepted that the recipient never saw, oldest
    /// first, at most [`UNDELIVERED_LISTED`] of them.
    pub undelivered: Vec<ErrorSample>,
    pub undelivered_total: u64,
    pub digest: AttemptsDigest,
    /// The contract's nouns, for the sentences of every rendering.
    #[serde(skip)]
    pub words: Words,
}

/// How many accepted-but-undelivered sends the report lists one by one.
pub const UNDELIVERED_LISTED: usize = 100;

/// Delivery confirmation over some sends (docs/providers.md "Delivery confirmation").
#[derive(Debug, Default, Clone, Serialize)]
pub struct DeliverySummary {
    pub confirmed: u64,
    pub missing: u64,
    pub p50_ms: Option<i64>,
    pub p95_ms: Option<i64>,
    pub max_ms: Option<i64>,
}

/// Collects delivery times as attempts stream past, raw or folded, in the
/// histogram folding keeps (src/attempt/rollup.rs): the percentiles are the
/// same before and after a day is folded, within the histogram's stated
/// error of the exact ones.
#[derive(Debug, Default)]
struct DeliveryTally {
    confirmed: u64,
    delivered_ms: Histogram,
    missing: u64,
}

impl DeliveryTally {
    fn add(&mut self, attempt: &Attempt) {
        match attempt.delivery {
            Some(Delivery::Confirmed { after_ms }) => {
                self.confirmed += 1;
                if let Some(after) = after_ms {
                    self.delivered_ms.add(after);
                }
            }
            Some(Delivery::Missing) => self.missing += 1,
            None => {}
        }
    }

    fn add_folded(&mut self, rollup: &Rollup) {
        self.confirmed += rollup.confirmed;
        self.delivered_ms.merge(&rollup.delivered);
    }

    /// `None` when no send's delivery was checked.
    fn finish(self) -> Option<DeliverySummary> {
        if self.confirmed == 0 && self.missing == 0 {
            return None;
        }
        Some(DeliverySummary {
            confirmed: self.confirmed,
            missing: self.missing,
            p50_ms: self.delivered_ms.percentile(50),
            p95_ms: self.delivered_ms.percentile(95),
            max_ms: self.delivered_ms.max(),
        })
    }
}

/// A run of consecutive failure minutes (already merged across probers).
#[derive(Debug, Serialize)]
pub struct Incident {
    pub start: String,
    pub end: String,
    pub minutes: i64,
    /// Attempts started inside the incident, by kind, then outcome.
    pub attempts: BTreeMap<Kind, OutcomeTally>,
    /// Distinct (HTTP status, error code) pairs of the attempts that did not
    /// succeed, most frequent first.
    pub errors: Vec<ErrorGroup>,
    /// Probers that recorded a failed attempt inside the incident.
    pub probers: Vec<String>,
    /// Delivery of the sends started inside the incident, where checked.
    pub delivery: Option<DeliverySummary>,
    #[serde(skip)]
    pub range: MinuteRange,
    /// The verdict of every minute from a little before to a little after.
    #[serde(skip)]
    pub strip: Vec<(Minute, Verdict)>,
}

#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct OutcomeTally {
    pub ok: u64,
    pub fail: u64,
    pub inconclusive: u64,
}

#[derive(Debug, Serialize)]
pub struct ErrorGroup {
    pub http_status: Option<i32>,
    pub error_code: Option<String>,
    pub outcome: Outcome,
    /// A failure whose code is not in the provider's classification table:
    /// it counts, but should be checked before claiming.
    pub unclassified_code: bool,
    pub count: u64,
    pub samples: Vec<ErrorSample>,
}

#[derive(Debug, Serialize)]
pub struct ErrorSample {
    pub started_at: String,
    pub prober: String,
    pub kind: Kind,
    pub latency_ms: Option<i64>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Coverage {
    /// Minutes of the month up to now (or its end).
    pub elapsed_minutes: i64,
    /// Elapsed minutes with a conclusive verdict (available or failure).
    pub observed_minutes: i64,
    pub excluded_minutes: i64,
    pub no_data_minutes: i64,
    /// Observed share of the elapsed, non-excluded minutes, two decimals.
    pub coverage_percent: String,
    pub gaps: Vec<Gap>,
    /// Probers sharing the database that stopped reporting within the last
    /// day and were given up (docs/many-regions.md), in words.
    pub given_up_probers: Vec<String>,
}

/// A no-data run longer than [`GAP_MINUTES`].
#[derive(Debug, Serialize)]
pub struct Gap {
    pub start: String,
    pub end: String,
    pub minutes: i64,
    /// What the prober heartbeats say about the gap, in words.
    pub heartbeat: String,
    pub inconclusive_attempts: i64,
    pub probers: Vec<ProberActivity>,
}

#[derive(Debug, Serialize)]
pub struct ProberActivity {
    pub prober: String,
    /// Minutes of the gap with a heartbeat from this prober.
    pub minutes_alive: i64,
    pub started: i64,
    pub skipped: i64,
    pub finished: i64,
}

#[derive(Debug, Serialize)]
pub struct AppliedExclusion {
    pub id: i64,
    pub start: String,
    pub end: String,
    pub reason: String,
    pub announced_at: Option<String>,
    /// The SLA excludes only maintenance announced before it starts.
    pub prior_notice: bool,
    pub source: &'static str,
    pub recorded_at: String,
    pub recorded_by: String,
    /// Minutes of this Service Month the window covers.
    pub minutes_in_month: i64,
}

/// One local calendar day of the Service Month.
#[derive(Debug, Serialize)]
pub struct Day {
    pub date: NaiveDate,
    pub total_minutes: i64,
    pub available_minutes: i64,
    pub failure_minutes: i64,
    pub excluded_minutes: i64,
    /// Elapsed, not excluded, without a conclusive verdict.
    pub no_data_minutes: i64,
    /// Minutes not yet elapsed.
    pub future_minutes: i64,
    /// Delivery of the day's sends, where checked.
    pub delivery: Option<DeliverySummary>,
}

/// SHA-256 over the attempts the month's figures were computed from.
#[derive(Debug, Serialize)]
pub struct AttemptsDigest {
    pub algorithm: &'static str,
    pub attempts: u64,
    pub value: String,
    pub canonical_form: &'static str,
}

pub const CANONICAL_FORM: &str = "the evidence of the target in [start, end) of the Service Month, UTC minute by \
     minute, each item one line followed by a newline. First the minute's attempts that are evidence (outcome fail or \
     inconclusive, or delivery missing), ordered by started_at, then prober and kind (byte order), each as a line of \
     the `improbe import` format (fields in the order target, prober, kind, started_at in UTC with milliseconds, \
     outcome, latency_ms, http_status, error_code, error, reason, delivery, delivered_ms; absent fields omitted). Then \
     the minute's successes, one line per prober and kind (byte order), raw or folded alike: {\"target\", \
     \"prober\", \"kind\", \"minute\" (UTC, seconds), \"ok\" (count), \"latency_ms\" and \"delivered_ms\" \
     (histograms: each bucket's lower bound in ms to its count, ascending; buckets as in src/attempt/rollup.rs), \
     \"confirmed\" (count)}";

/// Under this share of elapsed, not excluded minutes measured, an
/// availability figure is marked as resting on too little data to file or
/// reject a claim with (README "Coverage").
pub const LOW_COVERAGE_PERCENT: f64 = 90.0;

/// Beside an error code the provider's classification table does not hold.
pub const UNCLASSIFIED_CODE_NOTE: &str = "not in the classification table — check before claiming";
/// What a report says when nothing was down: "No Apparent Failure minute
/// in this Service Month."
pub fn no_incident(words: &Words) -> String {
    format!("No {} in this {}.", words.down_title, words.period)
}

/// How much evidence to gather.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// Everything a report or claim shows, from one pass over the month's
    /// attempts (error groups, delivery, the digest).
    WithAttempts,
    /// Only what minute verdicts tell (figures, incidents' times, coverage,
    /// days): what the live status page shows on every refresh.
    MinutesOnly,
}

/// Gathers the evidence for one statement (from `accounting::statements`).
pub async fn gather(
    store: &dyn Store,
    target: &Target,
    statement: &MonthStatement,
    now: DateTime<Utc>,
) -> anyhow::Result<Evidence> {
    gather_to(store, target, statement, now, Depth::WithAttempts).await
}

/// The evidence for one Service Month: its statement, then what backs it.
/// What `report`, `claim`, the status page and `/report/<target>` all show.
pub async fn for_month(
    store: &dyn Store,
    target: &Target,
    month: ServiceMonth,
    now: DateTime<Utc>,
    depth: Depth,
) -> anyhow::Result<Evidence> {
    let statements = accounting::statements(store, target, vec![month], now).await?;
    gather_to(store, target, &statements[0], now, depth).await
}

pub async fn gather_to(
    store: &dyn Store,
    target: &Target,
    statement: &MonthStatement,
    now: DateTime<Utc>,
    depth: Depth,
) -> anyhow::Result<Evidence> {
    let tz = target.sla.calendar.timezone;
    let month = statement.month.minutes();
    let elapsed = MinuteRange::new(
        month.start,
        month.end.min(Minute::containing(&now)).max(month.start),
    );
    let (book, windows) = accounting::minute_book(store, &target.name, month).await?;
    // Incidents, days and strips show the contract's intervals, so they
    // add up to the figures (docs/contracts.md).
    let contract = &target.sla.contract;
    let verdict_of = |minute: Minute| book.interval_verdict(contract, minute);

    let mut incidents = Vec::new();
    let mut gaps = Vec::new();
    let mut run: Option<(Verdict, Minute)> = None;
    let mut minute = month.start;
    // One pass over the elapsed minutes, closing runs of failure and no-data.
    loop {
        let current = (minute < elapsed.end).then(|| verdict_of(minute));
        if let Some((kind, start)) = run
            && current != Some(kind)
        {
            let range = MinuteRange::new(start, minute);
            match kind {
                Verdict::Failure => incidents.push(range),
                Verdict::NoData if range.len() > GAP_MINUTES => gaps.push(range),
                _ => {}
            }
            run = None;
        }
        let Some(current) = current else { break };
        if run.is_none() && matches!(current, Verdict::Failure | Verdict::NoData) {
            run = Some((current, minute));
        }
        minute = minute.next();
    }

    let mut incidents: Vec<Incident> = incidents
        .into_iter()
        .map(|range| Incident {
            start: local(range.start.start(), tz),
            end: local(range.end.start(), tz),
            minutes: range.len(),
            attempts: BTreeMap::new(),
            errors: Vec::new(),
            probers: Vec::new(),
            delivery: None,
            range,
            strip: (range.start.0 - STRIP_CONTEXT_MINUTES..range.end.0 + STRIP_CONTEXT_MINUTES)
                .map(Minute)
                .filter(|m| month.contains(*m))
                .map(|m| {
                    let v = if m < elapsed.end {
                        verdict_of(m)
                    } else {
                        Verdict::NoData
                    };
                    (m, v)
                })
                .collect(),
        })
        .collect();

    // One streamed pass over the month's attempts: the digest and the
    // attempts behind each incident.
    let mut digest = CanonicalDigest::default();
    let ranges: Vec<MinuteRange> = incidents.iter().map(|i| i.range).collect();
    let mut behind: Vec<AttemptsBehind> = incidents
        .iter()
        .map(|_| AttemptsBehind::default())
        .collect();
    let mut delivery_by_day: BTreeMap<NaiveDate, DeliveryTally> = BTreeMap::new();
    let mut undelivered = Vec::new();
    let mut undelivered_total = 0;
    let attempts = if depth == Depth::MinutesOnly {
        0
    } else {
        stream::visit(store, &target.name, month, &mut |item| {
            let minute = match &item {
                stream::Item::Raw(attempt) => attempt.minute(),
                stream::Item::Folded(key, _) => key.minute,
            };
            let at = ranges.partition_point(|r| r.end <= minute);
            let incident = (at < ranges.len() && ranges[at].contains(minute)).then_some(at);
            match item {
                stream::Item::Raw(attempt) => {
                    if let Some(at) = incident {
                        behind[at].add(&attempt, tz);
                    }
                    if attempt.delivery.is_some() {
                        let date = attempt.started_at.with_timezone(&tz).date_naive();
                        delivery_by_day.entry(date).or_default().add(&attempt);
                    }
                    if attempt.delivery == Some(Delivery::Missing) && attempt.outcome == Outcome::Ok
                    {
                        undelivered_total += 1;
                        if undelivered.len() < UNDELIVERED_LISTED {
                            undelivered.push(ErrorSample::of(&attempt, tz));
                        }
                    }
                    digest.add(attempt);
                }
                stream::Item::Folded(key, rollup) => {
                    if let Some(at) = incident {
                        behind[at].add_folded(&key, &rollup);
                    }
                    if rollup.confirmed > 0 {
                        let date = key.minute.start().with_timezone(&tz).date_naive();
                        delivery_by_day.entry(date).or_default().add_folded(&rollup);
                    }
                    digest.add_folded(&target.name, &key, &rollup);
                }
            }
        })
        .await?
    };
    for (incident, behind) in incidents.iter_mut().zip(behind) {
        incident.attempts = behind.attempts;
        incident.errors = error_groups(behind.errors, target);
        incident.probers = behind.probers.into_iter().collect();
        incident.delivery = behind.delivery.finish();
    }

    let heartbeats = store.heartbeats(elapsed).await?;
    let gaps = gaps
        .into_iter()
        .map(|range| {
            let inconclusive = (range.start.0..range.end.0)
                .map(|m| book.counts(Minute(m)).inconclusive)
                .sum();
            describe_gap(range, &heartbeats, inconclusive, tz)
        })
        .collect();

    let exclusions = windows
        .iter()
        .filter_map(|e| {
            let minutes_in_month = e.window.minutes().intersect(&month).len();
            (minutes_in_month > 0).then(|| AppliedExclusion {
                id: e.id,
                start: local(e.window.start, tz),
                end: local(e.window.end, tz),
                reason: e.reason.clone(),
                announced_at: e.announced_at.map(|at| local(at, tz)),
                prior_notice: e.has_prior_notice(),
                source: e.source.as_str(),
                recorded_at: local(e.recorded_at, tz),
                recorded_by: e.recorded_by.clone(),
                minutes_in_month,
            })
        })
        .collect();

    let mut days = days(statement, elapsed, tz, &verdict_of);
    for day in &mut days {
        day.delivery = delivery_by_day
            .remove(&day.date)
            .and_then(DeliveryTally::finish);
    }
    let elapsed_excluded = book.excluded().count_within(elapsed);
    let observed = days
        .iter()
        .map(|d| d.available_minutes + d.failure_minutes)
        .sum::<i64>();
    let basis = elapsed.len() - elapsed_excluded;
    let settlement = crate::settlement::settle(&store.settlement_facts().await?, now);
    let given_up_probers = settlement
        .given_up
        .iter()
        .map(|m| {
            format!(
                "{}: last report {}, everything it started before {} stored",
                m.prober,
                local(m.reported_at, tz),
                local(m.complete_until, tz)
            )
        })
        .collect();
    let coverage = Coverage {
        elapsed_minutes: elapsed.len(),
        observed_minutes: observed,
        excluded_minutes: elapsed_excluded,
        no_data_minutes: basis - observed,
        coverage_percent: percent_2dp(observed, basis),
        gaps,
        given_up_probers,
    };

    Ok(Evidence {
        target: target.name.clone(),
        timezone: tz.name().to_owned(),
        generated_at: local(now, tz),
        improbe_version: env!("CARGO_PKG_VERSION"),
        figures: SlaRecord::from(statement),
        incidents,
        coverage,
        exclusions,
        days,
        undelivered,
        undelivered_total,
        digest: digest.finish(attempts),
        words: contract.words(),
    })
}

/// The errors of the attempts that started within `range`, grouped as an
/// incident's are in the report, most frequent first.
pub async fn errors_within(
    store: &dyn Store,
    target: &Target,
    range: MinuteRange,
) -> anyhow::Result<Vec<ErrorGroup>> {
    let tz = target.sla.calendar.timezone;
    let mut behind = AttemptsBehind::default();
    store
        .visit_attempts(&target.name, range, &mut |attempt: Attempt| {
            behind.add(&attempt, tz)
        })
        .await?;
    Ok(error_groups(behind.errors, target))
}

/// What the heartbeats and the inconclusive attempts say about minutes
/// without a conclusive verdict, in words (the report's coverage gaps).
pub async fn gap_reason(
    store: &dyn Store,
    target: &Target,
    range: MinuteRange,
) -> anyhow::Result<String> {
    let (book, _) = accounting::minute_book(store, &target.name, range).await?;
    let inconclusive = (range.start.0..range.end.0)
        .map(|m| book.counts(Minute(m)).inconclusive)
        .sum();
    let heartbeats = store.heartbeats(range).await?;
    Ok(describe_gap(
        range,
        &heartbeats,
        inconclusive,
        target.sla.calendar.timezone,
    )
    .heartbeat)
}

/// Error groups, flagged where the provider's table does not know the code,
/// most frequent first.
fn error_groups(errors: BTreeMap<ErrorKey, ErrorGroup>, target: &Target) -> Vec<ErrorGroup> {
    let mut groups: Vec<ErrorGroup> = errors.into_values().collect();
    for group in &mut groups {
        group.unclassified_code = group.outcome == Outcome::Fail
            && group
                .error_code
                .as_deref()
                .is_some_and(|code| target.provider.is_unclassified_code(code));
    }
    groups.sort_by_key(|e| std::cmp::Reverse(e.count));
    groups
}

/// (HTTP status, error code, outcome): what tells errors apart.
type ErrorKey = (Option<i32>, Option<String>, Outcome);

/// The attempts behind one incident, accumulated as they stream past.
#[derive(Default)]
struct AttemptsBehind {
    attempts: BTreeMap<Kind, OutcomeTally>,
    errors: BTreeMap<ErrorKey, ErrorGroup>,
    probers: BTreeSet<String>,
    delivery: DeliveryTally,
}

impl AttemptsBehind {
    fn add_folded(&mut self, key: &RollupKey, rollup: &Rollup) {
        self.delivery.add_folded(rollup);
        self.attempts.entry(key.kind).or_default().ok += rollup.ok;
    }

    fn add(&mut self, attempt: &Attempt, tz: Tz) {
        self.delivery.add(attempt);
        let tally = self.attempts.entry(attempt.kind).or_default();
        match attempt.outcome {
            Outcome::Ok => tally.ok += 1,
            Outcome::Fail => tally.fail += 1,
            Outcome::Inconclusive => tally.inconclusive += 1,
        }
        if attempt.outcome == Outcome::Ok {
            return;
        }
        if attempt.outcome == Outcome::Fail {
            self.probers.insert(attempt.prober.clone());
        }
        let key = (
            attempt.http_status,
            attempt.error_code.clone(),
            attempt.outcome,
        );
        let group = self.errors.entry(key).or_insert_with(|| ErrorGroup {
            http_status: attempt.http_status,
            error_code: attempt.error_code.clone(),
            outcome: attempt.outcome,
            unclassified_code: false,
            count: 0,
            samples: Vec::new(),
        });
        group.count += 1;
        if group.samples.len() < SAMPLES_PER_ERROR {
            group.samples.push(ErrorSample::of(attempt, tz));
        }
    }
}

impl ErrorSample {
    fn of(attempt: &Attempt, tz: Tz) -> ErrorSample {
        ErrorSample {
            started_at: local(attempt.started_at, tz),
            prober: attempt.prober.clone(),
            kind: attempt.kind,
            latency_ms: attempt.latency_ms,
            error: attempt.error.as_deref().map(crate::attempt::quoted),
        }
    }
}

fn describe_gap(range: MinuteRange, heartbeats: &[Heartbeat], inconclusive: i64, tz: Tz) -> Gap {
    let mut by_prober: BTreeMap<&str, ProberActivity> = BTreeMap::new();
    for beat in heartbeats.iter().filter(|b| range.contains(b.minute)) {
        let activity = by_prober
            .entry(beat.prober.as_str())
            .or_insert_with(|| ProberActivity {
                prober: beat.prober.clone(),
                minutes_alive: 0,
                started: 0,
                skipped: 0,
                finished: 0,
            });
        activity.minutes_alive += 1;
        activity.started += beat.started;
        activity.skipped += beat.skipped;
        activity.finished += beat.finished;
    }
    let probers: Vec<ProberActivity> = by_prober.into_values().collect();
    let alive = heartbeats
        .iter()
        .filter(|b| range.contains(b.minute))
        .map(|b| b.minute)
        .collect::<BTreeSet<_>>()
        .len();
    let finished: i64 = probers.iter().map(|p| p.finished).sum();
    let heartbeat = if probers.is_empty() {
        "no prober heartbeat: no prober was running (or these attempts were imported)".to_owned()
    } else {
        let mut text = format!(
            "a prober was up in {alive} of {} minutes; {finished} attempts finished",
            range.len()
        );
        if inconclusive > 0 {
            text.push_str(&format!(
                ", {inconclusive} of them inconclusive (our side, not the provider)"
            ));
        }
        text
    };
    Gap {
        start: local(range.start.start(), tz),
        end: local(range.end.start(), tz),
        minutes: range.len(),
        heartbeat,
        inconclusive_attempts: inconclusive,
        probers,
    }
}

fn days(
    statement: &MonthStatement,
    elapsed: MinuteRange,
    tz: Tz,
    verdict_of: &dyn Fn(Minute) -> Verdict,
) -> Vec<Day> {
    let month = statement.month.minutes();
    let mut days: BTreeMap<NaiveDate, Day> = BTreeMap::new();
    for m in month.start.0..month.end.0 {
        let minute = Minute(m);
        let date = minute.start().with_timezone(&tz).date_naive();
        let day = days.entry(date).or_insert_with(|| Day {
            date,
            total_minutes: 0,
            available_minutes: 0,
            failure_minutes: 0,
            excluded_minutes: 0,
            no_data_minutes: 0,
            future_minutes: 0,
            delivery: None,
        });
        day.total_minutes += 1;
        if !elapsed.contains(minute) {
            day.future_minutes += 1;
            continue;
        }
        match verdict_of(minute) {
            Verdict::Available => day.available_minutes += 1,
            Verdict::Failure => day.failure_minutes += 1,
            Verdict::Excluded => day.excluded_minutes += 1,
            Verdict::NoData => day.no_data_minutes += 1,
        }
    }
    days.into_values().collect()
}

/// An instant in the SLA's zone, to the second.
fn local(instant: DateTime<Utc>, tz: Tz) -> String {
    instant
        .with_timezone(&tz)
        .to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// `part / whole` as a percentage with two decimals, rounded down.
fn percent_2dp(part: i64, whole: i64) -> String {
    if whole <= 0 {
        return "100.00".to_owned();
    }
    let hundredths = part * 10_000 / whole;
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_down() {
        assert_eq!(percent_2dp(2, 3), "66.66");
        assert_eq!(percent_2dp(0, 5), "0.00");
        assert_eq!(percent_2dp(5, 5), "100.00");
    }
}
