//! Many regions, one database (docs/many-regions.md): two probers on one
//! scripted clock, each writing the same PostgreSQL through its own delay
//! proxy (100 ms each way), each probing its own simulator. A minute is
//! announced only once every live prober has written it; a prober that
//! vanishes holds settlement back for the documented bound, no longer.

use std::time::Duration;

use crate::common::proxy::DelayProxy;
use crate::common::receivers::HttpReceiver;
use crate::common::{
    ConfigBuilder, InProcessDaemon, ScriptedClock, TestDb, at, stored_in_minute, verdicts, wait,
    written_before,
};
use improbe::attempt::{Attempt, Kind, Outcome};
use improbe::minute::Minute;
use improbe::settlement::{GIVE_UP_AFTER, settle};
use improbe::simulator::{Behaviour, Simulator};
use improbe::store::Store;
use improbe::verdict::Verdict;

const ONE_WAY_MS: u64 = 100;

struct Region {
    sim: Simulator,
    proxy: DelayProxy,
    daemon: Option<InProcessDaemon>,
}

/// Starts prober `id` probing target `t` on its own simulator, writing
/// through its own delay proxy, announcing incidents to `receiver`.
async fn region(
    id: &str,
    db: &TestDb,
    clock: &std::sync::Arc<ScriptedClock>,
    receiver: &HttpReceiver,
    dir: &std::path::Path,
    listen: bool,
) -> Region {
    let sim = Simulator::start_with_clock("127.0.0.1:0".parse().unwrap(), clock.clone())
        .await
        .unwrap();
    let proxy = DelayProxy::start(&db.url, ONE_WAY_MS);
    let data = dir.join(id);
    std::fs::create_dir_all(&data).unwrap();
    let mut config = ConfigBuilder::new(id, &proxy.url_for(&db.url))
        .data_dir(&data)
        .simulator_target("t", &sim.endpoint(), "1s", "1s")
        .raw(&format!(
            "[[notify]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}/hook/token\"\n\
             events = [\"incident_opened\", \"incident_resolved\"]\n",
            receiver.base
        ));
    if listen {
        config = config.prober("listen = \"127.0.0.1:0\"");
    }
    let daemon = InProcessDaemon::start_with_clock(&config.build(), clock.clone()).await;
    Region {
        sim,
        proxy,
        daemon: Some(daemon),
    }
}

fn fail_all(sim: &Simulator) {
    for kind in Kind::ALL {
        sim.set_behaviour(kind, Behaviour::http(503));
    }
}

fn heal_all(sim: &Simulator) {
    for kind in Kind::ALL {
        sim.set_behaviour(kind, Behaviour::healthy());
    }
}

async fn outbox_events(store: &dyn Store, event: &str) -> Vec<String> {
    store
        .notifications(None)
        .await
        .unwrap()
        .into_iter()
        .filter(|n| n.event == event)
        .map(|n| n.event_key)
        .collect()
}

/// Waits until each of `probers` has stored three attempts of `minute`
/// with `outcome`.
async fn each_stored(store: &dyn Store, probers: &[&str], minute: Minute, outcome: Outcome) {
    for prober in probers {
        let theirs = |a: &Attempt| a.prober == *prober && a.outcome == outcome;
        stored_in_minute(store, "t", minute, 3, theirs).await;
    }
}

/// Successful answers `sim` gave, of every operation.
fn answered_ok(sim: &Simulator) -> u64 {
    Kind::ALL.iter().map(|k| sim.stats(*k).ok).sum()
}

#[tokio::test]
async fn a_failure_one_region_saw_is_not_announced_before_the_other_regions_success_lands() {
    let db = TestDb::postgres().await;
    let store = db.store().await;
    let start = at("2026-04-10T10:00:00Z");
    let clock = ScriptedClock::starting_at(start);
    let receiver = HttpReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let first = Minute::containing(&start);
    let seconds = chrono::Duration::seconds;
    // `failing` sees every attempt fail. `far` succeeds in minute 0, fails
    // in minute 1 until 10:01:44, then succeeds; but from that moment its
    // writes are held back (its proxy frozen) until 10:02:2x: longer than
    // the minute's end plus every timeout (10:02:04), shorter than the 60 s
    // after which a silent prober is given up.
    let mut failing = region("failing", &db, &clock, &receiver, dir.path(), false).await;
    let mut far = region("far", &db, &clock, &receiver, dir.path(), false).await;
    // Both have connected (TLS through the delay costs handshakes) and
    // reported, before anything fails.
    written_before(store.as_ref(), 2, start).await;
    fail_all(&failing.sim);
    each_stored(store.as_ref(), &["failing"], first, Outcome::Fail).await;
    each_stored(store.as_ref(), &["far"], first, Outcome::Ok).await;
    fail_all(&far.sim);
    clock.jump_to(seconds(100));
    each_stored(store.as_ref(), &["far"], Minute(first.0 + 1), Outcome::Fail).await;
    // Its report of those is in too: it is live when its writes stop.
    written_before(store.as_ref(), 2, start + seconds(100)).await;
    far.proxy.freeze();
    let answered_before = answered_ok(&far.sim);
    heal_all(&far.sim);
    // Its successes are answered, and wait behind the frozen proxy.
    wait::until_true(
        "three successes of `far`",
        Duration::from_secs(20),
        async || answered_ok(&far.sim) >= answered_before + 3,
    )
    .await;
    clock.jump_to(seconds(125));

    // Minute 1 now holds both regions' failures and none of the far
    // region's successes, and its end plus every timeout is past: it reads
    // as a failure, and still nothing may be announced.
    wait::until_true(
        "minute 1 to read as a failure",
        Duration::from_secs(20),
        || async {
            verdicts(store.as_ref(), "t", Minute(first.0 + 1), 1).await == [Verdict::Failure]
        },
    )
    .await;
    // Two more ticks of the failing region's decider.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        outbox_events(store.as_ref(), "incident_opened")
            .await
            .is_empty()
    );
    let facts = store.settlement_facts().await.unwrap();
    let now = improbe::clock::Clock::now(clock.as_ref());
    let far_mark = facts.marks.iter().find(|m| m.prober == "far").unwrap();
    assert!(
        now - far_mark.reported_at < chrono::Duration::seconds(60),
        "{facts:?} at {now}"
    );
    assert!(
        settle(&facts, now).end <= Minute(first.0 + 1),
        "{facts:?} at {now}"
    );

    far.proxy.thaw();
    written_before(store.as_ref(), 2, start + chrono::Duration::minutes(2)).await;
    // Two decider ticks after both regions passed minute 1.
    tokio::time::sleep(Duration::from_secs(5)).await;
    for region in [&mut failing, &mut far] {
        region.daemon.take().unwrap().stop().await;
    }

    assert_eq!(
        verdicts(store.as_ref(), "t", first, 2).await,
        [Verdict::Available; 2],
        "one success anywhere makes the minute available (docs/sla.md)"
    );
    assert!(
        outbox_events(store.as_ref(), "incident_opened")
            .await
            .is_empty()
    );
    assert!(receiver.received("hook").is_empty());
}

#[tokio::test]
async fn a_failure_every_region_saw_is_announced_once() {
    let db = TestDb::postgres().await;
    let store = db.store().await;
    let start = at("2026-04-11T10:00:00Z");
    let clock = ScriptedClock::starting_at(start);
    let receiver = HttpReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut regions = vec![
        region("east", &db, &clock, &receiver, dir.path(), false).await,
        region("west", &db, &clock, &receiver, dir.path(), false).await,
    ];
    // Failing before minute 1 starts keeps it failed; a late answer of
    // minute 0's is one failure beside its successes.
    let both = ["east", "west"];
    let first = Minute::containing(&start);
    each_stored(store.as_ref(), &both, first, Outcome::Ok).await;
    regions.iter().for_each(|r| fail_all(&r.sim));
    clock.enter_minute(1);
    each_stored(store.as_ref(), &both, Minute(first.0 + 1), Outcome::Fail).await;
    // Healed once every attempt of minute 1 is stored, so that none,
    // however late its request reaches the simulator, is answered healthy;
    // minute 2 still holds successes after that.
    clock.enter_minute(2);
    written_before(store.as_ref(), 2, start + chrono::Duration::minutes(2)).await;
    regions.iter().for_each(|r| heal_all(&r.sim));
    each_stored(store.as_ref(), &both, Minute(first.0 + 2), Outcome::Ok).await;
    clock.enter_minute(3);
    wait::until(Duration::from_secs(40), async || {
        let hook = receiver.received("hook");
        if hook.iter().any(|m| m.body["event"] == "incident_resolved") {
            return Ok(());
        }
        let minute_one: Vec<_> = crate::common::all_attempts(store.as_ref(), "t")
            .await
            .into_iter()
            .filter(|a| a.minute() == Minute(first.0 + 1))
            .map(|a| (a.prober, a.kind, a.started_at, a.outcome))
            .collect();
        Err(format!(
            "the resolution: outbox {:#?}, facts {:?}, minute 1: {minute_one:?}",
            store.notifications(None).await.unwrap(),
            store.settlement_facts().await.unwrap(),
        ))
    })
    .await;
    // A few more ticks of both deciders: nothing may be sent twice.
    tokio::time::sleep(Duration::from_secs(5)).await;
    for region in &mut regions {
        region.daemon.take().unwrap().stop().await;
    }

    let hook = receiver.received("hook");
    let opened: Vec<_> = hook
        .iter()
        .filter(|m| m.body["event"] == "incident_opened")
        .collect();
    assert_eq!(opened.len(), 1, "{hook:#?}");
    assert_eq!(opened[0].body["minute"], "2026-04-11T10:01:00Z");
    assert_eq!(
        hook.iter()
            .filter(|m| m.body["event"] == "incident_resolved")
            .count(),
        1
    );
    assert_eq!(
        outbox_events(store.as_ref(), "incident_opened").await.len(),
        1
    );
    let first = Minute::containing(&start);
    assert_eq!(
        verdicts(store.as_ref(), "t", first, 3).await,
        [Verdict::Available, Verdict::Failure, Verdict::Available]
    );
}

#[tokio::test]
async fn a_prober_that_vanishes_mid_minute_holds_settlement_back_only_for_the_bound() {
    let db = TestDb::postgres().await;
    let store = db.store().await;
    let start = at("2026-04-12T10:00:00Z");
    let clock = ScriptedClock::starting_at(start);
    let receiver = HttpReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut stays = region("stays", &db, &clock, &receiver, dir.path(), true).await;
    let mut vanishes = region("vanishes", &db, &clock, &receiver, dir.path(), false).await;
    // Once both have written some of minute 0...
    let first = Minute::containing(&start);
    each_stored(store.as_ref(), &["stays", "vanishes"], first, Outcome::Ok).await;
    written_before(store.as_ref(), 2, start).await;
    // Mid-minute, `vanishes` stops reaching the database for good.
    vanishes.proxy.freeze();
    clock.enter_minute(1);
    let facts = wait::until(Duration::from_secs(30), || async {
        let facts = store.settlement_facts().await.unwrap();
        // ...until `stays` has written past minute 0 and re-decided it.
        let stays_mark = facts.marks.iter().find(|m| m.prober == "stays").cloned();
        let minute_one = start + chrono::Duration::minutes(1);
        if stays_mark.is_some_and(|m| m.complete_until >= minute_one)
            && facts
                .earliest_pending
                .is_none_or(|m| m >= Minute::containing(&minute_one))
        {
            Ok(facts)
        } else {
            Err(format!(
                "`stays` past minute 0 and nothing pending: {facts:?}"
            ))
        }
    })
    .await;
    let gone = facts
        .marks
        .iter()
        .find(|m| m.prober == "vanishes")
        .expect("it reported before it vanished")
        .clone();
    assert_eq!(Minute::containing(&gone.complete_until), first, "{gone:?}");
    let bound = chrono::Duration::from_std(GIVE_UP_AFTER).unwrap();
    // Up to the bound after its last report, minute 0 waits for it...
    let waiting = settle(&facts, gone.reported_at + bound);
    assert_eq!(waiting.end, first);
    assert_eq!(waiting.slowest.as_deref(), Some("vanishes"));
    // ...and just after, it is given up and minute 0 is settled.
    let settled = settle(
        &facts,
        gone.reported_at + bound + chrono::Duration::seconds(1),
    );
    assert_eq!(settled.end, Minute(first.0 + 1));
    assert_eq!(settled.given_up.len(), 1);

    // The running prober shows the same on /metrics, on its own clock.
    clock.enter_minute(2);
    let base = format!("http://{}", stays.daemon.as_ref().unwrap().addr.unwrap());
    wait::until(Duration::from_secs(30), || async {
        let text = reqwest::get(format!("{base}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.contains("improbe_probers{state=\"given_up\"} 1")
            && text.contains("improbe_prober_watermark_lag_seconds{prober=\"vanishes\"}")
        {
            Ok(())
        } else {
            Err(format!("`vanishes` given up on /metrics:\n{text}"))
        }
    })
    .await;
    // ...and so do the coverage words of the month's report.
    let config = improbe::config::Config::parse(
        &ConfigBuilder::new("reader", &db.url)
            .simulator_target("t", &stays.sim.endpoint(), "1s", "1s")
            .build(),
        "test",
    )
    .unwrap();
    let now = improbe::clock::Clock::now(clock.as_ref());
    let month = improbe::accounting::select_months(
        &config.targets[0],
        improbe::accounting::MonthSelection::Current,
        now,
    )
    .unwrap()
    .pop()
    .unwrap();
    let evidence = improbe::report::evidence::for_month(
        store.as_ref(),
        &config.targets[0],
        month,
        now,
        improbe::report::evidence::Depth::MinutesOnly,
    )
    .await
    .unwrap();
    let words = evidence.coverage.summary();
    assert!(
        words.contains("Given up after 60 s without a report")
            && words.contains("vanishes: last report"),
        "{words}"
    );
    stays.daemon.take().unwrap().stop().await;
    // The vanished prober's stop spools what it could not write.
    vanishes.proxy.thaw();
    vanishes.daemon.take().unwrap().stop().await;
}
