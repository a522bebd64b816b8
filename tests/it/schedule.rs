//! Scheduling logic under tokio's paused clock, with an in-test fake provider:
//! minutes pass exactly and instantly, and faults are scripted per minute.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use improbe::attempt::{Attempt, Kind, Outcome};
use improbe::clock::{Clock, TokioClock};
use improbe::config::Config;
use improbe::daemon::schedule::{self, ScheduleCounters, Scheduler};
use improbe::minute::Minute;
use improbe::probe::{Probe, ProbeOutcome};
use improbe::verdict::{self, OutcomeCounts, Verdict};
use tokio::sync::{mpsc, watch};

const START: &str = "2026-04-01T00:00:00Z";

/// What the fake provider does in a given minute (counted from START).
type Script = dyn Fn(Kind, i64) -> Behaviour + Send + Sync;

#[derive(Clone, Copy)]
enum Behaviour {
    Answer(Outcome),
    Hang(Duration),
}

struct FakeProvider {
    clock: Arc<dyn Clock>,
    script: Box<Script>,
    calls: AtomicU64,
}

#[async_trait]
impl Probe for FakeProvider {
    async fn attempt(&self, kind: Kind) -> ProbeOutcome {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let start: DateTime<Utc> = START.parse().unwrap();
        let minute = (self.clock.now() - start).num_minutes();
        match (self.script)(kind, minute) {
            Behaviour::Answer(Outcome::Ok) => ProbeOutcome::ok(Some(200)),
            Behaviour::Answer(Outcome::Fail) => {
                ProbeOutcome::fail(Some(200), Some("70500".into()), "internal error")
            }
            Behaviour::Answer(Outcome::Inconclusive) => ProbeOutcome::inconclusive(
                improbe::attempt::InconclusiveReason::Credentials,
                Some(200),
                Some("70001".into()),
                "expired",
            ),
            Behaviour::Hang(d) => {
                tokio::time::sleep(d).await;
                ProbeOutcome::ok(Some(200))
            }
        }
    }
}

fn target(extra: &str) -> Config {
    let text = format!(
        "[[targets]]\nname = \"t\"\nprovider = \"simulator\"\n{extra}\n[targets.sla]\nservice_start = \"2026-03-17\"\ntimezone = \"UTC\"\nmonthly_fee = \"1\"\n"
    );
    Config::parse(&text, "test").unwrap()
}

/// Starts the scheduler on the config's first target with a fake provider.
fn start(
    config: &Config,
    script: Box<Script>,
    sink: mpsc::Sender<Attempt>,
) -> (
    Arc<Scheduler>,
    watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(START.parse().unwrap()));
    let target = Arc::new(config.targets[0].clone());
    let (plans, _) = improbe::daemon::schedule::plan(&target);
    let scheduler = Scheduler::new(
        "fake".into(),
        clock.clone(),
        sink,
        None,
        plans.len(),
        improbe::config::DEFAULT_START_BURST,
    );
    let probe = Arc::new(FakeProvider {
        clock,
        script,
        calls: AtomicU64::new(0),
    });
    let (stop, stopped) = watch::channel(false);
    let running = tokio::spawn(scheduler.clone().run_target(target, plans, probe, stopped));
    (scheduler, stop, running)
}

/// Runs the scheduler for `duration` of paused time; returns every attempt.
async fn run_for(
    config: &Config,
    script: Box<Script>,
    duration: Duration,
    sink_capacity: usize,
) -> (Vec<Attempt>, Arc<ScheduleCounters>) {
    let (sink, mut attempts) = mpsc::channel(sink_capacity);
    let (scheduler, stop, running) = start(config, script, sink);
    let collect = tokio::spawn(async move {
        let mut all = Vec::new();
        while let Some(a) = attempts.recv().await {
            all.push(a);
        }
        all
    });
    tokio::time::sleep(duration).await;
    stop.send(true).unwrap();
    running.await.unwrap();
    let counters = scheduler.counters.clone();
    drop(scheduler);
    let attempts = collect.await.unwrap();
    assert_eq!(
        attempts.len() as u64,
        counters.finished.load(Ordering::Relaxed)
    );
    (attempts, counters)
}

fn by_minute(attempts: &[Attempt]) -> BTreeMap<i64, Vec<&Attempt>> {
    let start = Minute::containing(&START.parse::<DateTime<Utc>>().unwrap()).0;
    let mut minutes: BTreeMap<i64, Vec<&Attempt>> = BTreeMap::new();
    for a in attempts {
        minutes.entry(a.minute().0 - start).or_default().push(a);
    }
    minutes
}

fn decide(attempts: &[&Attempt]) -> Verdict {
    let mut counts = OutcomeCounts::default();
    for a in attempts {
        match a.outcome {
            Outcome::Ok => counts.ok += 1,
            Outcome::Fail => counts.fail += 1,
            Outcome::Inconclusive => counts.inconclusive += 1,
        }
    }
    verdict::decide(counts, false)
}

#[tokio::test(start_paused = true)]
async fn a_provider_that_hangs_past_the_interval_gives_failure_minutes_not_gaps() {
    let config = target("interval = \"5s\"\ntimeout = \"5s\"\noperations = [\"login\"]");
    // Minutes 1 and 2 hang for a minute per request; the others answer at once.
    let script = Box::new(|_, minute| {
        if minute == 1 || minute == 2 {
            Behaviour::Hang(Duration::from_secs(60))
        } else {
            Behaviour::Answer(Outcome::Ok)
        }
    });
    let (attempts, _) = run_for(&config, script, Duration::from_secs(4 * 60), 1024).await;
    let minutes = by_minute(&attempts);
    assert_eq!(decide(&minutes[&0]), Verdict::Available);
    assert_eq!(decide(&minutes[&1]), Verdict::Failure);
    assert_eq!(decide(&minutes[&2]), Verdict::Failure);
    assert_eq!(decide(&minutes[&3]), Verdict::Available);
    // Hung attempts never delayed the next start: 12 starts in every whole minute.
    for minute in 1..=2 {
        assert_eq!(minutes[&minute].len(), 12, "minute {minute}");
        assert!(
            minutes[&minute]
                .iter()
                .all(|a| a.error.as_deref() == Some("timeout after 5s"))
        );
        assert!(minutes[&minute].iter().all(|a| a.latency_ms == Some(5_000)));
    }
    // Starts stay on the 5 s grid.
    let starts: Vec<i64> = attempts.iter().map(|a| a.started_at_ms()).collect();
    assert!(
        starts.windows(2).all(|w| w[1] - w[0] == 5_000),
        "{starts:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn starts_skipped_by_the_in_flight_bound_are_counted() {
    let config = target("interval = \"1s\"\ntimeout = \"1s\"\noperations = [\"login\"]");
    // Nobody drains the sink after the first attempt: finished attempts wait
    // to be handed over, holding their slots, so later starts must be skipped.
    let script = Box::new(|_, _| Behaviour::Answer(Outcome::Ok));
    let (sink, _attempts) = mpsc::channel(1);
    let (scheduler, stop, running) = start(&config, script, sink);
    tokio::time::sleep(Duration::from_secs(30)).await;
    let counters = &scheduler.counters;
    assert_eq!(
        counters.started.load(Ordering::Relaxed),
        schedule::MAX_IN_FLIGHT_PER_OPERATION as u64 + 1
    );
    let skipped = counters.skipped_in_flight.load(Ordering::Relaxed);
    let scheduled = counters.scheduled.load(Ordering::Relaxed);
    assert_eq!(
        skipped + counters.started.load(Ordering::Relaxed),
        scheduled
    );
    assert!(skipped >= 25, "{skipped}");
    stop.send(true).unwrap();
    drop(_attempts);
    running.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn minute_proof_sends_once_in_a_healthy_minute_and_keeps_retrying_a_failing_one() {
    let config = target("interval = \"5s\"\ntimeout = \"5s\"\nmode = \"minute_proof\"");
    let script = Box::new(|kind, minute| match (kind, minute) {
        (Kind::Login, _) => Behaviour::Answer(Outcome::Ok),
        (_, 1) => Behaviour::Answer(Outcome::Fail),
        _ => Behaviour::Answer(Outcome::Ok),
    });
    let (attempts, counters) = run_for(&config, script, Duration::from_secs(3 * 60), 4096).await;
    let minutes = by_minute(&attempts);
    for (minute, expected_sends) in [(0, 1), (1, 12), (2, 1)] {
        for kind in [Kind::SendDirect, Kind::SendGroup] {
            let sends: Vec<_> = minutes[&minute].iter().filter(|a| a.kind == kind).collect();
            assert_eq!(sends.len(), expected_sends, "minute {minute} {kind}");
        }
        let logins = minutes[&minute]
            .iter()
            .filter(|a| a.kind == Kind::Login)
            .count();
        assert_eq!(logins, 12, "logins keep their interval in minute {minute}");
    }
    assert!(
        minutes[&1]
            .iter()
            .filter(|a| a.kind != Kind::Login)
            .all(|a| a.outcome == Outcome::Fail)
    );
    assert_eq!(
        counters.skipped_minute_proof.load(Ordering::Relaxed),
        2 * 2 * 11
    );
}

#[tokio::test(start_paused = true)]
async fn a_daily_send_quota_is_spread_over_the_day_and_never_exceeded() {
    for mode in ["fixed", "minute_proof"] {
        let config = target(&format!(
            "interval = \"5s\"\ntimeout = \"5s\"\nmode = \"{mode}\"\nmax_sends_per_day = 1000"
        ));
        let (_, notes) = schedule::plan(&config.targets[0]);
        assert!(notes[0].contains("max_sends_per_day = 1000"), "{notes:?}");
        // Sends fail all day long: minute_proof would retry every interval.
        let script = Box::new(|kind, _| {
            if kind == Kind::Login {
                Behaviour::Answer(Outcome::Ok)
            } else {
                Behaviour::Answer(Outcome::Fail)
            }
        });
        let (attempts, _) = run_for(&config, script, Duration::from_secs(86_400), 1 << 16).await;
        let sends: Vec<_> = attempts.iter().filter(|a| a.kind != Kind::Login).collect();
        assert!(sends.len() <= 1000, "{mode}: {} sends", sends.len());
        assert!(sends.len() >= 990, "{mode}: only {} sends", sends.len());
        // Evenly: no hour holds more than its share plus the hour of slack.
        let mut per_hour = BTreeMap::new();
        for s in &sends {
            *per_hour.entry(s.started_at.timestamp() / 3600).or_insert(0) += 1;
        }
        assert!(
            per_hour.values().all(|n| *n <= 2 * 1000 / 24 + 2),
            "{mode}: {per_hour:?}"
        );
        let logins = attempts.iter().filter(|a| a.kind == Kind::Login).count();
        assert_eq!(logins, 86_400 / 5, "{mode}: logins keep their interval");
    }
}
