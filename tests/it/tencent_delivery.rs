//! Tencent delivery confirmation against the built-in simulator over real
//! sockets: the watcher reads both histories back as Tencent's admin APIs
//! answer them (paging, the 13 KB cut, the 20-message group page), and a
//! send is `missing` only when a history read succeeded without it.

use std::sync::Arc;
use std::time::Duration;

use improbe::attempt::InconclusiveReason::Throttled;
use improbe::attempt::{Delivery, Kind, Outcome};
use improbe::clock::SystemClock;
use improbe::probe::delivery::DeliveryMode;
use improbe::probe::tencent::TencentProbe;
use improbe::probe::tencent::delivery::POLL_PERIOD;
use improbe::probe::{Probe, ProbeContext, ProbeOutcome};
use improbe::simulator::{self, Behaviour, Simulator};

/// Long enough for a read after the send's check time: the check time is
/// the deadline less the margin, one read's limit and one poll period.
const TIMEOUT: Duration = Duration::from_secs(4);

async fn simulator() -> Simulator {
    Simulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn confirming_probe(sim: &Simulator, prober: &str, mode: DeliveryMode) -> TencentProbe {
    confirming_probe_with(sim, prober, mode, TIMEOUT)
}

fn confirming_probe_with(
    sim: &Simulator,
    prober: &str,
    mode: DeliveryMode,
    timeout: Duration,
) -> TencentProbe {
    let context = ProbeContext {
        clock: Arc::new(SystemClock),
        target: format!("delivery-{prober}"),
        prober: prober.to_owned(),
        timeout,
        delivery: mode,
    };
    TencentProbe::for_target(&simulator::target_settings(&sim.endpoint()), &context).unwrap()
}

fn delivery(outcome: &ProbeOutcome) -> Option<Delivery> {
    outcome.delivery
}

fn sends(behaviour: Behaviour, sim: &Simulator) {
    sim.set_behaviour(Kind::SendDirect, behaviour.clone());
    sim.set_behaviour(Kind::SendGroup, behaviour);
}

#[tokio::test]
async fn healthy_sends_are_confirmed_with_their_delivery_time() {
    let sim = simulator().await;
    let probe = confirming_probe(&sim, "a", DeliveryMode::Record);
    for kind in [Kind::SendDirect, Kind::SendGroup] {
        let result = probe.attempt(kind).await;
        assert_eq!(result.outcome, Outcome::Ok, "{kind}: {result:?}");
        let Some(Delivery::Confirmed { after_ms: Some(ms) }) = delivery(&result) else {
            panic!("{kind} not confirmed: {result:?}");
        };
        assert!(
            (0..POLL_PERIOD.as_millis() as i64 * 2).contains(&ms),
            "{kind} seen by the first read, {ms} ms after its start"
        );
        let answered = result.answered_after.expect("the answer's time is kept");
        assert!(answered.as_millis() as i64 <= ms, "latency is the answer's");
    }
    let reads = sim.history_stats();
    assert!(reads.ok >= 2 && reads.error == 0, "{reads:?}");
    // The login is no send: nothing is read back for it.
    let before = sim.history_stats().received;
    assert_eq!(probe.attempt(Kind::Login).await.delivery, None);
    tokio::time::sleep(POLL_PERIOD * 2).await;
    assert_eq!(
        sim.history_stats().received,
        before,
        "no read while nothing waits"
    );
}

#[tokio::test]
async fn undelivered_sends_are_missing_and_fail_only_when_required() {
    let sim = simulator().await;
    sends(Behaviour::undelivered(), &sim);
    let record = confirming_probe(&sim, "a", DeliveryMode::Record);
    let require = confirming_probe(&sim, "b", DeliveryMode::Require);
    for kind in [Kind::SendDirect, Kind::SendGroup] {
        let (recorded, required) = tokio::join!(record.attempt(kind), require.attempt(kind));
        assert_eq!(recorded.outcome, Outcome::Ok, "{kind}: {recorded:?}");
        assert_eq!(recorded.delivery, Some(Delivery::Missing), "{kind}");
        assert_eq!(required.outcome, Outcome::Fail, "{kind}: {required:?}");
        assert_eq!(required.delivery, Some(Delivery::Missing));
        assert!(required.error.unwrap().contains("did not see it"));
    }
}

#[tokio::test]
async fn a_delay_within_the_timeout_is_confirmed_and_one_past_it_is_missing() {
    let sim = simulator().await;
    let probe = confirming_probe(&sim, "a", DeliveryMode::Record);
    sends(
        Behaviour {
            delivery_delay_ms: Some(600),
            ..Behaviour::healthy()
        },
        &sim,
    );
    for kind in [Kind::SendDirect, Kind::SendGroup] {
        let result = probe.attempt(kind).await;
        let Some(Delivery::Confirmed { after_ms: Some(ms) }) = result.delivery else {
            panic!("{kind}: {result:?}");
        };
        assert!(ms >= 600, "{kind} seen no earlier than it showed: {ms} ms");
    }
    sends(
        Behaviour {
            delivery_delay_ms: Some(60_000),
            ..Behaviour::healthy()
        },
        &sim,
    );
    for kind in [Kind::SendDirect, Kind::SendGroup] {
        let result = probe.attempt(kind).await;
        assert_eq!(
            result.delivery,
            Some(Delivery::Missing),
            "{kind}: {result:?}"
        );
        assert_eq!(result.outcome, Outcome::Ok);
    }
}

#[tokio::test]
async fn unreadable_histories_leave_sends_unconfirmed_never_missing_or_failed() {
    let sim = simulator().await;
    sends(Behaviour::undelivered(), &sim);
    let record = confirming_probe(&sim, "a", DeliveryMode::Record);
    let require = confirming_probe(&sim, "b", DeliveryMode::Require);
    let throttled = Behaviour::error(60007);
    let hang = Behaviour {
        hang: true,
        ..Behaviour::healthy()
    };
    for history in [throttled.clone(), Behaviour::http(503), hang] {
        sim.set_history_behaviour(history.clone());
        for kind in [Kind::SendDirect, Kind::SendGroup] {
            let (recorded, required) = tokio::join!(record.attempt(kind), require.attempt(kind));
            assert_eq!(
                (recorded.outcome, recorded.delivery),
                (Outcome::Ok, None),
                "{kind} with history {history:?}: {recorded:?}"
            );
            assert_ne!(required.outcome, Outcome::Fail, "{history:?}: {required:?}");
            assert_eq!(required.delivery, None, "{history:?}");
            if history == throttled {
                assert_eq!(
                    (required.outcome, required.reason),
                    (Outcome::Inconclusive, Some(Throttled)),
                    "a throttled read is ours"
                );
            } else {
                assert_eq!(
                    required.outcome,
                    Outcome::Ok,
                    "the provider's answer stands"
                );
            }
        }
    }
    assert!(sim.history_stats().error > 0);
}

#[tokio::test]
async fn two_probers_on_one_account_pair_confirm_only_their_own_sends() {
    let sim = simulator().await;
    let a = confirming_probe(&sim, "a", DeliveryMode::Record);
    let b = confirming_probe(&sim, "b", DeliveryMode::Record);
    for kind in [Kind::SendDirect, Kind::SendGroup] {
        sim.set_behaviour(kind, Behaviour::undelivered());
        let accepted_before = sim.stats(kind).ok;
        let lost = a.attempt(kind);
        let others = async {
            // Once a's send is accepted (and lost), b's go through and show.
            while sim.stats(kind).ok == accepted_before {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            sim.set_behaviour(kind, Behaviour::healthy());
            let mut seen = Vec::new();
            for _ in 0..3 {
                seen.push(b.attempt(kind).await);
            }
            seen
        };
        let (lost, others) = tokio::join!(lost, others);
        assert_eq!(lost.delivery, Some(Delivery::Missing), "{kind}: {lost:?}");
        for other in others {
            assert!(
                matches!(other.delivery, Some(Delivery::Confirmed { .. })),
                "{kind}: {other:?}"
            );
        }
    }
}

#[tokio::test]
async fn more_sends_than_one_page_all_match() {
    let sim = simulator().await;
    let probe = confirming_probe_with(&sim, "a", DeliveryMode::Record, Duration::from_secs(8));
    // 60 one-to-one messages are more than one 13 KB page; 30 group ones
    // more than one 20-message page.
    let direct = (0..60).map(|_| probe.attempt(Kind::SendDirect));
    let group = (0..30).map(|_| probe.attempt(Kind::SendGroup));
    let (direct, group) = tokio::join!(
        futures_util::future::join_all(direct),
        futures_util::future::join_all(group)
    );
    for result in direct.iter().chain(&group) {
        assert!(
            matches!(result.delivery, Some(Delivery::Confirmed { .. })),
            "{result:?}"
        );
    }
    assert_eq!(sim.stats(Kind::SendDirect).ok, 60);
    assert_eq!(sim.stats(Kind::SendGroup).ok, 30);
    let reads = sim.history_stats();
    assert!(
        reads.ok >= 4,
        "a read of each history needed more than one page: {reads:?}"
    );
}

/// A send's answer gives the server's time of the message, so the reads
/// that look for it cover the last seconds only, not a full page or more
/// of older messages.
#[tokio::test]
async fn reads_cover_from_the_answered_send_only() {
    let sim = simulator().await;
    let probe = confirming_probe_with(&sim, "a", DeliveryMode::Record, Duration::from_secs(8));
    // Older traffic: more than one 13 KB page one-to-one, more than two
    // 20-message pages in the group.
    let direct = (0..70).map(|_| probe.attempt(Kind::SendDirect));
    let group = (0..45).map(|_| probe.attempt(Kind::SendGroup));
    tokio::join!(
        futures_util::future::join_all(direct),
        futures_util::future::join_all(group)
    );
    // Past the second those were stamped with, and the answered slack.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let before = sim.history_stats().received;
    let (direct, group) = tokio::join!(
        probe.attempt(Kind::SendDirect),
        probe.attempt(Kind::SendGroup)
    );
    for result in [direct, group] {
        assert!(
            matches!(result.delivery, Some(Delivery::Confirmed { .. })),
            "{result:?}"
        );
    }
    let reads = sim.history_stats().received - before;
    // One read of each history: one page each. A read from a minute back
    // would take two pages one-to-one and three in the group.
    assert!(reads <= 3, "{reads} history requests for two sends");
}

/// Through `improbe run`: a Tencent target's sends are stored with their
/// delivery, and a lost one is in the report's undelivered list.
#[tokio::test]
async fn the_daemon_stores_tencent_deliveries_and_the_report_lists_the_lost() {
    use crate::common::{ConfigBuilder, InProcessDaemon, TestDb, all_attempts, wait};
    let sim = simulator().await;
    sim.set_behaviour(Kind::SendDirect, Behaviour::undelivered());
    let db = TestDb::sqlite();
    let text = ConfigBuilder::new("p1", &db.url)
        .simulator_target("tc", &sim.endpoint(), "4s", "4s")
        .build();
    let daemon = InProcessDaemon::start(&text).await;
    let store = db.store().await;
    let decided = |attempts: &[improbe::attempt::Attempt], kind: Kind| {
        attempts
            .iter()
            .filter(|a| a.kind == kind && a.delivery.is_some())
            .count()
    };
    wait::until(Duration::from_secs(30), || async {
        let attempts = all_attempts(store.as_ref(), "tc").await;
        if decided(&attempts, Kind::SendDirect) >= 1 && decided(&attempts, Kind::SendGroup) >= 1 {
            Ok(())
        } else {
            Err(format!("a decided send of each kind: {attempts:?}"))
        }
    })
    .await;
    daemon.stop().await;
    let attempts = all_attempts(store.as_ref(), "tc").await;
    for a in &attempts {
        match (a.kind, a.delivery) {
            (Kind::SendDirect, Some(d)) => assert_eq!(d, Delivery::Missing, "{a:?}"),
            (Kind::SendGroup, Some(d)) => {
                assert!(
                    matches!(d, Delivery::Confirmed { after_ms: Some(_) }),
                    "{a:?}"
                )
            }
            (Kind::Login, d) => assert_eq!(d, None),
            _ => {}
        }
        assert_eq!(a.outcome, Outcome::Ok, "recorded, not required: {a:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("improbe.toml"), &text).unwrap();
    let day = attempts[0].started_at.format("%Y-%m-%d").to_string();
    let report = crate::common::succeeded(crate::common::improbe_in(
        dir.path(),
        &db,
        &[
            "report", "--target", "tc", "--date", &day, "--format", "json",
        ],
    ));
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert!(
        report["undelivered_total"].as_u64().unwrap() >= 1,
        "{report}"
    );
}
