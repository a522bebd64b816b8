//! Notifications (docs/notifications.md): events decided from stored
//! verdicts, written to the outbox, delivered once and in order to real
//! local receivers: a webhook endpoint, a Slack-format endpoint, a fake of
//! PagerDuty's Events API that checks what PagerDuty checks, and a real SMTP
//! server requiring STARTTLS and AUTH.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::common::receivers::{
    HttpReceiver, PAGERDUTY_KEY, SMTP_PASSWORD, SMTP_USER, SmtpServer, TestCa,
};
use crate::common::{
    ConfigBuilder, InProcessDaemon, ScriptedClock, TestDb, at, attempt, stored_in_minute, wait,
    written_before,
};
use chrono::{DateTime, Utc};
use improbe::accounting::Figures;
use improbe::attempt::{Attempt, Kind, Outcome};
use improbe::config::Config;
use improbe::minute::Minute;
use improbe::notify::{Channel, Decider, Sender};
use improbe::simulator::{Behaviour, Simulator};
use improbe::store::{NewNotification, Store};
use serde_json::Value;

const HOOK_TOKEN: &str = "SECRET-HOOK-TOKEN-4f1c";
const SLACK_TOKEN: &str = "SECRET-SLACK-TOKEN-9a2e";
const HMAC_KEY: &str = "hmac-key-for-tests";

fn webhook(receiver: &HttpReceiver, name: &str, extra: &str) -> String {
    format!(
        "[[notify]]\nname = \"{name}\"\nkind = \"webhook\"\nurl = \"{}/hook/{HOOK_TOKEN}\"\nsecret = \"{HMAC_KEY}\"\n{extra}\n",
        receiver.base
    )
}

fn every_channel(receiver: &HttpReceiver, ca: &TestCa, smtp: &SmtpServer) -> String {
    let mut text = webhook(receiver, "hook", "");
    text.push_str(&format!(
        "[[notify]]\nname = \"chat\"\nkind = \"slack\"\nurl = \"{}/slack/{SLACK_TOKEN}\"\n\
         [[notify]]\nname = \"pager\"\nkind = \"pagerduty\"\nurl = \"{}/pagerduty\"\nrouting_key = \"{PAGERDUTY_KEY}\"\n",
        receiver.base, receiver.base
    ));
    text.push_str(&format!(
        "[[notify]]\nname = \"mail\"\nkind = \"email\"\nserver = \"127.0.0.1:{}\"\ntls = \"starttls\"\n\
         ca_file = \"{}\"\nusername = \"{SMTP_USER}\"\npassword = \"{SMTP_PASSWORD}\"\n\
         from = \"improbe@example.org\"\nto = [\"ops@example.org\"]\n",
        smtp.port,
        ca.ca_pem().display()
    ));
    text
}

fn events_named<'a>(
    received: &'a [crate::common::receivers::Received],
    event: &str,
) -> Vec<&'a Value> {
    received
        .iter()
        .map(|r| &r.body)
        .filter(|b| b["event"] == event)
        .collect()
}

/// Healthy, two failing minutes, healthy: through the daemon, on every
/// channel, exactly one opening and one resolution with the right minutes.
async fn scripted_outage(db: TestDb) {
    let start = at("2026-06-01T00:00:00Z");
    let clock = ScriptedClock::starting_at(start);
    // The simulator checks UserSig expiry on the same scripted clock.
    let sim = Simulator::start_with_clock("127.0.0.1:0".parse().unwrap(), clock.clone())
        .await
        .unwrap();
    let receiver = HttpReceiver::start().await;
    let ca = TestCa::generate();
    let smtp = SmtpServer::start(&ca);
    let dir = tempfile::tempdir().unwrap();
    let text = ConfigBuilder::new("p1", &db.url)
        .data_dir(dir.path())
        .simulator_target("tim", &sim.endpoint(), "1s", "1s")
        .raw(&every_channel(&receiver, &ca, &smtp))
        .build();
    let daemon = InProcessDaemon::start_with_clock(&text, clock.clone()).await;
    let store = db.store().await;
    let first = Minute::containing(&start);
    let ok = |a: &Attempt| a.outcome == Outcome::Ok;
    let failed = |a: &Attempt| a.outcome == Outcome::Fail;

    stored_in_minute(store.as_ref(), "tim", first, 3, ok).await;
    // Failing before minute 1 starts: none of its attempts is answered
    // healthy. A late answer of minute 0's is one failure beside its
    // successes.
    for kind in Kind::ALL {
        sim.set_behaviour(kind, Behaviour::http(503));
    }
    clock.enter_minute(1);
    stored_in_minute(store.as_ref(), "tim", Minute(first.0 + 1), 3, failed).await;
    clock.enter_minute(2);
    stored_in_minute(store.as_ref(), "tim", Minute(first.0 + 2), 3, failed).await;
    clock.enter_minute(3);
    // Healed once every attempt of minute 2 is stored: none is answered
    // healthy. Minute 3 fails until then, and has successes after.
    written_before(store.as_ref(), 1, start + chrono::Duration::minutes(3)).await;
    for kind in Kind::ALL {
        sim.set_behaviour(kind, Behaviour::healthy());
    }
    stored_in_minute(store.as_ref(), "tim", Minute(first.0 + 3), 3, ok).await;
    clock.enter_minute(4);
    receiver
        .wait_for(
            Duration::from_secs(30),
            "the resolution on every HTTP channel",
            |r| {
                !events_named(&r.received("hook"), "incident_resolved").is_empty()
                    && r.received("slack").len() >= 2
                    && r.received("pagerduty").len() >= 2
            },
        )
        .await;
    wait::until_true("both mails", Duration::from_secs(20), async || {
        smtp.messages().len() >= 2
    })
    .await;
    // A few more ticks: nothing may be sent twice.
    tokio::time::sleep(Duration::from_secs(5)).await;
    daemon.stop().await;

    let backend = db.backend;
    let hook = receiver.received("hook");

    let opened = events_named(&hook, "incident_opened");
    let resolved = events_named(&hook, "incident_resolved");
    assert_eq!(opened.len(), 1, "on {backend}: {hook:#?}");
    assert_eq!(resolved.len(), 1, "on {backend}");
    assert_eq!(hook.len(), 2, "no other event on {backend}: {hook:#?}");
    let (opened, resolved) = (opened[0], resolved[0]);
    assert_eq!(opened["minute"], "2026-06-01T00:01:00Z");
    assert_eq!(opened["target"], "tim");
    assert_eq!(opened["service_month"], 6);
    // June (30 days) is Service Month 6 of a service started on January 1.
    assert_eq!(opened["tolerated_minutes"], 432);
    let error = &opened["errors"][0];
    assert_eq!(error["outcome"], "fail");
    assert_eq!(error["http_status"], 503);
    assert!(
        opened["summary"]
            .as_str()
            .unwrap()
            .contains("Apparent Failure since 2026-06-01 00:01")
    );
    assert_eq!(resolved["minute"], "2026-06-01T00:03:00Z");
    assert_eq!(resolved["incident"]["minutes"], 2);
    assert_eq!(resolved["failure_minutes"], 2);
    assert_eq!(resolved["incident"]["key"], opened["incident"]["key"]);
    // Signed, with the event's id as the idempotency key.
    for request in &hook {
        assert_eq!(
            request.headers["idempotency-key"],
            request.body["id"].as_str().unwrap()
        );
        assert_eq!(
            request.headers["x-improbe-signature"],
            improbe::notify::channels::webhook_signature(HMAC_KEY, &request.raw)
        );
        assert_eq!(request.headers["content-type"], "application/json");
    }

    let slack = receiver.received("slack");
    assert_eq!(slack.len(), 2, "on {backend}: {slack:#?}");
    assert!(
        slack[0].body["text"]
            .as_str()
            .unwrap()
            .contains("Apparent Failure")
    );
    assert!(
        slack[1].body["text"]
            .as_str()
            .unwrap()
            .contains("available again")
    );

    let pager = receiver.received("pagerduty");
    assert_eq!(pager.len(), 2, "on {backend}: {pager:#?}");
    assert_eq!(pager[0].body["event_action"], "trigger");
    assert_eq!(pager[0].body["payload"]["severity"], "critical");
    assert_eq!(pager[1].body["event_action"], "resolve");
    assert_eq!(pager[0].body["dedup_key"], pager[1].body["dedup_key"]);

    let mail = smtp.messages();
    assert_eq!(mail.len(), 2, "on {backend}: {mail:#?}");
    assert!(
        mail.iter()
            .all(|m| m["tls"] == true && m["authenticated"] == true)
    );
    let first = mail[0]["data"].as_str().unwrap();
    assert!(
        first.contains("Subject: [improbe] tim: Apparent Failure"),
        "{first}"
    );
    assert_eq!(mail[0]["rcpt_tos"][0], "ops@example.org");

    // The outbox holds every row sent, and no secret.
    let store = db.store().await;
    let rows = store.notifications(None).await.unwrap();
    assert_eq!(rows.len(), 2 * 4, "{rows:#?}");
    assert!(
        rows.iter()
            .all(|r| r.sent_at.is_some() && r.sent_by.as_deref() == Some("p1"))
    );
    let everything = format!("{rows:?}");
    for secret in [
        HOOK_TOKEN,
        SLACK_TOKEN,
        HMAC_KEY,
        PAGERDUTY_KEY,
        SMTP_PASSWORD,
    ] {
        assert!(
            !everything.contains(secret),
            "{secret} leaked into the outbox"
        );
    }
}

#[tokio::test]
async fn a_scripted_outage_is_told_once_on_every_channel_on_sqlite() {
    scripted_outage(TestDb::sqlite()).await;
}

#[tokio::test]
async fn a_scripted_outage_is_told_once_on_every_channel_on_postgres() {
    let db = TestDb::postgres().await;
    scripted_outage(db).await;
}

/// A config with one target (April 2026 is Service Month 1, 30 days: 432
/// tolerated failure minutes) and these channels.
fn month_config(db: &TestDb, prober: &str, notify: &str) -> Config {
    let text = format!(
        "[prober]\nid = \"{prober}\"\n[database]\nurl = \"{}\"\n\
         [[targets]]\nname = \"tim\"\nprovider = \"simulator\"\n[targets.simulator]\nendpoint = \"http://127.0.0.1:9\"\n\
         [targets.sla]\nservice_start = \"2026-04-01\"\ntimezone = \"UTC\"\nmonthly_fee = \"1200.00\"\n{notify}",
        db.url
    );
    Config::parse(&text, "test").unwrap()
}

/// Failure minutes `from..to` counted from 2026-04-01T00:00Z, one failed send each.
async fn fail_minutes(store: &dyn Store, from: i64, to: i64) {
    let start = at("2026-04-01T00:00:00Z");
    let attempts: Vec<_> = (from..to)
        .map(|m| {
            attempt(
                "tim",
                "import",
                Kind::SendDirect,
                &(start + chrono::Duration::minutes(m)).to_rfc3339(),
                Outcome::Fail,
            )
        })
        .collect();
    crate::common::ingest(store, &attempts).await;
}

async fn outbox_marks(store: &dyn Store) -> Vec<String> {
    store
        .notifications(None)
        .await
        .unwrap()
        .iter()
        .map(|n| {
            let event: Value = serde_json::from_str(&n.payload).unwrap();
            event["budget"]["mark"].as_str().unwrap_or("").to_owned()
        })
        .collect()
}

async fn budget_marks(db: TestDb) {
    let receiver = HttpReceiver::start().await;
    let config = month_config(
        &db,
        "p1",
        &webhook(&receiver, "hook", "events = [\"budget\"]"),
    );
    let store = db.store().await;
    let mut decider = Decider::new(&config);
    // Well after the imported minutes: they are history, only the month's figures count.
    let mut now = at("2026-04-20T12:00:00Z");
    let mut step = async |store: &dyn Store, to: i64, decider: &mut Decider| {
        now += chrono::Duration::minutes(1);
        fail_minutes(store, 0, to).await;
        decider.decide(store, now).await.unwrap();
        outbox_marks(store).await
    };
    assert!(step(store.as_ref(), 215, &mut decider).await.is_empty());
    assert_eq!(step(store.as_ref(), 216, &mut decider).await, ["budget_50"]);
    assert_eq!(step(store.as_ref(), 345, &mut decider).await, ["budget_50"]);
    assert_eq!(
        step(store.as_ref(), 346, &mut decider).await,
        ["budget_50", "budget_80"]
    );
    assert_eq!(step(store.as_ref(), 432, &mut decider).await.len(), 3);
    let marks = step(store.as_ref(), 433, &mut decider).await;
    assert_eq!(marks, ["budget_50", "budget_80", "budget_100", "credit_10"]);
    // A restart decides the same marks again: nothing new is written.
    let mut restarted = Decider::new(&config);
    assert_eq!(step(store.as_ref(), 433, &mut restarted).await.len(), 4);
    let rows = store.notifications(None).await.unwrap();
    let credit: Value = serde_json::from_str(&rows[3].payload).unwrap();
    assert_eq!(credit["failure_minutes"], 433);
    assert_eq!(credit["tolerated_minutes"], 432);
    assert_eq!(credit["budget"]["credit_amount"], "120.00");
    assert_eq!(credit["budget"]["availability_percent"], "98.9976");
    assert_eq!(credit["service_month"], 1);
}

#[tokio::test]
async fn budget_and_tier_events_fire_once_at_their_minute_counts_on_sqlite() {
    budget_marks(TestDb::sqlite()).await;
}

#[tokio::test]
async fn budget_and_tier_events_fire_once_at_their_minute_counts_on_postgres() {
    let db = TestDb::postgres().await;
    budget_marks(db).await;
}

#[tokio::test]
async fn claim_events_fire_when_the_window_opens_and_a_week_before_it_closes() {
    let db = TestDb::sqlite();
    let receiver = HttpReceiver::start().await;
    let only_claims = "events = [\"claim_open\", \"claim_reminder\"]";
    let config = month_config(&db, "p1", &webhook(&receiver, "hook", only_claims));
    let store = db.store().await;
    // 500 failure minutes in April: a 10 % credit.
    fail_minutes(store.as_ref(), 0, 500).await;
    let mut decider = Decider::new(&config);
    let events = async |decider: &mut Decider, now: &str| {
        decider.decide(store.as_ref(), at(now)).await.unwrap();
        store
            .notifications(None)
            .await
            .unwrap()
            .iter()
            .map(|n| n.event.clone())
            .collect::<Vec<_>>()
    };
    // The fifth business day of May 2026 is Thursday the 7th: the window
    // opens on the 8th and closes 60 days after April 30, on June 29.
    assert!(
        events(&mut decider, "2026-05-07T23:59:59Z")
            .await
            .is_empty()
    );
    assert_eq!(
        events(&mut decider, "2026-05-08T00:00:30Z").await,
        ["claim_open"]
    );
    assert_eq!(
        events(&mut decider, "2026-06-22T23:58:59Z").await,
        ["claim_open"]
    );
    assert_eq!(
        events(&mut decider, "2026-06-22T23:59:59Z").await,
        ["claim_open", "claim_reminder"]
    );
    // A restart inside the window writes nothing new.
    let mut restarted = Decider::new(&config);
    assert_eq!(
        events(&mut restarted, "2026-06-25T00:00:00Z").await.len(),
        2
    );

    let rows = store.notifications(None).await.unwrap();
    let open: Value = serde_json::from_str(&rows[0].payload).unwrap();
    assert_eq!(open["claim"]["credit_amount"], "120.00");
    assert_eq!(open["claim"]["deadline"], "2026-06-29T23:59:59+00:00");
    let text = open["claim"]["text"].as_str().unwrap();
    assert!(text.contains("Service Month 1"), "{text}");
    assert!(text.contains("500"), "{text}");

    // A month whose window closed before the prober started gets nothing.
    let late = TestDb::sqlite();
    let late_store = late.store().await;
    fail_minutes(late_store.as_ref(), 0, 500).await;
    let config = month_config(&late, "p1", &webhook(&receiver, "hook", only_claims));
    Decider::new(&config)
        .decide(late_store.as_ref(), at("2026-06-30T00:00:00Z"))
        .await
        .unwrap();
    assert!(late_store.notifications(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_claim_window_longer_than_three_months_is_still_announced() {
    let db = TestDb::sqlite();
    let receiver = HttpReceiver::start().await;
    // April 2026 as a calendar month, a claim open for 150 days after it.
    let contract = "contract = \"long\"\n\
        [contracts.long]\nperiod = \"calendar_month\"\ncommitment = \"99.9\"\n\
        credits = [{ below = \"99.9\", percent = 10 }]\nclaim_opens = \"period_end\"\nclaim_days = 150\n";
    let only_claims = "events = [\"claim_open\", \"claim_reminder\"]";
    let config = month_config(
        &db,
        "p1",
        &format!("{contract}{}", webhook(&receiver, "hook", only_claims)),
    );
    let store = db.store().await;
    fail_minutes(store.as_ref(), 0, 500).await;
    // April 30 + 150 days: the window closes on September 27; a week before,
    // five months after the month, both events are due.
    Decider::new(&config)
        .decide(store.as_ref(), at("2026-09-20T23:59:59Z"))
        .await
        .unwrap();
    let rows = store.notifications(None).await.unwrap();
    let events: Vec<_> = rows.iter().map(|n| n.event.as_str()).collect();
    assert_eq!(events, ["claim_open", "claim_reminder"]);
    let open: Value = serde_json::from_str(&rows[0].payload).unwrap();
    assert_eq!(open["claim"]["deadline"], "2026-09-27T23:59:59+00:00");
}

#[tokio::test]
async fn the_figures_keep_a_completed_month_while_a_reader_can_ask_for_it() {
    let db = TestDb::sqlite();
    let receiver = HttpReceiver::start().await;
    let config = month_config(&db, "p1", &webhook(&receiver, "hook", ""));
    let store = db.store().await;
    let months = async |now: &str| {
        let figures = Figures::compute(store.as_ref(), &config.targets, at(now))
            .await
            .unwrap();
        let kept: Vec<u32> = figures.open("tim").iter().map(|s| s.month.index).collect();
        kept
    };
    // April (month 1) owes nothing: kept two days after its end for the
    // events about its last minutes, then only May is.
    assert_eq!(months("2026-05-02T23:00:00Z").await, [1, 2]);
    assert_eq!(months("2026-05-05T00:00:00Z").await, [2]);
    // Owing a credit, it is kept while its claim can be filed.
    fail_minutes(store.as_ref(), 0, 500).await;
    assert_eq!(months("2026-06-29T23:00:00Z").await, [1, 3]);
    assert_eq!(months("2026-06-30T00:00:00Z").await, [3]);
}

#[tokio::test]
async fn the_decider_reads_the_figures_it_is_handed() {
    let db = TestDb::sqlite();
    let receiver = HttpReceiver::start().await;
    let config = month_config(
        &db,
        "p1",
        &webhook(&receiver, "hook", "events = [\"budget\"]"),
    );
    let store = db.store().await;
    let now = at("2026-04-20T12:00:00Z");
    let before = Figures::compute(store.as_ref(), &config.targets, now)
        .await
        .unwrap();
    fail_minutes(store.as_ref(), 0, 433).await;
    let mut decider = Decider::new(&config);
    let own_wait = improbe::settlement::own_wait(&config);
    let (store_ref, own_wait) = (store.as_ref(), own_wait);
    let settled_end = move |now| async move {
        let facts = store_ref.settlement_facts().await.unwrap();
        improbe::settlement::settle_here(&facts, now, own_wait).end
    };
    decider
        .decide_with(store.as_ref(), &before, settled_end(now).await, now)
        .await
        .unwrap();
    assert!(
        outbox_marks(store.as_ref()).await.is_empty(),
        "figures computed before the failures owe nothing, whatever the store holds now"
    );
    // A minute later, as the daemon computes them once per settled minute.
    let now = now + chrono::Duration::minutes(1);
    let after = Figures::compute(store.as_ref(), &config.targets, now)
        .await
        .unwrap();
    assert_eq!(after.current("tim").unwrap().failure_minutes, 433);
    decider
        .decide_with(store.as_ref(), &after, settled_end(now).await, now)
        .await
        .unwrap();
    assert_eq!(
        outbox_marks(store.as_ref()).await,
        ["budget_50", "budget_80", "budget_100", "credit_10"]
    );
}

/// Writes `n` events for channel `hook` straight into the outbox.
async fn enqueue(store: &dyn Store, n: usize) -> Vec<String> {
    let ids: Vec<String> = (0..n).map(|i| format!("test:event-{i}")).collect();
    let rows: Vec<NewNotification> = ids
        .iter()
        .map(|id| NewNotification {
            event_key: id.clone(),
            channel: "hook".to_owned(),
            target: "tim".to_owned(),
            event: "test".to_owned(),
            payload: serde_json::to_string(&improbe::notify::Event {
                id: id.clone(),
                ..improbe::notify::decider::test_event("tim", "p1", at("2026-04-01T00:00:00Z"))
            })
            .unwrap(),
            decided_by: "p1".to_owned(),
            created_at: at("2026-04-01T00:00:00Z"),
        })
        .collect();
    assert_eq!(store.enqueue_notifications(&rows).await.unwrap(), n as u64);
    // Writing them again changes nothing.
    assert_eq!(store.enqueue_notifications(&rows).await.unwrap(), 0);
    ids
}

fn sender(config: &Config) -> Sender {
    let channels = config
        .notify
        .iter()
        .map(|c| Channel::build(c).unwrap())
        .collect();
    Sender::new(&config.prober.id, channels)
}

/// A clock the test sets by hand.
#[derive(Clone)]
struct HandClock(Arc<AtomicI64>);

impl HandClock {
    fn at(s: &str) -> HandClock {
        HandClock(Arc::new(AtomicI64::new(at(s).timestamp_millis())))
    }
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.0.load(Ordering::SeqCst)).unwrap()
    }
    fn advance(&self, d: Duration) {
        self.0.fetch_add(d.as_millis() as i64, Ordering::SeqCst);
    }
}

fn ids_received(receiver: &HttpReceiver) -> Vec<String> {
    receiver
        .received("hook")
        .iter()
        .map(|r| r.body["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn a_channel_that_is_down_gets_its_events_later_in_order(db: TestDb) {
    let receiver = HttpReceiver::start().await;
    let config = month_config(&db, "p1", &webhook(&receiver, "hook", ""));
    let store = db.store().await;
    let ids = enqueue(store.as_ref(), 5).await;
    let sender = sender(&config);
    let clock = HandClock::at("2026-04-01T00:00:00Z");
    receiver.fail_with(503);
    // An hour down: every try fails, the backoff grows, nothing is skipped.
    for _ in 0..30 {
        sender
            .send_due(store.as_ref(), || clock.now(), || true)
            .await
            .unwrap();
        clock.advance(Duration::from_secs(120));
    }
    let rows = store.notifications(Some("hook")).await.unwrap();
    assert!(rows.iter().all(|r| r.sent_at.is_none()));
    assert!(rows[0].tries > 5, "{rows:#?}");
    assert_eq!(rows[1].tries, 0, "later events wait behind the first");
    let error = rows[0].last_error.as_deref().unwrap();
    assert!(error.contains("503"), "{error}");
    assert!(!error.contains(HOOK_TOKEN));
    assert_eq!(sender.counters["hook"].pending.load(Ordering::Relaxed), 5);

    receiver.fail_with(0);
    clock.advance(improbe::notify::sender::MAX_BACKOFF);
    let sent = sender
        .send_due(store.as_ref(), || clock.now(), || true)
        .await
        .unwrap();
    assert_eq!(sent, 5, "on {}", db.backend);
    assert_eq!(ids_received(&receiver), ids, "in order, once each");
    assert_eq!(sender.counters["hook"].pending.load(Ordering::Relaxed), 0);
}

async fn a_stop_in_the_middle_of_sending_repeats_nothing(db: TestDb) {
    let receiver = HttpReceiver::start().await;
    let config = month_config(&db, "p1", &webhook(&receiver, "hook", ""));
    let store = db.store().await;
    let ids = enqueue(store.as_ref(), 3).await;
    receiver.delay(Duration::from_millis(1500));
    let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let first_run = {
        let (store, stopping, sender) = (store.clone(), stopping.clone(), sender(&config));
        tokio::spawn(async move {
            sender
                .send_due(store.as_ref(), Utc::now, || {
                    !stopping.load(Ordering::SeqCst)
                })
                .await
                .unwrap();
            sender.release(store.as_ref()).await.unwrap();
        })
    };
    // The stop comes while the first event is on the wire.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stopping.store(true, Ordering::SeqCst);
    first_run.await.unwrap();
    assert_eq!(
        ids_received(&receiver),
        ids[..1],
        "the send in flight finished"
    );
    let rows = store.notifications(None).await.unwrap();
    assert!(rows[0].sent_at.is_some(), "and was marked sent");
    assert!(
        rows[1..]
            .iter()
            .all(|r| r.sent_at.is_none() && r.tries == 0)
    );

    // The next start sends the rest, and the first not again.
    receiver.delay(Duration::ZERO);
    sender(&config)
        .send_due(store.as_ref(), Utc::now, || true)
        .await
        .unwrap();
    assert_eq!(ids_received(&receiver), ids, "on {}", db.backend);
}

async fn a_lease_left_by_a_crashed_prober_is_taken_over_when_it_runs_out(db: TestDb) {
    let receiver = HttpReceiver::start().await;
    let store = db.store().await;
    let ids = enqueue(store.as_ref(), 2).await;
    let clock = HandClock::at("2026-04-01T00:00:00Z");
    let lease = chrono::Duration::from_std(improbe::notify::sender::LEASE).unwrap();
    // p1 takes the first event and dies before sending it.
    let taken = store
        .claim_notification("hook", "p1", clock.now(), clock.now() + lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.event_key, ids[0]);
    let p2 = sender(&month_config(&db, "p2", &webhook(&receiver, "hook", "")));
    p2.send_due(store.as_ref(), || clock.now(), || true)
        .await
        .unwrap();
    assert!(
        ids_received(&receiver).is_empty(),
        "held by p1, and order is kept"
    );
    clock.advance(improbe::notify::sender::LEASE + Duration::from_secs(1));
    p2.send_due(store.as_ref(), || clock.now(), || true)
        .await
        .unwrap();
    assert_eq!(ids_received(&receiver), ids, "on {}", db.backend);
    // p1 coming back cannot mark what p2 sent.
    assert!(
        !store
            .notification_sent(taken.id, "p1", clock.now())
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn three_probers_on_one_postgres_decide_and_send_each_event_once() {
    let db = TestDb::postgres().await;
    let store = db.store().await;
    three_deciders_send_each_event_once(&db, store).await;
}

/// Three probers' deciders and senders on `store` (a store of `db`, reached
/// directly or through a pooler): each event is decided and sent once.
pub async fn three_deciders_send_each_event_once(db: &TestDb, store: Arc<dyn Store>) {
    let receiver = HttpReceiver::start().await;
    // Two incidents a little before the probers look (within their catch-up).
    let start = at("2026-04-10T10:00:00Z");
    let mut attempts = Vec::new();
    for (m, outcome) in [
        (0, Outcome::Ok),
        (1, Outcome::Fail),
        (2, Outcome::Ok),
        (3, Outcome::Fail),
        (4, Outcome::Fail),
        (5, Outcome::Ok),
    ] {
        let started = (start + chrono::Duration::minutes(m)).to_rfc3339();
        attempts.push(attempt("tim", "x", Kind::Login, &started, outcome));
    }
    crate::common::ingest(store.as_ref(), &attempts).await;
    let probers: Vec<(Decider, Sender)> = ["p1", "p2", "p3"]
        .iter()
        .map(|p| {
            let config = month_config(
                db,
                p,
                &webhook(
                    &receiver,
                    "hook",
                    "events = [\"incident_opened\", \"incident_resolved\"]",
                ),
            );
            (Decider::new(&config), sender(&config))
        })
        .collect();
    let now = at("2026-04-10T10:08:00Z");
    let rounds = probers.into_iter().map(|(mut decider, sender)| {
        let store = store.clone();
        tokio::spawn(async move {
            for round in 0..3 {
                let at = now + chrono::Duration::seconds(round);
                decider.decide(store.as_ref(), at).await.unwrap();
                sender
                    .send_due(store.as_ref(), || at, || true)
                    .await
                    .unwrap();
            }
        })
    });
    for round in rounds.collect::<Vec<_>>() {
        round.await.unwrap();
    }
    let received = ids_received(&receiver);
    let expected = [
        "incident_opened:tim:2026-04-10T10:01:00Z",
        "incident_resolved:tim:2026-04-10T10:01:00Z",
        "incident_opened:tim:2026-04-10T10:03:00Z",
        "incident_resolved:tim:2026-04-10T10:03:00Z",
    ];
    let mut sorted = received.clone();
    sorted.sort();
    let mut want = expected.map(str::to_owned).to_vec();
    want.sort();
    assert_eq!(sorted, want, "each event once: {received:?}");
    let rows = store.notifications(None).await.unwrap();
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r.sent_at.is_some()));
}

#[tokio::test]
async fn coverage_is_announced_when_nothing_is_measured_for_five_minutes_and_when_it_returns() {
    let db = TestDb::sqlite();
    let receiver = HttpReceiver::start().await;
    let config = month_config(
        &db,
        "p1",
        &webhook(&receiver, "hook", "events = [\"coverage\"]"),
    );
    let store = db.store().await;
    let start = at("2026-04-10T10:00:00Z");
    // Measured, then 7 minutes with nothing, then measured again.
    let attempts: Vec<_> = (0..10)
        .chain(17..20)
        .map(|m| {
            let started = (start + chrono::Duration::minutes(m)).to_rfc3339();
            attempt("tim", "x", Kind::Login, &started, Outcome::Ok)
        })
        .collect();
    crate::common::ingest(store.as_ref(), &attempts).await;
    let mut decider = Decider::new(&config);
    // Minute by minute, as the daemon decides.
    let mut kinds = Vec::new();
    for m in 1..22 {
        decider
            .decide(
                store.as_ref(),
                start + chrono::Duration::minutes(m) + chrono::Duration::seconds(30),
            )
            .await
            .unwrap();
        let rows = store.notifications(None).await.unwrap();
        if rows.len() > kinds.len() {
            kinds.push((m, rows.last().unwrap().event_key.clone()));
        }
    }
    assert_eq!(
        kinds,
        [
            (15, "coverage_lost:tim:2026-04-10T10:10:00Z".to_owned()),
            (18, "coverage_restored:tim:2026-04-10T10:10:00Z".to_owned()),
        ],
        "lost once the fifth empty minute settles, back with the first measured one"
    );
    let rows = store.notifications(None).await.unwrap();
    let lost: Value = serde_json::from_str(&rows[0].payload).unwrap();
    assert_eq!(lost["coverage"]["state"], "lost");
    assert!(
        lost["coverage"]["reason"]
            .as_str()
            .unwrap()
            .contains("no prober heartbeat"),
        "{lost}"
    );
    let back: Value = serde_json::from_str(&rows[1].payload).unwrap();
    assert_eq!(back["coverage"]["minutes"], 7);
    assert_eq!(back["minute"], "2026-04-10T10:17:00Z");
}

// A second thread: `improbe notify test`, a blocking child, sends to this
// test's receiver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_test_sends_one_event_and_says_why_a_channel_refuses_without_its_secret() {
    let receiver = HttpReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("improbe.toml");
    let db = TestDb::sqlite();
    std::fs::write(
        &config,
        format!(
            "[prober]\nid = \"p1\"\n[database]\nurl = \"{}\"\n\
             [[targets]]\nname = \"tim\"\nprovider = \"simulator\"\n[targets.simulator]\nendpoint = \"http://127.0.0.1:9\"\n\
             [targets.sla]\nservice_start = \"2026-04-01\"\ntimezone = \"UTC\"\nmonthly_fee = \"1\"\n\
             [[notify]]\nname = \"ops\"\nkind = \"webhook\"\nurl = {{ env = \"IMPROBE_TEST_HOOK\" }}\n\
             [[notify]]\nname = \"gone\"\nkind = \"slack\"\nurl = \"http://127.0.0.1:9/slack/{SLACK_TOKEN}\"\n",
            db.url
        ),
    )
    .unwrap();
    let run = |channel: &str| {
        crate::common::improbe_command()
            .args([
                "--config",
                config.to_str().unwrap(),
                "notify",
                "test",
                "--channel",
                channel,
            ])
            .env(
                "IMPROBE_TEST_HOOK",
                format!("{}/hook/{HOOK_TOKEN}", receiver.base),
            )
            .output()
            .unwrap()
    };
    let sent = run("ops");
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let received = receiver.received("hook");
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].body["event"], "test");
    assert_eq!(received[0].body["target"], "tim");

    receiver.fail_with(500);
    let refused = run("ops");
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("answered HTTP 500"), "{stderr}");
    assert!(!stderr.contains(HOOK_TOKEN), "{stderr}");

    // Nobody listens there: the error says so, without the token in the URL.
    let unreachable = run("gone");
    assert_eq!(unreachable.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&unreachable.stderr);
    assert!(
        stderr.contains("channel `gone` (slack) did not take the test event"),
        "{stderr}"
    );
    assert!(!stderr.contains(SLACK_TOKEN), "{stderr}");

    let unknown = run("nope");
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("configured: ops, gone"));
}

/// Writes one event per channel of `config` straight into the outbox.
async fn enqueue_for_every_channel(
    store: &dyn Store,
    config: &Config,
    event: &improbe::notify::Event,
) {
    let rows: Vec<NewNotification> = config
        .notify
        .iter()
        .map(|channel| NewNotification {
            event_key: event.id.clone(),
            channel: channel.name.clone(),
            target: event.target.clone(),
            event: event.event.as_str().to_owned(),
            payload: serde_json::to_string(event).unwrap(),
            decided_by: "p1".to_owned(),
            created_at: at("2026-04-01T00:00:00Z"),
        })
        .collect();
    store.enqueue_notifications(&rows).await.unwrap();
}

async fn a_receiver_that_refuses_an_event_for_good_does_not_hold_back_the_next(db: TestDb) {
    let b = db.backend;
    let receiver = HttpReceiver::start().await;
    let config = month_config(&db, "p1", &webhook(&receiver, "hook", ""));
    let store = db.store().await;
    let ids = enqueue(store.as_ref(), 3).await;
    let sender = sender(&config);
    let clock = HandClock::at("2026-04-01T00:00:00Z");
    receiver.fail_with(422);
    sender
        .send_due(store.as_ref(), || clock.now(), || true)
        .await
        .unwrap();
    let rows = store.notifications(Some("hook")).await.unwrap();
    for row in &rows {
        assert_eq!(row.tries, 1, "{b}: refused for good, tried once: {rows:#?}");
        assert!(row.gave_up_at.is_some() && row.sent_at.is_none(), "{b}");
        assert!(row.last_error.as_deref().unwrap().contains("422"), "{b}");
    }
    assert_eq!(sender.counters["hook"].given_up.load(Ordering::Relaxed), 3);
    assert_eq!(sender.counters["hook"].pending.load(Ordering::Relaxed), 0);

    // A throttled receiver (429) is retried, as before.
    receiver.fail_with(429);
    store
        .enqueue_notifications(&[NewNotification {
            event_key: "test:later".into(),
            channel: "hook".into(),
            target: "tim".into(),
            event: "test".into(),
            payload: serde_json::to_string(&improbe::notify::Event {
                id: "test:later".into(),
                ..improbe::notify::decider::test_event("tim", "p1", clock.now())
            })
            .unwrap(),
            decided_by: "p1".into(),
            created_at: clock.now(),
        }])
        .await
        .unwrap();
    sender
        .send_due(store.as_ref(), || clock.now(), || true)
        .await
        .unwrap();
    let later = store
        .notifications(Some("hook"))
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert!(later.gave_up_at.is_none() && later.sent_at.is_none(), "{b}");
    receiver.fail_with(0);
    clock.advance(improbe::notify::sender::MAX_BACKOFF);
    sender
        .send_due(store.as_ref(), || clock.now(), || true)
        .await
        .unwrap();
    let received = ids_received(&receiver);
    assert_eq!(received, vec!["test:later".to_owned()], "{b}");
    assert!(ids.iter().all(|id| !received.contains(id)));
}

/// An event whose stored samples are 2 MB each (as an outbox row from
/// before provider text was bounded would be) reaches every channel within
/// that channel's documented limits.
#[tokio::test]
async fn a_two_megabyte_error_reaches_every_channel_within_its_limits() {
    let receiver = HttpReceiver::start().await;
    let ca = TestCa::generate();
    let smtp = SmtpServer::start(&ca);
    let db = TestDb::sqlite();
    let config = month_config(&db, "p1", &every_channel(&receiver, &ca, &smtp));
    let store = db.store().await;
    let huge = format!("*forged*\n• line <!channel> {}", "E".repeat(2 << 20));
    let mut event = improbe::notify::decider::test_event("tim", "p1", at("2026-04-01T00:00:00Z"));
    event.summary = huge.clone();
    event.errors = (0..8)
        .map(|i| improbe::notify::events::ErrorFacts {
            outcome: "fail".into(),
            http_status: Some(502),
            error_code: Some(format!("{i}{}", "9".repeat(100_000))),
            count: 1,
            samples: (0..5)
                .map(|j| {
                    if i + j == 0 {
                        huge.clone()
                    } else {
                        format!("sample {j} *x*")
                    }
                })
                .collect(),
        })
        .collect();
    enqueue_for_every_channel(store.as_ref(), &config, &event).await;
    let sender = sender(&config);
    let clock = HandClock::at("2026-04-01T00:00:00Z");
    let sent = sender
        .send_due(store.as_ref(), || clock.now(), || true)
        .await
        .unwrap();
    assert_eq!(sent, config.notify.len() as u64);

    let hook = &receiver.received("hook")[0];
    assert!(
        hook.raw.len() < 64 * 1024,
        "webhook: {} bytes",
        hook.raw.len()
    );
    let samples = hook.body["errors"].as_array().unwrap();
    assert_eq!(samples.len(), improbe::notify::events::ERRORS_CARRIED);
    let pager = &receiver.received("pagerduty")[0];
    assert!(
        pager.raw.len() < 512 * 1024,
        "PagerDuty: {} bytes",
        pager.raw.len()
    );
    let slack = &receiver.received("slack")[0];
    let text = slack.body["text"].as_str().unwrap();
    assert!(
        text.chars().count() <= 4_000,
        "Slack: {} characters",
        text.chars().count()
    );
    assert!(
        !text.contains("*forged*") && !text.contains("\n• line"),
        "{text:.300}"
    );
    assert!(!text.contains("<!channel>"));
    let message = serde_json::to_string(&smtp.messages()[0]).unwrap();
    assert!(message.len() < 64 * 1024, "email: {} bytes", message.len());
}

crate::on_both_backends!(
    flavor = "current_thread";
    a_channel_that_is_down_gets_its_events_later_in_order,
    a_stop_in_the_middle_of_sending_repeats_nothing,
    a_lease_left_by_a_crashed_prober_is_taken_over_when_it_runs_out,
    a_receiver_that_refuses_an_event_for_good_does_not_hold_back_the_next,
);
