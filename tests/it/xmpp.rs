//! The XMPP adapter against a real Prosody (tests/it/common/prosody.rs):
//! STARTTLS with the test's CA, scripted minutes through the daemon into
//! both databases, a wrong password and an untrusted certificate that must
//! never become failure minutes, delivery confirmed by the recipient, a
//! recipient the room removes (ours, never a failure), and `improbe setup`
//! twice.

use crate::common::ServerUnderTest;
use crate::common::prosody::{Prosody, ROOM};
use crate::common::{ConfigBuilder, InProcessDaemon, ScriptedClock, TestDb, at, probe_for};
use improbe::attempt::{Delivery, InconclusiveReason, Kind, Outcome};
use improbe::probe::ProviderSettings;
use improbe::probe::xmpp::XmppSettings;
use improbe::probe::xmpp::connect::Connector;
use improbe::probe::xmpp::scram::LoginPassword;
use improbe::probe::xmpp::session::Session;
use improbe::verdict::Verdict;
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::minidom::Element;
use tokio_xmpp::minidom::rxml::NcName;
use tokio_xmpp::parsers::iq::Iq;

const PASSWORD: &str = "probe-password";
const RX_PASSWORD: &str = "recipient-password";
/// Attempts every second, each with a second to answer.
const EVERY_SECOND: &str = "interval = \"1s\"\ntimeout = \"1s\"";

fn xmpp_target(name: &str, section: &str, extra: &str) -> String {
    format!(
        "[[targets]]\nname = \"{name}\"\nprovider = \"xmpp\"\n{extra}\n{section}\
         [targets.sla]\nservice_start = \"2026-01-01\"\ntimezone = \"UTC\"\nmonthly_fee = \"1\"\n"
    )
}

/// A server with the two probe accounts, and the room `setup` made.
async fn server() -> Prosody {
    let prosody = Prosody::start().await;
    prosody.register("probe", PASSWORD);
    prosody.register("rx", RX_PASSWORD);
    let report = setup(&prosody).await;
    assert!(report.iter().any(|l| l.contains(ROOM)), "{report:?}");
    prosody
}

/// The `[targets.xmpp]` settings of the probe account with its recipient.
fn settings(prosody: &Prosody) -> XmppSettings {
    let text = ConfigBuilder::new("p1", "sqlite://unused.db")
        .raw(&xmpp_target(
            "xm",
            &prosody.section("probe", PASSWORD, Some(("rx", RX_PASSWORD))),
            "",
        ))
        .build();
    let config = improbe::config::Config::parse(&text, "test").unwrap();
    let ProviderSettings::Xmpp(settings) = &config.targets[0].provider else {
        unreachable!("an xmpp target")
    };
    settings.clone()
}

async fn setup(prosody: &Prosody) -> Vec<String> {
    improbe::probe::xmpp::setup::setup(&settings(prosody))
        .await
        .unwrap()
}

fn probing(db: &TestDb, dir: &tempfile::TempDir, target: &str) -> String {
    ConfigBuilder::new("p1", &db.url)
        .data_dir(dir.path())
        .raw(target)
        .build()
}

#[tokio::test]
async fn healthy_probing_signs_in_sends_and_sees_delivery() {
    let prosody = server().await;
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let section = prosody.section("probe", PASSWORD, Some(("rx", RX_PASSWORD)));
    let store = probe_for(
        &probing(&db, &dir, &xmpp_target("xm", &section, EVERY_SECOND)),
        &db,
        5,
    )
    .await;
    let all = crate::common::all_attempts(store.as_ref(), "xm").await;
    assert!(all.len() >= 9, "{all:#?}");
    for a in &all {
        assert_eq!(a.outcome, Outcome::Ok, "{a:?}");
        // Sends are checked once the recipient is in (from the second one).
        if a.kind == Kind::Login || a.delivery.is_none() {
            continue;
        }
        assert!(
            matches!(a.delivery, Some(Delivery::Confirmed { after_ms: Some(ms) }) if (0..1000).contains(&ms)),
            "{a:?}"
        );
    }
    let confirmed = all
        .iter()
        .filter(|a| matches!(a.delivery, Some(Delivery::Confirmed { .. })))
        .count();
    assert!(confirmed >= 6, "{all:#?}");
    assert!(
        all.iter()
            .all(|a| a.kind != Kind::Login || a.delivery.is_none())
    );
}

/// Healthy, frozen (SIGSTOP), healthy again, stopped (refused), restarted:
/// one scripted minute each, decided through the daemon and the database.
async fn scripted_minutes(db: TestDb) {
    let mut prosody = server().await;
    let start = at("2026-03-17T00:00:00Z");
    let clock = ScriptedClock::starting_at(start);
    let dir = tempfile::tempdir().unwrap();
    let section = prosody.section("probe", PASSWORD, Some(("rx", RX_PASSWORD)));
    let text = probing(&db, &dir, &xmpp_target("xm", &section, EVERY_SECOND));
    let daemon = InProcessDaemon::start_with_clock(&text, clock.clone()).await;
    let store = db.store().await;
    crate::common::script_outages(&clock, &mut prosody, store.as_ref(), "xm").await;
    daemon.stop().await;

    let all =
        crate::common::scripted_outage_verdicts(store.as_ref(), "xm", start, db.backend).await;
    // Every kind came back after the restart.
    for kind in Kind::ALL {
        assert!(
            all.iter()
                .any(|(m, a)| *m == 4 && a.kind == kind && a.outcome == Outcome::Ok),
            "{kind:?} after the restart: {all:#?}"
        );
    }
    // The recipient's session ended with the server and it signed in again:
    // a send of the last minute was seen delivered.
    assert!(
        all.iter().any(|(m, a)| *m == 4
            && a.kind != Kind::Login
            && matches!(a.delivery, Some(Delivery::Confirmed { .. }))),
        "no delivery confirmed after the restart: {all:#?}"
    );
}

#[tokio::test]
async fn scripted_minutes_against_prosody_on_sqlite() {
    scripted_minutes(TestDb::sqlite()).await;
}

#[tokio::test]
async fn scripted_minutes_against_prosody_on_postgres() {
    let db = TestDb::postgres().await;
    scripted_minutes(db).await;
}

/// Probes with `section` (against a running server) for 3 s; every attempt must be inconclusive for
/// `reason` with `code`, and no minute a failure.
async fn only_inconclusive(section: &str, reason: &str, code: &str) {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let store = probe_for(
        &probing(&db, &dir, &xmpp_target("xm", section, EVERY_SECOND)),
        &db,
        3,
    )
    .await;
    let all = crate::common::all_attempts(store.as_ref(), "xm").await;
    assert!(all.len() >= 6, "{all:#?}");
    for a in &all {
        assert_eq!(a.outcome, Outcome::Inconclusive, "{a:?}");
        assert_eq!(a.reason.map(|r| r.as_str()), Some(reason), "{a:?}");
        assert_eq!(a.error_code.as_deref(), Some(code), "{a:?}");
    }
    let stored = store
        .minute_verdicts("xm", crate::common::all_time())
        .await
        .unwrap();
    assert!(
        stored.iter().all(|v| v.verdict == Verdict::NoData),
        "{stored:?}"
    );
}

#[tokio::test]
async fn a_wrong_password_is_inconclusive_never_a_failure() {
    let prosody = server().await;
    let section = prosody.section("probe", "not-the-password", None);
    only_inconclusive(&section, "credentials", "not-authorized").await;
}

#[tokio::test]
async fn an_untrusted_certificate_is_inconclusive_never_a_failure() {
    let prosody = server().await;
    // Without the test CA as ca_file, the server's certificate is unknown.
    let section = prosody
        .section("probe", PASSWORD, None)
        .lines()
        .filter(|l| !l.starts_with("ca_file"))
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    only_inconclusive(&section, "credentials", "untrusted-certificate").await;
}

#[tokio::test]
async fn setup_twice_leaves_the_same_room() {
    let prosody = server().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("improbe.toml");
    let section = prosody.section("probe", PASSWORD, Some(("rx", RX_PASSWORD)));
    std::fs::write(
        &config,
        ConfigBuilder::new("p1", "sqlite://unused.db")
            .raw(&xmpp_target("xm", &section, ""))
            .build(),
    )
    .unwrap();
    let run = || {
        crate::common::improbe_command()
            .arg("--config")
            .arg(&config)
            .args(["setup", "--target", "xm"])
            .output()
            .unwrap()
    };
    let (first, second) = (run(), run());
    for output in [&first, &second] {
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stdout = String::from_utf8(second.stdout).unwrap();
    assert_eq!(String::from_utf8(first.stdout).unwrap(), stdout);
    assert!(
        stdout.contains(&format!("room {ROOM}: persistent, members-only")),
        "{stdout}"
    );
    assert!(stdout.contains("rx@localhost: member"), "{stdout}");
    // The room outlives the server: after a restart the recipient is let in
    // (members-only) without setup.
    let mut prosody = prosody;
    prosody.stop();
    prosody.launch().await;
    let db = TestDb::sqlite();
    let store = probe_for(
        &probing(&db, &dir, &xmpp_target("xm", &section, EVERY_SECOND)),
        &db,
        3,
    )
    .await;
    let all = crate::common::all_attempts(store.as_ref(), "xm").await;
    assert!(
        all.iter()
            .any(|a| a.kind == Kind::SendGroup
                && matches!(a.delivery, Some(Delivery::Confirmed { .. }))),
        "{all:#?}"
    );
}

/// The salted password is kept between logins (RFC 5802 §5.1), yet the
/// server checks every login in full: once the account's password changes,
/// the next login fails as a credentials problem, never as healthy.
#[tokio::test]
async fn a_kept_scram_key_never_makes_a_changed_password_look_healthy() {
    use improbe::probe::xmpp::connect::Connector;
    use improbe::probe::xmpp::scram::LoginPassword;
    use improbe::probe::xmpp::session::{sign_in, sign_out};
    let prosody = server().await;
    prosody.register("changing", "first-password");
    let text = ConfigBuilder::new("p1", "sqlite://unused.db")
        .raw(&xmpp_target(
            "xm",
            &prosody.section("changing", "first-password", None),
            "",
        ))
        .build();
    let config = improbe::config::Config::parse(&text, "test").unwrap();
    let ProviderSettings::Xmpp(settings) = &config.targets[0].provider else {
        unreachable!("an xmpp target")
    };
    let connector = Connector::new(settings).unwrap();
    let jid = tokio_xmpp::jid::BareJid::new(&settings.jid).unwrap();
    let password = LoginPassword::new("first-password".to_owned());
    for _ in 0..3 {
        let (stream, _) = sign_in(&connector, &jid, &password, "improbe-scram-test")
            .await
            .unwrap();
        sign_out(stream).await;
    }
    assert_eq!(password.salted.derivations(), 1, "three logins, one PBKDF2");

    prosody.change_password("changing", "second-password");
    let refused = sign_in(&connector, &jid, &password, "improbe-scram-test")
        .await
        .err()
        .expect("the old password must be refused")
        .outcome("login");
    assert_eq!(refused.outcome, Outcome::Inconclusive, "{refused:?}");
    assert_eq!(
        refused.error_code.as_deref(),
        Some("not-authorized"),
        "{refused:?}"
    );
    // The account itself works: it was the password.
    let renewed = LoginPassword::new("second-password".to_owned());
    let (stream, _) = sign_in(&connector, &jid, &renewed, "improbe-scram-test")
        .await
        .unwrap();
    sign_out(stream).await;
}

/// The room's owner changes an occupant or a member (XEP-0045 admin use
/// cases), from a session of its own in the room.
async fn room_admin(owner: &Session, id: &str, item: Element) {
    let query = Element::builder("query", "http://jabber.org/protocol/muc#admin")
        .append(item)
        .build();
    let set = Iq::Set {
        from: None,
        to: Some(Jid::new(ROOM).unwrap()),
        id: id.to_owned(),
        payload: query,
    };
    owner.call(set.into(), id).await.unwrap();
}

fn item(attributes: &[(&'static str, &str)]) -> Element {
    attributes
        .iter()
        .fold(
            Element::builder("item", "http://jabber.org/protocol/muc#admin"),
            |item, (name, value)| item.attr(NcName::try_from(*name).unwrap(), *value),
        )
        .build()
}

/// The room's owner kicks the recipient, which joins again; then takes its
/// membership away, and the members-only room refuses it. Neither is the
/// provider's failure: no send fails, with delivery recorded or required.
#[tokio::test]
async fn a_recipient_the_room_removes_is_ours_never_a_failure() {
    let prosody = server().await;
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let section = prosody.section("probe", PASSWORD, Some(("rx", RX_PASSWORD)));
    let text = ConfigBuilder::new("p1", &db.url)
        .data_dir(dir.path())
        .raw(&xmpp_target("rec", &section, EVERY_SECOND))
        .raw(&xmpp_target(
            "req",
            &section,
            &format!("{EVERY_SECOND}\ndelivery = \"require\""),
        ))
        .build();
    let daemon = InProcessDaemon::start(&text).await;
    let store = db.store().await;
    let targets = ["rec", "req"];
    let confirmed_after = |since: chrono::DateTime<chrono::Utc>| {
        let store = store.clone();
        async move {
            for target in targets {
                crate::common::group_sends_where(store.as_ref(), target, 1, |a| {
                    a.started_at > since && matches!(a.delivery, Some(Delivery::Confirmed { .. }))
                })
                .await;
            }
        }
    };
    let started = chrono::Utc::now();
    confirmed_after(started).await;

    let settings = settings(&prosody);
    let owner = Session::open(
        &Connector::new(&settings).unwrap(),
        &BareJid::new(&settings.jid).unwrap(),
        &LoginPassword::new(PASSWORD.to_owned()),
        "test-owner",
        Some(&BareJid::new(ROOM).unwrap()),
        None,
    )
    .await
    .unwrap();
    let kicked_at = chrono::Utc::now();
    for (i, target) in targets.into_iter().enumerate() {
        let nick = format!("improbe-{target}-p1-rx");
        room_admin(
            &owner,
            &format!("kick-{i}"),
            item(&[("nick", &nick), ("role", "none")]),
        )
        .await;
    }
    // Each recipient's session ends with the kick; the next one joins again.
    confirmed_after(kicked_at).await;

    let revoked_at = chrono::Utc::now();
    room_admin(
        &owner,
        "revoke",
        item(&[("jid", "rx@localhost"), ("affiliation", "none")]),
    )
    .await;
    let refused = revoked_at + chrono::Duration::seconds(2);
    for target in targets {
        crate::common::group_sends_after(store.as_ref(), target, refused, 2).await;
    }
    daemon.stop().await;

    for target in targets {
        let all = crate::common::all_attempts(store.as_ref(), target).await;
        assert!(
            all.iter().all(|a| a.outcome != Outcome::Fail),
            "{target}: {all:#?}"
        );
        // Out of the members-only room, the recipient cannot see a send:
        // not checked (`record`), inconclusive and ours (`require`).
        let sends: Vec<_> = all
            .iter()
            .filter(|a| a.kind != Kind::Login && a.started_at > refused)
            .collect();
        let out_of_the_room = |a: &&improbe::attempt::Attempt| {
            a.delivery.is_none()
                && if target == "rec" {
                    a.outcome == Outcome::Ok
                } else {
                    a.outcome == Outcome::Inconclusive
                        && a.reason == Some(InconclusiveReason::RequestRejected)
                        && a.error
                            .as_deref()
                            .is_some_and(|e| e.contains("not in the room"))
                }
        };
        assert!(
            sends.len() >= 2 && sends.iter().all(out_of_the_room),
            "{target}: {sends:#?}"
        );
    }
}
