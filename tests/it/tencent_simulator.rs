//! The real Tencent adapter against the built-in simulator over real sockets:
//! every behaviour the simulator can inject, classified as docs/sla.md says.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use improbe::attempt::InconclusiveReason::{self, Credentials, RequestRejected, Throttled};
use improbe::attempt::{Kind, Outcome};
use improbe::clock::SystemClock;
use improbe::config::Secret;
use improbe::probe::Fault;
use improbe::probe::Probe;
use improbe::probe::tencent::TencentSettings;
use improbe::probe::tencent::codes;
use improbe::probe::tencent::setup::setup_app;
use improbe::probe::tencent::{TencentProbe, usersig};
use improbe::simulator::{self, Behaviour, Simulator};

async fn simulator() -> Simulator {
    Simulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn probe_for(settings: &TencentSettings) -> TencentProbe {
    TencentProbe::new(settings, Arc::new(SystemClock)).unwrap()
}

#[tokio::test]
async fn a_healthy_simulator_accepts_every_operation() {
    let sim = simulator().await;
    let probe = probe_for(&simulator::target_settings(&sim.endpoint()));
    for kind in Kind::ALL {
        let result = probe.attempt(kind).await;
        assert_eq!(result.outcome, Outcome::Ok, "{kind}: {result:?}");
        assert_eq!(result.http_status, Some(200));
        assert_eq!(sim.stats(kind).ok, 1);
    }
}

/// (behaviour, outcome, HTTP status, error code, reason, error text contains)
type Case = (
    Behaviour,
    Outcome,
    Option<i32>,
    Option<&'static str>,
    Option<InconclusiveReason>,
    &'static str,
);

#[tokio::test]
async fn injected_faults_are_classified_per_the_sla() {
    let sim = simulator().await;
    let probe = probe_for(&simulator::target_settings(&sim.endpoint()));
    // (behaviour, outcome, http status, error code, reason, error text contains)
    let cases: Vec<Case> = vec![
        (
            Behaviour::error(70500),
            Outcome::Fail,
            Some(200),
            Some("70500"),
            None,
            "simulated error 70500",
        ),
        (
            Behaviour::error(20005),
            Outcome::Fail,
            Some(200),
            Some("20005"),
            None,
            "",
        ),
        (
            Behaviour::error(70001),
            Outcome::Inconclusive,
            Some(200),
            Some("70001"),
            Some(Credentials),
            "",
        ),
        (
            Behaviour::error(90001),
            Outcome::Inconclusive,
            Some(200),
            Some("90001"),
            Some(RequestRejected),
            "",
        ),
        (
            Behaviour::error(60007),
            Outcome::Inconclusive,
            Some(200),
            Some("60007"),
            Some(Throttled),
            "",
        ),
        (
            Behaviour::error(77777),
            Outcome::Fail,
            Some(200),
            Some("77777"),
            None,
            "",
        ),
        (
            Behaviour::http(503),
            Outcome::Fail,
            Some(503),
            None,
            None,
            "HTTP 503",
        ),
        (
            Behaviour::http(502),
            Outcome::Fail,
            Some(502),
            None,
            None,
            "HTTP 502",
        ),
        (
            Behaviour {
                reset: true,
                ..Behaviour::default()
            },
            Outcome::Fail,
            None,
            None,
            None,
            "error sending request",
        ),
    ];
    for kind in Kind::ALL {
        for (behaviour, outcome, status, code, reason, text) in &cases {
            sim.set_behaviour(kind, behaviour.clone());
            let result = probe.attempt(kind).await;
            let context = format!("{kind} {behaviour:?}: {result:?}");
            assert_eq!(result.outcome, *outcome, "{context}");
            assert_eq!(result.http_status, *status, "{context}");
            assert_eq!(result.error_code.as_deref(), *code, "{context}");
            assert_eq!(result.reason, *reason, "{context}");
            assert!(
                result.error.as_deref().unwrap_or_default().contains(text),
                "{context}"
            );
            assert!(
                !result
                    .error
                    .as_deref()
                    .unwrap_or_default()
                    .contains("usersig"),
                "a UserSig leaked: {context}"
            );
        }
        sim.set_behaviour(kind, Behaviour::healthy());
    }
    assert!(sim.stats(Kind::Login).reset >= 1);
}

#[tokio::test]
async fn latency_is_waited_for_and_a_hang_never_answers() {
    let sim = simulator().await;
    let probe = probe_for(&simulator::target_settings(&sim.endpoint()));
    sim.set_behaviour(
        Kind::SendDirect,
        Behaviour {
            latency_ms: Some(300),
            ..Behaviour::default()
        },
    );
    let started = std::time::Instant::now();
    assert_eq!(probe.attempt(Kind::SendDirect).await.outcome, Outcome::Ok);
    assert!(started.elapsed() >= Duration::from_millis(300));
    sim.set_behaviour(
        Kind::SendGroup,
        Behaviour {
            hang: true,
            ..Behaviour::default()
        },
    );
    let hung =
        tokio::time::timeout(Duration::from_millis(500), probe.attempt(Kind::SendGroup)).await;
    assert!(hung.is_err(), "a hang must not answer");
}

#[tokio::test]
async fn dropped_group_messages_are_not_successes() {
    let sim = simulator().await;
    let probe = probe_for(&simulator::target_settings(&sim.endpoint()));
    sim.set_behaviour(
        Kind::SendGroup,
        Behaviour {
            drop_reason: Some("MsgFreqCtrl".into()),
            ..Behaviour::default()
        },
    );
    let result = probe.attempt(Kind::SendGroup).await;
    assert_eq!(
        (result.outcome, result.reason),
        (Outcome::Inconclusive, Some(Throttled))
    );
    assert!(result.error.unwrap().contains("MsgFreqCtrl"));
}

#[tokio::test]
async fn an_empty_drop_reason_is_an_ordinary_success() {
    let sim = simulator().await;
    let probe = probe_for(&simulator::target_settings(&sim.endpoint()));
    sim.set_behaviour(
        Kind::SendGroup,
        Behaviour {
            drop_reason: Some(String::new()),
            ..Behaviour::default()
        },
    );
    let result = probe.attempt(Kind::SendGroup).await;
    assert_eq!(result.outcome, Outcome::Ok, "{result:?}");
}

/// Every row of the classification table, answered by the simulator and read
/// by the real adapter for each operation: the table and the response
/// handling together decide, not the lookup alone.
#[tokio::test]
async fn every_code_in_the_table_is_classified_through_the_adapter() {
    let sim = simulator().await;
    let probe = probe_for(&simulator::target_settings(&sim.endpoint()));
    let ranged = codes::RANGES
        .iter()
        .flat_map(|(range, fault)| [(*range.start(), *fault), (*range.end(), *fault)]);
    let rows: Vec<(i64, Fault)> = codes::CODES.iter().copied().chain(ranged).collect();
    assert!(rows.len() >= 96, "the table shrank: {}", rows.len());
    for kind in Kind::ALL {
        for &(code, fault) in &rows {
            sim.set_behaviour(kind, Behaviour::error(code));
            let result = probe.attempt(kind).await;
            let context = format!("{kind} ErrorCode {code}: {result:?}");
            let expected = match fault {
                Fault::Provider => (Outcome::Fail, None),
                Fault::Ours(reason) => (Outcome::Inconclusive, Some(reason)),
            };
            assert_eq!((result.outcome, result.reason), expected, "{context}");
            assert_eq!(result.error_code, Some(code.to_string()), "{context}");
            assert_eq!(result.http_status, Some(200), "{context}");
        }
        sim.set_behaviour(kind, Behaviour::healthy());
    }
}

#[tokio::test]
async fn the_issues_misclassified_answers_are_now_ours() {
    let sim = simulator().await;
    let probe = probe_for(&simulator::target_settings(&sim.endpoint()));
    let cases: [(Kind, i64, InconclusiveReason); 10] = [
        (Kind::SendGroup, 10007, RequestRejected),
        (Kind::SendGroup, 10008, Credentials),
        (Kind::SendGroup, 80001, RequestRejected),
        (Kind::SendGroup, 10026, RequestRejected),
        (Kind::SendDirect, 20002, Credentials),
        (Kind::SendDirect, 20012, RequestRejected),
        (Kind::SendDirect, 125_000, RequestRejected),
        (Kind::Login, 60021, Credentials),
        (Kind::Login, 70051, Credentials),
        (Kind::Login, 70050, Credentials),
    ];
    for (kind, code, reason) in cases {
        sim.set_behaviour(kind, Behaviour::error(code));
        let result = probe.attempt(kind).await;
        assert_eq!(
            (result.outcome, result.reason),
            (Outcome::Inconclusive, Some(reason)),
            "{kind} {code}: {result:?}"
        );
    }
    sim.set_behaviour(Kind::SendDirect, Behaviour::error(60013));
    assert_eq!(probe.attempt(Kind::SendDirect).await.outcome, Outcome::Fail);
}

#[tokio::test]
async fn account_check_items_are_classified_by_their_own_code() {
    let sim = simulator().await;
    let probe = probe_for(&simulator::target_settings(&sim.endpoint()));
    let item_error = |code| Behaviour {
        item_error_code: Some(code),
        ..Behaviour::default()
    };
    // An internal error on the item is the provider's, not our credentials.
    sim.set_behaviour(Kind::Login, item_error(70500));
    let internal = probe.attempt(Kind::Login).await;
    assert_eq!(
        (internal.outcome, internal.error_code.as_deref()),
        (Outcome::Fail, Some("70500")),
        "{internal:?}"
    );
    assert!(
        internal
            .error
            .unwrap()
            .contains("simulated item error 70500")
    );
    sim.set_behaviour(Kind::Login, item_error(70107));
    let unknown_user = probe.attempt(Kind::Login).await;
    assert_eq!(
        (unknown_user.outcome, unknown_user.reason),
        (Outcome::Inconclusive, Some(RequestRejected))
    );
    sim.set_behaviour(Kind::Login, item_error(88_888));
    assert_eq!(probe.attempt(Kind::Login).await.outcome, Outcome::Fail);
}

#[tokio::test]
async fn the_simulator_checks_signatures_and_accounts_like_tencent() {
    let sim = simulator().await;
    let mut wrong_key = simulator::target_settings(&sim.endpoint());
    wrong_key.secret_key = Secret::Plain("not-the-key".into());
    let result = probe_for(&wrong_key).attempt(Kind::SendDirect).await;
    assert_eq!(
        (result.outcome, result.error_code.as_deref()),
        (Outcome::Inconclusive, Some("70009"))
    );

    let mut stranger = simulator::target_settings(&sim.endpoint());
    stranger.sender = "nobody".into();
    let login = probe_for(&stranger).attempt(Kind::Login).await;
    assert_eq!(
        (login.outcome, login.reason),
        (Outcome::Inconclusive, Some(Credentials))
    );
    assert!(login.error.unwrap().contains("nobody"));
    let send = probe_for(&stranger).attempt(Kind::SendDirect).await;
    assert_eq!(
        (send.outcome, send.error_code.as_deref()),
        (Outcome::Inconclusive, Some("90008"))
    );
}

#[tokio::test]
async fn tencent_setup_creates_accounts_and_group_idempotently() {
    let sim = simulator().await;
    let settings = TencentSettings {
        sender: "alice".into(),
        recipient: "bob".into(),
        group: "@TGS#improbe".into(),
        ..simulator::target_settings(&sim.endpoint())
    };
    let group = setup_app(&settings).await.unwrap();
    assert!(
        group.starts_with("@TGS#") && group != "@TGS#improbe",
        "Tencent assigns @TGS# IDs: {group}"
    );
    let configured = TencentSettings {
        group: group.clone(),
        ..settings.clone()
    };
    assert_eq!(
        setup_app(&configured).await.unwrap(),
        group,
        "a second run changes nothing"
    );
    let probe = probe_for(&configured);
    for kind in Kind::ALL {
        assert_eq!(probe.attempt(kind).await.outcome, Outcome::Ok, "{kind}");
    }
    let named = TencentSettings {
        group: "probes".into(),
        ..settings
    };
    assert_eq!(setup_app(&named).await.unwrap(), "probes");
}

#[test]
fn usersigs_verify_with_an_independent_implementation() {
    let key = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e";
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/usersig_verify.py");
    for (identifier, time, expire) in [
        ("administrator", 1_600_000_000, 86_400),
        ("xiaojun", 1_700_000_123, 15_552_000),
    ] {
        let token = usersig::mint(key, identifier, 1_400_000_000, time, expire);
        let ok = Command::new("python3")
            .args([script, &token, key, "1400000000", identifier])
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
        let wrong = Command::new("python3")
            .args([script, &token, "another key", "1400000000", identifier])
            .output()
            .unwrap();
        assert!(!wrong.status.success());
        assert!(String::from_utf8_lossy(&wrong.stderr).contains("signature mismatch"));
    }
}
