//! Per-target, per-operation probe loops: interval, jittered start slots, in-flight bound,
//! per-attempt deadline, send quotas. The scheduler owns timing; probes only
//! report outcomes, and attempts leave through a channel, never waiting on
//! the database.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::attempt::{Attempt, InconclusiveReason, Kind, Outcome, local_resource_fault, to_millis};
use crate::clock::Clock;
use crate::config::{SendMode, Target, humanize};
use crate::daemon::control::ControlCheck;
use crate::daemon::metrics::AttemptMetrics;
use crate::minute::Minute;
use crate::probe::{Probe, ProbeOutcome};
use crate::sync::Locked;

/// At most this many attempts of one operation run at once: a hung attempt
/// never delays the next start, but a hanging provider cannot pile up tasks.
pub const MAX_IN_FLIGHT_PER_OPERATION: usize = 2;
/// After the stop signal, attempts in flight get this long to finish; any
/// still running then is abandoned unrecorded (it has no outcome yet), so a
/// stop stays within a container platform's 10 s kill timeout even with a
/// provider that hangs. Together with the writer's `STOP_WRITE_DEADLINE`
/// this bounds a stop.
pub const STOP_GRACE_FOR_ATTEMPTS: Duration = Duration::from_secs(5);
/// Slots are never shorter than this.
pub const MIN_START_SLOT: Duration = Duration::from_millis(10);

/// The slot length for loops at `interval` when `operations` loops run and
/// about `burst` starts share a slot (`[prober] start_burst`,
/// `config::DEFAULT_START_BURST` says why).
pub fn start_slot(interval: Duration, operations: usize, burst: usize) -> Duration {
    let slots = (operations / burst.max(1)).max(1) as u32;
    (interval / slots).clamp(MIN_START_SLOT.min(interval), interval)
}
/// Seconds in the day a send quota is counted over.
const SECONDS_PER_DAY: u64 = 86_400;
/// The same inconclusive reason is logged at most once per this period per target.
const INCONCLUSIVE_LOG_EVERY: Duration = Duration::from_secs(60);

/// How one operation of one target is scheduled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationPlan {
    pub kind: Kind,
    pub interval: Duration,
    /// Skip further attempts in a minute that already holds a success.
    pub minute_proof: bool,
}

impl OperationPlan {
    fn is_send(&self) -> bool {
        self.kind != Kind::Login
    }
}

/// The plan for a target's operations, and what the plan had to change to
/// respect `max_sends_per_day` (said at start-up, never silently).
pub fn plan(target: &Target) -> (Vec<OperationPlan>, Vec<String>) {
    let sends = target
        .operations
        .iter()
        .filter(|k| **k != Kind::Login)
        .count() as u64;
    let mut notes = Vec::new();
    let mut send_interval = target.interval;
    if let (Some(max), true) = (target.max_sends_per_day, sends > 0) {
        // Spread evenly: each send operation gets max / sends per day.
        let min_interval = Duration::from_secs((SECONDS_PER_DAY * sends).div_ceil(u64::from(max)));
        let per_day = |interval: Duration, minute_proof: bool| {
            let per_op = SECONDS_PER_DAY * 1000 / interval.as_millis().max(1) as u64;
            // A healthy minute_proof minute costs one send per operation.
            sends
                * if minute_proof {
                    per_op.min(24 * 60)
                } else {
                    per_op
                }
        };
        let minute_proof = target.mode == SendMode::MinuteProof;
        if per_day(target.interval, minute_proof) > u64::from(max) && min_interval > target.interval
        {
            send_interval = min_interval;
            notes.push(format!(
                "target {}: {} sends a day would exceed max_sends_per_day = {max}; each send operation now runs every {} instead of {}",
                target.name,
                per_day(target.interval, minute_proof),
                humanize(send_interval),
                humanize(target.interval)
            ));
        }
    }
    let plans = target
        .operations
        .iter()
        .map(|&kind| {
            let is_send = kind != Kind::Login;
            OperationPlan {
                kind,
                interval: if is_send {
                    send_interval
                } else {
                    target.login_interval.unwrap_or(target.interval)
                },
                minute_proof: is_send && target.mode == SendMode::MinuteProof,
            }
        })
        .collect();
    (plans, notes)
}

/// Paces sends to a daily quota: by any moment of the day, at most the share
/// of the quota that the elapsed part of the day allows, plus one hour's share
/// of slack, and never more than the quota itself.
pub struct SendBudget {
    max: u32,
    timezone: Tz,
    used: Mutex<(NaiveDate, u32)>,
}

impl SendBudget {
    pub fn new(max: u32, timezone: Tz) -> Self {
        Self {
            max,
            timezone,
            used: Mutex::new((NaiveDate::MIN, 0)),
        }
    }

    /// Takes one send from the budget, or says there is none left for now.
    pub fn try_take(&self, now: DateTime<Utc>) -> bool {
        let local = now.with_timezone(&self.timezone);
        let seconds_into_day = u64::from(
            local
                .time()
                .signed_duration_since(chrono::NaiveTime::MIN)
                .num_seconds()
                .max(0) as u32,
        );
        let slack = (self.max / 24).max(1);
        let allowed = (u64::from(self.max) * seconds_into_day / SECONDS_PER_DAY) as u32 + slack;
        let allowed = allowed.min(self.max);
        let mut used = self.used.locked();
        if used.0 != local.date_naive() {
            *used = (local.date_naive(), 0);
        }
        if used.1 < allowed {
            used.1 += 1;
            true
        } else {
            false
        }
    }
}

/// Counts of what the scheduler did, for logs, heartbeats and metrics.
#[derive(Debug, Default)]
pub struct ScheduleCounters {
    pub scheduled: AtomicU64,
    pub started: AtomicU64,
    pub finished: AtomicU64,
    /// Starts skipped because too many attempts of the operation were in flight.
    pub skipped_in_flight: AtomicU64,
    /// Sends skipped because their minute already held a success.
    pub skipped_minute_proof: AtomicU64,
    /// Sends skipped because the daily quota was used up for now.
    pub skipped_budget: AtomicU64,
    /// Attempts still running [`STOP_GRACE_FOR_ATTEMPTS`] after a stop, abandoned.
    pub abandoned_at_stop: AtomicU64,
    /// Worst lateness of a start against its schedule, in microseconds.
    pub max_lateness_us: AtomicU64,
    /// How late starts were against their schedule.
    pub lateness: LatenessHistogram,
    /// Attempts by target, kind and outcome.
    pub attempts: AttemptMetrics,
}

/// Upper bounds (milliseconds) of the lateness histogram's buckets.
pub const LATENESS_BUCKETS_MS: [u64; 16] = [
    1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 75, 100, 200, 500, 1_000, 5_000,
];

/// Counts of start lateness per bucket; the last slot counts the rest.
#[derive(Debug, Default)]
pub struct LatenessHistogram {
    counts: [AtomicU64; LATENESS_BUCKETS_MS.len() + 1],
    sum_us: AtomicU64,
}

impl LatenessHistogram {
    pub fn record(&self, lateness: Duration) {
        let ms = lateness.as_millis() as u64;
        let slot = LATENESS_BUCKETS_MS
            .iter()
            .position(|bound| ms < *bound)
            .unwrap_or(LATENESS_BUCKETS_MS.len());
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add(lateness.as_micros() as u64, Ordering::Relaxed);
    }

    /// Total lateness of all starts, in seconds.
    pub fn sum_seconds(&self) -> f64 {
        self.sum_us.load(Ordering::Relaxed) as f64 / 1e6
    }

    /// Counts per bucket, in the order of [`LATENESS_BUCKETS_MS`] then the overflow.
    pub fn counts(&self) -> Vec<u64> {
        self.counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }

    /// The bucket bound below which at least `percent` of starts fell
    /// (`None`: beyond the last bound, or nothing recorded).
    pub fn percentile_bound_ms(&self, percent: u64) -> Option<u64> {
        let counts = self.counts();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let mut seen = 0;
        for (i, count) in counts.iter().enumerate() {
            seen += count;
            if seen * 100 >= total * percent {
                return LATENESS_BUCKETS_MS.get(i).copied();
            }
        }
        None
    }
}

/// Everything the probe loops share.
pub struct Scheduler {
    pub prober: String,
    pub clock: Arc<dyn Clock>,
    pub sink: mpsc::Sender<Attempt>,
    pub control: Option<Arc<ControlCheck>>,
    pub counters: Arc<ScheduleCounters>,
    inconclusive_logged: Mutex<HashMap<(String, String), Instant>>,
    /// Origin of the start grid.
    epoch: Instant,
    /// How many operation loops run in all (the sum of [`plan`]'s
    /// operations over the targets), for the slot size.
    operations: usize,
    /// About how many starts share a slot.
    burst: usize,
}

impl Scheduler {
    pub fn new(
        prober: String,
        clock: Arc<dyn Clock>,
        sink: mpsc::Sender<Attempt>,
        control: Option<Arc<ControlCheck>>,
        operations: usize,
        burst: usize,
    ) -> Arc<Self> {
        Arc::new(Self {
            prober,
            clock,
            sink,
            control,
            counters: Arc::new(ScheduleCounters::default()),
            inconclusive_logged: Mutex::new(HashMap::new()),
            epoch: Instant::now(),
            operations,
            burst,
        })
    }

    /// Probes one target until `stop` turns true, then waits for the
    /// attempts in flight (each bounded by the target's timeout).
    pub async fn run_target(
        self: Arc<Self>,
        target: Arc<Target>,
        plans: Vec<OperationPlan>,
        probe: Arc<dyn Probe>,
        stop: watch::Receiver<bool>,
    ) {
        let budget = target
            .max_sends_per_day
            .map(|max| Arc::new(SendBudget::new(max, target.sla.calendar.timezone)));
        let mut loops = JoinSet::new();
        for plan in plans {
            let operation = Operation {
                scheduler: self.clone(),
                target: target.clone(),
                probe: probe.clone(),
                budget: budget.clone(),
                last_success_minute: Arc::new(AtomicI64::new(i64::MIN)),
                plan,
            };
            loops.spawn(operation.run(stop.clone()));
        }
        while loops.join_next().await.is_some() {}
    }

    fn log_inconclusive(&self, attempt: &Attempt) {
        let reason = attempt
            .reason
            .map_or("", InconclusiveReason::as_str)
            .to_owned();
        let key = (attempt.target.clone(), reason.clone());
        let now = Instant::now();
        let mut logged = self.inconclusive_logged.locked();
        if logged
            .get(&key)
            .is_some_and(|at| now.duration_since(*at) < INCONCLUSIVE_LOG_EVERY)
        {
            return;
        }
        logged.insert(key, now);
        tracing::error!(
            target = %attempt.target,
            kind = %attempt.kind,
            prober = %self.prober,
            reason = %reason,
            error_code = attempt.error_code.as_deref().unwrap_or(""),
            error = attempt.error.as_deref().unwrap_or(""),
            "inconclusive attempts: the fault is on our side, and while it lasts real outages go unseen"
        );
    }
}

struct Operation {
    scheduler: Arc<Scheduler>,
    target: Arc<Target>,
    probe: Arc<dyn Probe>,
    budget: Option<Arc<SendBudget>>,
    last_success_minute: Arc<AtomicI64>,
    plan: OperationPlan,
}

impl Operation {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        let counters = self.scheduler.counters.clone();
        let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT_PER_OPERATION));
        let mut in_flight = JoinSet::new();
        // Spread the operations of many targets over the interval, on the
        // shared grid of start slots.
        let slot = start_slot(
            self.plan.interval,
            self.scheduler.operations,
            self.scheduler.burst,
        );
        let slots = (self.plan.interval.as_nanos() / slot.as_nanos()).max(1) as u32;
        let offset = slot * fastrand::u32(0..slots);
        let epoch = self.scheduler.epoch;
        let mut next = epoch + offset;
        // A start on the grid that passed less than an interval ago (the
        // first slot, since the epoch was taken a moment before) is due now,
        // not an interval later: probing starts in the daemon's first second.
        while next + self.plan.interval <= Instant::now() {
            next += self.plan.interval;
        }
        // That first start is due as soon as the loop runs, not late: its
        // lateness is measured from when it became due.
        let mut first_due = Some(next.max(Instant::now()));
        let this = Arc::new(self);
        loop {
            if *stop.borrow() {
                break;
            }
            tokio::select! {
                biased;
                _ = stop.changed() => continue,
                _ = tokio::time::sleep_until(next) => {}
            }
            let scheduled = first_due.take().unwrap_or(next);
            next += this.plan.interval;
            let now = Instant::now();
            if next <= now {
                // Far behind (a suspended host): resume the grid from now.
                next = now + this.plan.interval;
            }
            let lateness = now.duration_since(scheduled);
            counters
                .max_lateness_us
                .fetch_max(lateness.as_micros() as u64, Ordering::Relaxed);
            counters.lateness.record(lateness);
            counters.scheduled.fetch_add(1, Ordering::Relaxed);
            while in_flight.try_join_next().is_some() {}

            let wall = this.scheduler.clock.now();
            if this.plan.minute_proof
                && this.last_success_minute.load(Ordering::Relaxed) == Minute::containing(&wall).0
            {
                counters
                    .skipped_minute_proof
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                counters.skipped_in_flight.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    target = %this.target.name,
                    kind = %this.plan.kind,
                    prober = %this.scheduler.prober,
                    "start skipped: {MAX_IN_FLIGHT_PER_OPERATION} attempts still in flight"
                );
                continue;
            };
            if this.plan.is_send() && this.budget.as_ref().is_some_and(|b| !b.try_take(wall)) {
                counters.skipped_budget.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(target = %this.target.name, kind = %this.plan.kind, "send skipped: max_sends_per_day reached for now");
                continue;
            }
            counters.started.fetch_add(1, Ordering::Relaxed);
            let operation = this.clone();
            in_flight.spawn(async move {
                operation.attempt_once().await;
                drop(permit);
            });
        }
        let grace = tokio::time::sleep(STOP_GRACE_FOR_ATTEMPTS);
        tokio::pin!(grace);
        loop {
            tokio::select! {
                joined = in_flight.join_next() => if joined.is_none() { break },
                _ = &mut grace => {
                    let abandoned = in_flight.len();
                    in_flight.abort_all();
                    counters
                        .abandoned_at_stop
                        .fetch_add(abandoned as u64, Ordering::Relaxed);
                    tracing::warn!(
                        target = %this.target.name,
                        kind = %this.plan.kind,
                        abandoned,
                        "stopping: attempts still unanswered after {} are abandoned unrecorded",
                        humanize(STOP_GRACE_FOR_ATTEMPTS)
                    );
                    break;
                }
            }
        }
    }

    async fn attempt_once(&self) {
        let scheduler = &self.scheduler;
        let started_at = scheduler.clock.now();
        let started = Instant::now();
        let mut result =
            match tokio::time::timeout(self.target.timeout, self.probe.attempt(self.plan.kind))
                .await
            {
                Ok(result) => result,
                Err(_) => ProbeOutcome::timed_out(self.target.timeout),
            };
        let latency = result.answered_after.unwrap_or_else(|| started.elapsed());
        // Only a transport error (no status, no provider code) can be ours:
        // a provider's own message cannot turn its failure into our fault.
        if result.outcome == Outcome::Fail
            && result.http_status.is_none()
            && result.error_code.is_none()
            && result.error.as_deref().is_some_and(local_resource_fault)
        {
            result.outcome = Outcome::Inconclusive;
            result.reason = Some(InconclusiveReason::Prober);
        }
        if result.outcome == Outcome::Fail
            && let Some(control) = &scheduler.control
            && !control.network_ok().await
        {
            result.outcome = Outcome::Inconclusive;
            result.reason = Some(InconclusiveReason::LocalNetwork);
        }
        if result.outcome == Outcome::Ok {
            self.last_success_minute
                .store(Minute::containing(&started_at).0, Ordering::Relaxed);
        }
        let attempt = Attempt {
            target: self.target.name.clone(),
            prober: scheduler.prober.clone(),
            kind: self.plan.kind,
            started_at: to_millis(started_at),
            latency_ms: Some(latency.as_millis() as i64),
            outcome: result.outcome,
            http_status: result.http_status,
            error_code: result.error_code,
            error: result.error,
            reason: result.reason,
            delivery: result.delivery,
        }
        .with_bounded_text();
        tracing::debug!(target = %attempt.target, kind = %attempt.kind, prober = %attempt.prober, outcome = %attempt.outcome, latency_ms = attempt.latency_ms, "attempt");
        if attempt.outcome == Outcome::Inconclusive {
            scheduler.log_inconclusive(&attempt);
        }
        scheduler.counters.finished.fetch_add(1, Ordering::Relaxed);
        scheduler.counters.attempts.record(&attempt);
        if attempt.outcome == Outcome::Fail
            && let Some(code) = &attempt.error_code
            && self.target.provider.is_unclassified_code(code)
        {
            scheduler
                .counters
                .attempts
                .record_unclassified_code(&attempt.target, code);
        }
        // The writer drains this channel into memory at once; it only fills
        // if the writer task itself has died, and then waiting is right.
        if scheduler.sink.send(attempt).await.is_err() {
            tracing::error!("attempt writer is gone; attempt dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_group_about_32_starts() {
        let five = Duration::from_secs(5);
        // 100 targets x 3 operations: 9 slots of 555 ms.
        assert_eq!(start_slot(five, 300, 32), Duration::from_nanos(555_555_555));
        // 1,000 targets: 93 slots of 53 ms.
        assert_eq!(start_slot(five, 3_000, 32).as_millis(), 53);
        // A few loops share one slot; huge numbers stop at the floor.
        assert_eq!(start_slot(five, 3, 32), five);
        assert_eq!(start_slot(five, 1_000_000, 32), MIN_START_SLOT);
        assert_eq!(
            start_slot(Duration::from_millis(5), 1_000_000, 32),
            Duration::from_millis(5)
        );
        // `start_burst = 1`: a slot per start; a burst as large as the
        // loops: all of them at once.
        assert_eq!(start_slot(five, 300, 1).as_micros(), 16_666);
        assert_eq!(start_slot(five, 300, 300), five);
    }

    #[test]
    fn lateness_percentiles_come_from_the_buckets() {
        let h = LatenessHistogram::default();
        assert_eq!(
            h.percentile_bound_ms(99),
            None,
            "nothing recorded, nothing claimed"
        );
        for _ in 0..98 {
            h.record(Duration::from_micros(400));
        }
        h.record(Duration::from_millis(12));
        h.record(Duration::from_millis(60));
        assert_eq!(h.percentile_bound_ms(50), Some(1));
        assert_eq!(h.percentile_bound_ms(99), Some(15));
        assert_eq!(h.percentile_bound_ms(100), Some(75));
        assert!((h.sum_seconds() - (98.0 * 0.0004 + 0.012 + 0.060)).abs() < 1e-9);
    }
}
