//! The Matrix adapter against a real Synapse (tests/it/common/synapse.rs):
//! scripted minutes through the daemon into both databases, credentials
//! and rate limits that must never become failure minutes, delivery
//! confirmed or missing, a recipient out of the room (ours, never a
//! failure), and `improbe setup` twice.

use std::sync::Arc;

use crate::common::synapse::{RateLimits, Synapse};
use crate::common::{ConfigBuilder, InProcessDaemon, ScriptedClock, TestDb, at, probe_for};
use improbe::attempt::{Attempt, Delivery, InconclusiveReason, Kind, Outcome};
use improbe::probe::ProviderSettings;
use improbe::store::Store;
use improbe::verdict::Verdict;
use reqwest::Method;

const PASSWORD: &str = "probe-password";
const RX_PASSWORD: &str = "recipient-password";
/// Attempts every second, each with a second to answer.
const EVERY_SECOND: &str = "interval = \"1s\"\ntimeout = \"1s\"";
/// For the scripted minutes, which demand that every healthy send is seen
/// within the timeout: two seconds leave Synapse's `/sync` room on a
/// machine busy with the rest of the suite (one second was missed once,
/// 2 s after start, while the image compiled beside it).
const EVERY_TWO_SECONDS: &str = "interval = \"2s\"\ntimeout = \"2s\"";

/// A daemon config probing `targets` into `db`, spooling into `dir`.
fn probing(db: &TestDb, dir: &tempfile::TempDir, targets: &[String]) -> String {
    targets
        .iter()
        .fold(
            ConfigBuilder::new("p1", &db.url).data_dir(dir.path()),
            |b, t| b.raw(t),
        )
        .build()
}

/// A `[[targets]]` entry for the homeserver; `rooms` from `improbe setup`.
fn matrix_target(
    name: &str,
    url: &str,
    password: &str,
    rooms: Option<&[String; 2]>,
    extra: &str,
) -> String {
    let rooms = rooms
        .map(|[direct, group]| format!("direct_room = \"{direct}\"\ngroup_room = \"{group}\"\n"))
        .unwrap_or_default();
    format!(
        "[[targets]]\nname = \"{name}\"\nprovider = \"matrix\"\n{extra}\n\
         [targets.matrix]\nhomeserver = \"{url}\"\nuser = \"@probe:localhost\"\npassword = \"{password}\"\n\
         recipient = \"@rx:localhost\"\nrecipient_password = \"{RX_PASSWORD}\"\n{rooms}\
         [targets.sla]\nservice_start = \"2026-01-01\"\ntimezone = \"UTC\"\nmonthly_fee = \"1\"\n"
    )
}

/// A homeserver with the two probe accounts and the rooms `setup` made.
async fn homeserver(limits: RateLimits) -> (Synapse, [String; 2]) {
    let synapse = Synapse::start(limits).await;
    synapse.register("probe", PASSWORD).await;
    synapse.register("rx", RX_PASSWORD).await;
    let rooms = setup_rooms(&synapse).await;
    (synapse, rooms)
}

async fn setup_rooms(synapse: &Synapse) -> [String; 2] {
    let text = ConfigBuilder::new("p1", "sqlite://unused.db")
        .raw(&matrix_target("mx", &synapse.url(), PASSWORD, None, ""))
        .build();
    let config = improbe::config::Config::parse(&text, "test").unwrap();
    let ProviderSettings::Matrix(settings) = &config.targets[0].provider else {
        unreachable!("a matrix target")
    };
    let report = improbe::probe::matrix::setup::setup(settings)
        .await
        .unwrap();
    rooms_in(&report[0])
}

/// The two room IDs in setup's first line.
fn rooms_in(line: &str) -> [String; 2] {
    let ids: Vec<String> = line
        .split('"')
        .filter(|part| part.starts_with('!'))
        .map(str::to_owned)
        .collect();
    assert_eq!(ids.len(), 2, "two room IDs in {line:?}");
    [ids[0].clone(), ids[1].clone()]
}

/// Healthy, frozen (SIGSTOP), healthy again, stopped (refused), restarted:
/// one scripted minute each, decided through the daemon and the database.
async fn scripted_minutes(db: TestDb) {
    let (mut synapse, rooms) = homeserver(RateLimits::Relaxed).await;
    let start = at("2026-03-17T00:00:00Z");
    let clock = ScriptedClock::starting_at(start);
    let dir = tempfile::tempdir().unwrap();
    let text = probing(
        &db,
        &dir,
        &[matrix_target(
            "mx",
            &synapse.url(),
            PASSWORD,
            Some(&rooms),
            EVERY_TWO_SECONDS,
        )],
    );
    let daemon = InProcessDaemon::start_with_clock(&text, clock.clone()).await;
    let store = db.store().await;
    crate::common::script_outages(&clock, &mut synapse, store.as_ref(), "mx").await;
    daemon.stop().await;

    let all =
        crate::common::scripted_outage_verdicts(store.as_ref(), "mx", start, db.backend).await;
    // Healthy sends were seen by the recipient, within the timeout.
    let healthy_sends: Vec<_> = all
        .iter()
        .filter(|(m, a)| *m == 0 && a.kind != Kind::Login && a.outcome == Outcome::Ok)
        .map(|(_, a)| a)
        .collect();
    assert!(healthy_sends.len() >= 4, "{healthy_sends:?}");
    for send in healthy_sends {
        assert!(
            matches!(send.delivery, Some(Delivery::Confirmed { after_ms: Some(ms) }) if (0..2000).contains(&ms)),
            "{send:?}"
        );
    }
}

#[tokio::test]
async fn scripted_minutes_against_synapse_on_sqlite() {
    scripted_minutes(TestDb::sqlite()).await;
}

#[tokio::test]
async fn scripted_minutes_against_synapse_on_postgres() {
    let db = TestDb::postgres().await;
    scripted_minutes(db).await;
}

/// One target `mx` probing every second for `seconds` with `password`.
async fn probe_alone(limits: RateLimits, password: &str, seconds: u64) -> (TestDb, Arc<dyn Store>) {
    let (synapse, rooms) = homeserver(limits).await;
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let target = matrix_target("mx", &synapse.url(), password, Some(&rooms), EVERY_SECOND);
    let store = probe_for(&probing(&db, &dir, &[target]), &db, seconds).await;
    (db, store)
}

async fn no_failure_minute(store: &dyn Store, target: &str) {
    let stored = store
        .minute_verdicts(target, crate::common::all_time())
        .await
        .unwrap();
    assert!(!stored.is_empty());
    assert!(
        stored.iter().all(|v| v.verdict != Verdict::Failure),
        "{stored:?}"
    );
}

#[tokio::test]
async fn a_wrong_password_is_inconclusive_never_a_failure() {
    let (_db, store) = probe_alone(RateLimits::Relaxed, "not-the-password", 4).await;
    no_failure_minute(store.as_ref(), "mx").await;
    let all = crate::common::all_attempts(store.as_ref(), "mx").await;
    assert!(all.len() >= 6);
    for a in &all {
        assert_eq!(a.outcome, Outcome::Inconclusive, "{a:?}");
        assert_eq!(a.reason.map(|r| r.as_str()), Some("credentials"), "{a:?}");
        assert_eq!(a.error_code.as_deref(), Some("M_FORBIDDEN"), "{a:?}");
    }
}

#[tokio::test]
async fn synapses_default_rate_limits_are_throttled_never_a_failure() {
    let (_db, store) = probe_alone(RateLimits::Default, PASSWORD, 8).await;
    no_failure_minute(store.as_ref(), "mx").await;
    let all = crate::common::all_attempts(store.as_ref(), "mx").await;
    let throttled: Vec<_> = all
        .iter()
        .filter(|a| a.reason.map(|r| r.as_str()) == Some("throttled"))
        .collect();
    assert!(throttled.iter().any(|a| a.kind == Kind::Login), "{all:?}");
    assert!(throttled.iter().any(|a| a.kind != Kind::Login), "{all:?}");
    assert!(all.iter().all(|a| a.outcome != Outcome::Fail), "{all:?}");
    // Retry-After is honoured: later logins are held back, not sent.
    assert!(
        throttled.iter().any(|a| a.kind == Kind::Login
            && a.error
                .as_deref()
                .is_some_and(|e| e.starts_with("held back"))),
        "{throttled:?}"
    );
}

#[tokio::test]
async fn delivery_is_confirmed_missing_when_hidden_and_ours_once_the_recipient_leaves() {
    let (synapse, rooms) = homeserver(RateLimits::Relaxed).await;
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let timing = format!("{EVERY_SECOND}\noperations = [\"login\", \"send_group\"]");
    let url = synapse.url();
    let text = probing(
        &db,
        &dir,
        &[
            matrix_target("rec", &url, PASSWORD, Some(&rooms), &timing),
            matrix_target(
                "req",
                &url,
                PASSWORD,
                Some(&rooms),
                &format!("{timing}\ndelivery = \"require\""),
            ),
        ],
    );
    let daemon = InProcessDaemon::start(&text).await;
    let store = db.store().await;
    let targets = ["rec", "req"];
    for target in targets {
        crate::common::group_sends_after(store.as_ref(), target, chrono::DateTime::UNIX_EPOCH, 3)
            .await;
    }
    // Any member of a room can post a probe id of another type: the
    // recipient reads it as none and goes on confirming (the sends below,
    // before the recipient leaves, must all be confirmed).
    let rx = synapse.login("rx", RX_PASSWORD).await;
    synapse
        .call(
            Method::PUT,
            &format!("/rooms/{}/send/m.room.message/odd-probe-id", urlencode(&rooms[1])),
            Some(&rx),
            Some(serde_json::json!({ "msgtype": "m.text", "body": "odd", "org.improbe.probe_id": 5 })),
        )
        .await;
    // The sending session of `rec` is logged out behind its back: its next
    // send meets M_UNKNOWN_TOKEN, signs in again once and goes through. (A
    // send racing the logout itself may get Synapse's own 500: left out.)
    let hijacked_at = chrono::Utc::now();
    let hijack = synapse
        .call(
            Method::POST,
            "/login",
            None,
            Some(serde_json::json!({ "type": "m.login.password", "identifier": { "type": "m.id.user", "user": "probe" }, "password": PASSWORD, "device_id": "improbe-rec-p1-send" })),
        )
        .await;
    synapse
        .call(
            Method::POST,
            "/logout",
            hijack["access_token"].as_str(),
            Some(serde_json::json!({})),
        )
        .await;
    let signed_in_again = hijacked_at + chrono::Duration::seconds(1);
    crate::common::group_sends_after(store.as_ref(), "rec", signed_in_again, 2).await;
    // The recipient ignores the sender: Synapse still accepts the sends but
    // never shows them to the recipient, which is still in the room.
    let ignored_at = chrono::Utc::now();
    synapse
        .call(
            Method::PUT,
            &format!(
                "/user/{}/account_data/m.ignored_user_list",
                urlencode("@rx:localhost")
            ),
            Some(&rx),
            Some(serde_json::json!({ "ignored_users": { "@probe:localhost": {} } })),
        )
        .await;
    let while_ignored = ignored_at + chrono::Duration::milliseconds(500);
    for target in targets {
        crate::common::group_sends_after(store.as_ref(), target, while_ignored, 2).await;
    }
    // The recipient leaves the group room: the sends are still accepted,
    // and the recipient, no longer a member, cannot see them: that is our
    // configuration, not the provider's failure. What reached the room just
    // before the departure is still in the recipient's next sync, under
    // `leave` (read with the recipient's own stored filter, 0): the
    // recipient confirms it there, and learns from it that it has left.
    let filtered_sync = |since: Option<String>| {
        let since = since.map_or(String::new(), |s| format!("&since={}", urlencode(&s)));
        format!("/sync?filter=0&timeout=0{since}")
    };
    let since = synapse
        .call(Method::GET, &filtered_sync(None), Some(&rx), None)
        .await["next_batch"]
        .as_str()
        .map(str::to_owned);
    synapse
        .call(
            Method::PUT,
            &format!("/rooms/{}/send/m.room.message/last-before-leaving", urlencode(&rooms[1])),
            Some(&rx),
            Some(serde_json::json!({ "msgtype": "m.text", "body": "last", "org.improbe.probe_id": "last-before-leaving" })),
        )
        .await;
    let left_at = chrono::Utc::now();
    synapse
        .call(
            Method::POST,
            &format!("/rooms/{}/leave", urlencode(&rooms[1])),
            Some(&rx),
            Some(serde_json::json!({})),
        )
        .await;
    let after_leave = synapse
        .call(Method::GET, &filtered_sync(since), Some(&rx), None)
        .await;
    let left_timeline = &after_leave["rooms"]["leave"][&rooms[1]]["timeline"]["events"];
    assert!(
        left_timeline.as_array().is_some_and(|events| events
            .iter()
            .any(|e| e["content"]["org.improbe.probe_id"] == "last-before-leaving")),
        "{after_leave}"
    );
    let after_leaving = left_at + chrono::Duration::milliseconds(500);
    for target in targets {
        crate::common::group_sends_after(store.as_ref(), target, after_leaving, 2).await;
    }
    daemon.stop().await;

    // A send still in flight at a change (the sender ignored, the recipient
    // gone) may land on either side of it: those are left out.
    let one_second = chrono::Duration::seconds(1);
    for target in targets {
        let sends: Vec<_> = crate::common::all_attempts(store.as_ref(), target)
            .await
            .into_iter()
            .filter(|a| a.kind == Kind::SendGroup)
            .collect();
        let racing_the_logout = |a: &&Attempt| {
            a.started_at > hijacked_at - chrono::Duration::milliseconds(300)
                && a.started_at < hijacked_at + one_second
        };
        let before: Vec<_> = sends
            .iter()
            .filter(|a| a.started_at < ignored_at - one_second && !racing_the_logout(a))
            .collect();
        let ignored: Vec<_> = sends
            .iter()
            .filter(|a| a.started_at > while_ignored && a.started_at < left_at - one_second)
            .collect();
        let after: Vec<_> = sends
            .iter()
            .filter(|a| a.started_at > after_leaving)
            .collect();
        assert!(
            before.len() >= 2 && !ignored.is_empty() && after.len() >= 2,
            "{sends:?}"
        );
        assert!(
            before
                .iter()
                .all(|a| matches!(a.delivery, Some(Delivery::Confirmed { .. }))
                    && a.outcome == Outcome::Ok),
            "{before:?}"
        );
        // Accepted and never seen: with `delivery = "require"` a failure.
        let expected = if target == "rec" {
            Outcome::Ok
        } else {
            Outcome::Fail
        };
        assert!(
            ignored
                .iter()
                .all(|a| a.delivery == Some(Delivery::Missing) && a.outcome == expected),
            "{target}: {ignored:?}"
        );
        // The attempt's latency is the homeserver's answer, not the wait.
        assert!(
            ignored
                .iter()
                .all(|a| a.latency_ms.is_some_and(|ms| ms < 900)),
            "{ignored:?}"
        );
        // Out of the room, delivery is not checked (`record`), or the send
        // is inconclusive, ours to fix (`require`): never a failure.
        let (outcome, reason) = if target == "rec" {
            (Outcome::Ok, None)
        } else {
            (
                Outcome::Inconclusive,
                Some(InconclusiveReason::RequestRejected),
            )
        };
        assert!(
            after.iter().all(|a| a.delivery.is_none()
                && a.outcome == outcome
                && a.reason == reason
                && (reason.is_none()
                    || a.error
                        .as_deref()
                        .is_some_and(|e| e.contains("not in the room")))),
            "{target}: {after:?}"
        );
    }

    // The recipients' sync filter is stored on the server (Synapse numbers
    // a user's filters from 0), so each long-poll's URL names it instead of
    // carrying it.
    let stored = synapse
        .call(
            Method::GET,
            &format!("/user/{}/filter/0", urlencode("@rx:localhost")),
            Some(&rx),
            None,
        )
        .await;
    assert_eq!(
        stored["room"]["rooms"],
        serde_json::json!(rooms),
        "{stored}"
    );

    // A few seconds of logins every second left no pile of devices: each
    // login's token is logged out (deleting its device) and every login
    // reuses one fixed device ID, so at most the last login's device, whose
    // logout may still be under way, remains beside the sending sessions.
    let token = synapse.login("probe", PASSWORD).await;
    let devices = synapse
        .call(Method::GET, "/devices", Some(&token), None)
        .await;
    let mut names: Vec<&str> = devices["devices"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["device_id"].as_str())
        .filter(|d| d.starts_with("improbe-") && *d != "improbe-setup")
        .collect();
    names.sort_unstable();
    names.retain(|d| !d.ends_with("-login"));
    assert_eq!(names, ["improbe-rec-p1-send", "improbe-req-p1-send"]);
    let all = devices["devices"].as_array().unwrap().len();
    assert!(
        all <= 2 + 2 + 1,
        "sending, last logins and this check's: {devices}"
    );
}

fn urlencode(segment: &str) -> String {
    improbe::probe::matrix::client::escape(segment)
}

#[tokio::test]
async fn setup_twice_leaves_the_same_rooms() {
    let (synapse, first) = homeserver(RateLimits::Relaxed).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("improbe.toml");
    std::fs::write(
        &config,
        ConfigBuilder::new("p1", "sqlite://unused.db")
            .raw(&matrix_target("mx", &synapse.url(), PASSWORD, None, ""))
            .build(),
    )
    .unwrap();
    let output = crate::common::improbe_command()
        .arg("--config")
        .arg(&config)
        .args(["setup", "--target", "mx"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(rooms_in(stdout.lines().next().unwrap()), first, "{stdout}");
    assert!(!stdout.contains("created"), "{stdout}");
    assert!(
        stdout.contains("@rx:localhost is in both rooms"),
        "{stdout}"
    );
}
