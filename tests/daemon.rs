//! `improbe run` as a process: a SIGTERM in the middle of attempts loses none.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TestDb;
use improbe::attempt::Kind;
use improbe::simulator::{Behaviour, Simulator};

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_mid_attempt_finishes_and_records_every_attempt() {
    let sim = Simulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    for kind in Kind::ALL {
        sim.set_behaviour(
            kind,
            Behaviour {
                latency_ms: Some(1_200),
                ..Behaviour::default()
            },
        );
    }
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("improbe.toml");
    std::fs::write(
        &config,
        format!(
            "[prober]\nid = \"sigterm\"\n[database]\nurl = \"{}\"\n[[targets]]\nname = \"sim\"\nprovider = \"simulator\"\ninterval = \"2s\"\ntimeout = \"2s\"\n[targets.simulator]\nendpoint = \"{}\"\n[targets.sla]\nservice_start = \"2026-01-01\"\ntimezone = \"UTC\"\nmonthly_fee = \"1\"\n",
            db.url,
            sim.endpoint()
        ),
    )
    .unwrap();
    let daemon = Command::new(env!("CARGO_BIN_EXE_improbe"))
        .arg("--config")
        .arg(&config)
        .arg("run")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Wait until several attempts were answered and one is in flight right now.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stats: Vec<_> = Kind::ALL.iter().map(|k| sim.stats(*k)).collect();
        let answered: u64 = stats.iter().map(|s| s.ok + s.error).sum();
        let in_flight = stats.iter().any(|s| s.received > s.ok + s.error);
        if answered >= 3 && in_flight {
            break;
        }
        assert!(Instant::now() < deadline, "the daemon never got going");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let signal = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .unwrap();
    assert!(signal.success());
    let status = tokio::task::spawn_blocking(move || daemon.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );

    let stats: Vec<_> = Kind::ALL.iter().map(|k| sim.stats(*k)).collect();
    let received: u64 = stats.iter().map(|s| s.received).sum();
    let answered: u64 = stats.iter().map(|s| s.ok + s.error).sum();
    assert_eq!(received, answered, "an attempt in flight was abandoned");
    let store = db.store().await;
    assert_eq!(
        store.attempt_count().await.unwrap() as u64,
        answered,
        "an answered attempt was not recorded"
    );
}
