//! `provider = "http"` for real: each example of `config/providers/`,
//! pointed at a fake of its vendor (`common::vendors`), through the daemon
//! and the database, and its adapter alone on a clock the test moves.

use std::sync::Arc;

use improbe::attempt::{Attempt, Delivery, InconclusiveReason, Kind, Outcome};
use improbe::clock::Clock;
use improbe::config::Config;
use improbe::minute::Minute;
use improbe::probe::delivery::DeliveryMode;
use improbe::probe::{Probe, ProbeContext};
use improbe::verdict::Verdict::{Available, Failure, NoData};

use crate::common::vendors::{Fault, KEY, STREAM_API_KEY, Vendor, VendorFake};
use crate::common::{
    InProcessDaemon, ScriptedClock, TestDb, at, improbe_command, stored_in_minute, verdicts,
    written_before,
};

fn example_path(vendor: Vendor) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/providers")
        .join(format!("{}.toml", vendor.example()))
}

/// The example as a user would run it against `fake`: only what the file
/// says to edit changes (the base URL, the secret's source, Stream's API
/// key), plus the test's database, data directory and a 1 s cadence.
fn example_config(vendor: Vendor, fake: &VendorFake, db: &TestDb, dir: &std::path::Path) -> String {
    let secret = dir.join("secret");
    std::fs::write(&secret, KEY).unwrap();
    let text = std::fs::read_to_string(example_path(vendor)).unwrap();
    text.lines()
        .map(|line| {
            let key = line.split('=').next().unwrap_or("").trim();
            match key {
                "base_url" => format!("base_url = \"{}\"", fake.base_url()),
                "url" => format!("url = \"{}\"", db.url),
                "id" => format!("{line}\ndata_dir = \"{}\"", dir.display()),
                "interval" => "interval = \"1s\"".to_owned(),
                "timeout" => "timeout = \"1s\"".to_owned(),
                "api_key" if line.contains("YOUR_API_KEY") => {
                    format!("api_key = \"{STREAM_API_KEY}\"")
                }
                _ if line.contains("{ env = ") => {
                    format!("{key} = {{ file = \"{}\" }}", secret.display())
                }
                _ => line.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_example_passes_check_config() {
    let dir = tempfile::tempdir().unwrap();
    for vendor in Vendor::ALL {
        let out = improbe_command()
            .arg("--config")
            .arg(example_path(vendor))
            .args(["check-config", "--offline"])
            .current_dir(dir.path())
            .env("OPENIM_SECRET", "s")
            .env("SENDBIRD_API_TOKEN", "s")
            .env("STREAM_API_SECRET", "s")
            .env("COMETCHAT_API_KEY", "s")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            vendor.example(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Codes the example's table names are classified; any other one a send
/// fails with is counted as unclassified (`improbe_unclassified_error_codes_total`).
#[test]
fn codes_no_rule_names_are_unclassified() {
    for (vendor, named, unnamed) in [
        (Vendor::Sendbird, "400401", "400999"),
        (Vendor::StreamChat, "-1", "73"),
        (
            Vendor::CometChat,
            "ERR_TOO_MANY_REQUESTS",
            "ERR_INTERNAL_SERVER_ERROR",
        ),
        (Vendor::OpenIm, "1501", "1234"),
    ] {
        let text = std::fs::read_to_string(example_path(vendor)).unwrap();
        let config = Config::parse(&text, vendor.example()).unwrap();
        let provider = &config.targets[0].provider;
        assert!(!provider.is_unclassified_code(named), "{vendor:?} {named}");
        assert!(
            provider.is_unclassified_code(unnamed),
            "{vendor:?} {unnamed}"
        );
    }
}

fn sent_ok(a: &Attempt) -> bool {
    a.kind != Kind::Login && a.outcome == Outcome::Ok
}

/// The successful sends of `target` stored in `minute` so far.
async fn sends_in(store: &dyn improbe::store::Store, target: &str, minute: Minute) -> Vec<Attempt> {
    crate::common::all_attempts(store, target)
        .await
        .into_iter()
        .filter(|a| a.minute() == minute && sent_ok(a))
        .collect()
}

fn inconclusive(reason: InconclusiveReason) -> impl Fn(&Attempt) -> bool {
    move |a| a.outcome == Outcome::Inconclusive && a.reason == Some(reason)
}

/// One scripted minute each: healthy, the vendor's internal error, the key
/// revoked, rate-limited, healthy again. Each fault begins before its
/// minute does; the heal waits until every throttled attempt is stored.
async fn scripted_minutes(vendor: Vendor, db: TestDb) {
    let start = at("2026-12-01T00:00:00Z");
    let clock = ScriptedClock::starting_at(start);
    let fake = VendorFake::start(vendor, clock.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let text = example_config(vendor, &fake, &db, dir.path());
    let config = Config::parse(&text, "example").unwrap();
    let name = config.targets[0].name.clone();
    // Pointed at its fake, the example passes the online check too
    // (secrets readable, data directory, database reachable).
    let file = dir.path().join("improbe.toml");
    std::fs::write(&file, &text).unwrap();
    let checked = tokio::task::spawn_blocking(move || {
        improbe_command()
            .arg("--config")
            .arg(&file)
            .arg("check-config")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let daemon = InProcessDaemon::start_with_clock(&text, clock.clone()).await;
    let store = db.store().await;
    let store = store.as_ref();
    let first = Minute::containing(&start);
    let minute = |n: i64| Minute(first.0 + n);

    stored_in_minute(store, &name, minute(0), 4, sent_ok).await;
    // The sends stored while the fake is healthy: one still reading its
    // message back when the fault begins is stored after it, and may find
    // its delivery unknown.
    let mut healthy_sends = sends_in(store, &name, minute(0)).await;
    fake.set_fault(Fault::ServerError);
    clock.enter_minute(1);
    stored_in_minute(store, &name, minute(1), 3, |a| a.outcome == Outcome::Fail).await;
    fake.set_fault(Fault::KeyRevoked);
    clock.enter_minute(2);
    stored_in_minute(
        store,
        &name,
        minute(2),
        3,
        inconclusive(InconclusiveReason::Credentials),
    )
    .await;
    fake.set_fault(Fault::Throttled);
    clock.enter_minute(3);
    stored_in_minute(
        store,
        &name,
        minute(3),
        3,
        inconclusive(InconclusiveReason::Throttled),
    )
    .await;
    clock.enter_minute(4);
    written_before(store, 1, start + chrono::Duration::minutes(4)).await;
    fake.set_fault(Fault::Healthy);
    stored_in_minute(store, &name, minute(4), 3, sent_ok).await;
    healthy_sends.extend(sends_in(store, &name, minute(4)).await);
    daemon.stop().await;

    assert_eq!(
        verdicts(store, &name, first, 5).await,
        [Available, Failure, NoData, NoData, Available],
        "{vendor:?} on {}",
        db.backend
    );
    let all = crate::common::all_attempts(store, &name).await;
    let of = |n: i64| all.iter().filter(move |a| a.minute() == minute(n));
    // A revoked key and a rate limit never count against the provider.
    assert!(
        of(2)
            .chain(of(3))
            .all(|a| a.outcome == Outcome::Inconclusive),
        "{vendor:?}: {all:#?}"
    );
    assert!(
        of(1).all(|a| a.outcome != Outcome::Ok),
        "{vendor:?}: {all:#?}"
    );
    let failed: Vec<&Attempt> = of(1).filter(|a| a.outcome == Outcome::Fail).collect();
    assert!(
        failed
            .iter()
            .all(|a| a.error.as_deref().is_some_and(|e| !e.contains(KEY)))
    );
    if vendor != Vendor::OpenIm {
        // The three with a read-back: every healthy send was seen.
        let healthy = &healthy_sends;
        assert!(healthy.len() >= 7, "{healthy:#?}");
        assert!(
            healthy
                .iter()
                .all(|a| matches!(a.delivery, Some(Delivery::Confirmed { .. }))),
            "{vendor:?}: {healthy:#?}"
        );
    } else {
        // The sends carried tokens the login was given: the fake accepts
        // no other.
        assert!(fake.accepted() >= 7 && !fake.tokens_used().is_empty());
    }
}

macro_rules! scripted_minutes_tests {
    ($($name:ident: $vendor:expr;)*) => {
        mod scripted_minutes {
            use super::*;
            $(
                mod $name {
                    use super::*;
                    #[tokio::test]
                    async fn on_sqlite() {
                        scripted_minutes($vendor, TestDb::sqlite()).await;
                    }
                    #[tokio::test]
                    async fn on_postgres() {
                        scripted_minutes($vendor, TestDb::postgres().await).await;
                    }
                }
            )*
        }
    };
}

scripted_minutes_tests! {
    sendbird: Vendor::Sendbird;
    stream_chat: Vendor::StreamChat;
    cometchat: Vendor::CometChat;
    openim: Vendor::OpenIm;
}

/// The example's adapter alone, on `clock`, pointed at `fake`.
fn probe(
    vendor: Vendor,
    fake: &VendorFake,
    clock: Arc<dyn Clock>,
) -> (Arc<dyn Probe>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let text = example_config(vendor, fake, &TestDb::sqlite(), dir.path());
    let config = Config::parse(&text, "example").unwrap();
    let context = ProbeContext {
        clock,
        target: config.targets[0].name.clone(),
        prober: "test".into(),
        timeout: std::time::Duration::from_secs(2),
        delivery: DeliveryMode::Record,
    };
    (config.targets[0].provider.probe(&context).unwrap(), dir)
}

/// OpenIM's login gives a token and says how long it lasts: the sends use
/// it, and a new one is asked for only once that time has passed, whatever
/// the time the vendor states (the fake refuses an expired token).
#[tokio::test]
async fn the_login_token_is_used_until_the_expiry_it_was_given() {
    let clock = ScriptedClock::starting_at(at("2026-12-01T00:00:00Z"));
    let fake = VendorFake::start(Vendor::OpenIm, clock.clone()).await;
    fake.set_token_lifetime(3_600);
    let (probe, _dir) = probe(Vendor::OpenIm, &fake, clock.clone());
    let send = async || probe.attempt(Kind::SendDirect).await;
    // The two sends start together without a session: one login serves both.
    let (direct, group) = tokio::join!(send(), probe.attempt(Kind::SendGroup));
    assert_eq!((direct.outcome, group.outcome), (Outcome::Ok, Outcome::Ok));
    assert_eq!(fake.logins(), 1, "one token for both sends");
    assert_eq!(fake.tokens_used().len(), 1);
    // The vendor now gives tokens of two minutes.
    fake.set_token_lifetime(120);
    clock.jump_to(chrono::Duration::minutes(59));
    assert_eq!(send().await.outcome, Outcome::Ok);
    assert_eq!(fake.logins(), 1, "the first token still holds");
    clock.jump_to(chrono::Duration::minutes(61));
    assert_eq!(send().await.outcome, Outcome::Ok);
    assert_eq!(fake.logins(), 2, "renewed once expired");
    clock.jump_to(chrono::Duration::minutes(62));
    assert_eq!(send().await.outcome, Outcome::Ok);
    assert_eq!(fake.logins(), 2);
    clock.jump_to(chrono::Duration::minutes(64));
    let renewed = send().await;
    assert_eq!(renewed.outcome, Outcome::Ok, "{renewed:?}");
    assert_eq!(
        fake.logins(),
        3,
        "renewed after the two minutes it was given"
    );
    assert_eq!(fake.tokens_used().len(), 3);
}

/// Without a token the sends cannot run: inconclusive, our credentials,
/// never the provider's failure; once the key works again, a new login.
#[tokio::test]
async fn a_send_without_its_token_is_inconclusive() {
    let clock = ScriptedClock::starting_at(at("2026-12-01T00:00:00Z"));
    let fake = VendorFake::start(Vendor::OpenIm, clock.clone()).await;
    let (probe, _dir) = probe(Vendor::OpenIm, &fake, clock.clone());
    assert_eq!(probe.attempt(Kind::SendGroup).await.outcome, Outcome::Ok);
    fake.set_fault(Fault::KeyRevoked);
    for kind in [Kind::SendGroup, Kind::SendDirect, Kind::Login] {
        let outcome = probe.attempt(kind).await;
        assert_eq!(outcome.outcome, Outcome::Inconclusive, "{outcome:?}");
        assert_eq!(outcome.reason, Some(InconclusiveReason::Credentials));
    }
    fake.set_fault(Fault::Healthy);
    assert_eq!(probe.attempt(Kind::SendGroup).await.outcome, Outcome::Ok);
}

/// Stream's server token is signed with an expiry and signed again before
/// it comes: two hours on, the sends still pass the fake's `exp` check.
#[tokio::test]
async fn a_signed_token_is_renewed_before_it_expires() {
    let clock = ScriptedClock::starting_at(at("2026-12-01T00:00:00Z"));
    let fake = VendorFake::start(Vendor::StreamChat, clock.clone()).await;
    let (probe, _dir) = probe(Vendor::StreamChat, &fake, clock.clone());
    assert_eq!(probe.attempt(Kind::SendDirect).await.outcome, Outcome::Ok);
    assert_eq!(probe.attempt(Kind::SendGroup).await.outcome, Outcome::Ok);
    assert_eq!(fake.tokens_used().len(), 1);
    clock.jump_to(chrono::Duration::hours(2));
    let later = probe.attempt(Kind::SendDirect).await;
    assert_eq!(later.outcome, Outcome::Ok, "{later:?}");
    assert_eq!(fake.tokens_used().len(), 2);
}

/// A send the vendor accepted and the read-back never shows is `missing`
/// (evidence beside an `ok` in record mode); one it shows is confirmed.
#[tokio::test]
async fn a_send_the_read_back_does_not_show_is_missing() {
    let clock = ScriptedClock::starting_at(at("2026-12-01T00:00:00Z"));
    for vendor in [Vendor::Sendbird, Vendor::StreamChat, Vendor::CometChat] {
        let fake = VendorFake::start(vendor, clock.clone()).await;
        let (probe, _dir) = probe(vendor, &fake, clock.clone());
        let seen = probe.attempt(Kind::SendGroup).await;
        assert!(
            matches!(seen.delivery, Some(Delivery::Confirmed { .. })),
            "{vendor:?}: {seen:?}"
        );
        fake.hide_messages(true);
        let hidden = probe.attempt(Kind::SendDirect).await;
        assert_eq!(hidden.outcome, Outcome::Ok, "{vendor:?}");
        assert_eq!(
            hidden.delivery,
            Some(Delivery::Missing),
            "{vendor:?}: {hidden:?}"
        );
    }
}
