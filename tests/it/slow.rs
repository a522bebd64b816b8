//! The slow set: tests that need real wall-clock minutes, or minutes of a
//! compiler. CI runs them; each takes two to ten minutes, and they run side
//! by side with the rest.

use std::sync::Arc;

use crate::common::{ConfigBuilder, TestDb, backends};
use chrono::Utc;
use improbe::clock::{Clock, SystemClock};
use improbe::config::Config;
use improbe::daemon;
use improbe::minute::{Minute, MinuteRange};
use improbe::simulator::{Behaviour, Phase, Simulator};
use improbe::verdict::Verdict;
use tokio::sync::watch;

// A second thread: the daemons are child processes probing servers that
// run on this test's runtime, while the test blocks waiting for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_a_scheduled_outage_is_a_failure_minute_on_every_backend() {
    let sim = Simulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let now = Utc::now();
    // The simulator answers by the minute a request arrives in, improbe
    // counts an attempt in the minute it started: a request started in a
    // phase's last milliseconds may be answered by the next phase. The
    // outage therefore comes last and lasts two minutes, only the first
    // asserted exactly; the second absorbs that boundary, and the login-only
    // minute before it loses nothing by one failed answer at its end.
    let login_only = Minute::containing(&now).next();
    let outage = login_only.next();
    let outage_tail = outage.next();
    let outage_phase = |minute: Minute| Phase {
        minute: minute.start(),
        login: Behaviour::http(503),
        send_direct: Behaviour::error(20005),
        send_group: Behaviour {
            hang: true,
            ..Behaviour::default()
        },
        history: Behaviour::healthy(),
    };
    sim.schedule([
        Phase {
            minute: login_only.start(),
            login: Behaviour::healthy(),
            send_direct: Behaviour::error(90995),
            send_group: Behaviour::http(500),
            history: Behaviour::healthy(),
        },
        outage_phase(outage),
        outage_phase(outage_tail),
    ]);

    let dbs: Vec<TestDb> = backends().await;
    let mut running = Vec::new();
    let (stop, stopped) = watch::channel(false);
    for db in &dbs {
        let text = ConfigBuilder::new(&format!("slow-{}", db.backend), &db.url)
            .simulator_target("sim", &sim.endpoint(), "3s", "2s")
            .build();
        let config = Config::parse(&text, "slow").unwrap();
        let store = db.store().await;
        let stopped = stopped.clone();
        running.push((
            db.backend,
            store.clone(),
            tokio::spawn(async move {
                daemon::run(
                    &config,
                    store,
                    Arc::new(SystemClock) as Arc<dyn Clock>,
                    stopped,
                )
                .await
            }),
        ));
    }
    // Run until the hangs started at the script's end have timed out.
    let until = outage_tail.next().start() + chrono::Duration::seconds(3);
    tokio::time::sleep((until - Utc::now()).to_std().unwrap()).await;
    stop.send(true).unwrap();
    for (backend, store, task) in running {
        task.await.unwrap().unwrap();
        let verdicts = store
            .minute_verdicts("sim", MinuteRange::new(login_only, outage_tail))
            .await
            .unwrap();
        let got: Vec<_> = verdicts.iter().map(|v| (v.minute, v.verdict)).collect();
        assert_eq!(
            got,
            vec![(login_only, Verdict::Available), (outage, Verdict::Failure)],
            "{backend}"
        );
        let failing = &verdicts[1];
        assert_eq!(failing.counts.ok, 0, "{backend}");
        assert!(
            failing.counts.fail >= 3 * 19,
            "{backend}: failures spread over the minute: {failing:?}"
        );
        // Twenty logins start in the login-only minute (one every 3 s).
        assert!(
            verdicts[0].counts.ok >= 20,
            "{backend}: logins of the login-only minute: {:?}",
            verdicts[0]
        );
        // A heartbeat for every minute the prober ran, and together they
        // account for every attempt it stored.
        let beats = store
            .heartbeats(MinuteRange::new(
                Minute(login_only.0 - 5),
                outage_tail.next().next(),
            ))
            .await
            .unwrap();
        for minute in [login_only, outage, outage_tail] {
            let beat = beats
                .iter()
                .find(|b| b.minute == minute)
                .unwrap_or_else(|| panic!("{backend}: no heartbeat in {minute:?}: {beats:?}"));
            assert_eq!(beat.prober, format!("slow-{backend}"));
            // Attempts are counted in the minute they finish, so a hang that
            // crosses a minute boundary moves one to the next minute.
            assert!(beat.finished >= 3 * 19, "{backend}: {beat:?}");
            assert!(beat.scheduled >= 3 * 19, "{backend}: {beat:?}");
        }
        let finished: i64 = beats.iter().map(|b| b.finished).sum();
        assert_eq!(finished, store.attempt_count().await.unwrap(), "{backend}");
    }
}

#[test]
fn slow_the_demo_shows_the_scripted_minutes() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::common::improbe_command()
        .args(["demo", "--minutes", "4"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdict_of = |label: &str| {
        stdout
            .lines()
            .find(|l| l.contains(&format!("({label})")))
            .unwrap_or_else(|| panic!("no line for {label}:\n{stdout}"))
            .split_whitespace()
            .nth(2)
            .unwrap()
            .to_owned()
    };
    assert_eq!(verdict_of("healthy"), "available");
    assert_eq!(verdict_of("everything fails"), "failure");
    assert_eq!(verdict_of("only login works"), "available");
    // The SLA counts the lost sends' minute available; the read-back names them.
    let lost = "sends accepted, never delivered";
    assert_eq!(verdict_of(lost), "available");
    let lost_line = stdout
        .lines()
        .find(|l| l.contains(&format!("({lost})")))
        .unwrap();
    let undelivered: u32 = lost_line
        .split_whitespace()
        .find_map(|word| word.strip_prefix("undelivered="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no undelivered count in {lost_line}"));
    assert!(undelivered >= 20, "{lost_line}");
    let healthy_line = stdout.lines().find(|l| l.contains("(healthy)")).unwrap();
    assert!(healthy_line.contains("undelivered=0 "), "{healthy_line}");
    assert!(stdout.contains("AVAILABILITY"), "{stdout}");
    assert!(dir.path().join("improbe-demo.db").exists());
}

/// `docker build .` as the README gives it, with podman: the Dockerfile's
/// release build from source in `rust:1.95-slim-bookworm` (made by
/// `scripts/container-base.sh` from Debian's archive and this machine's
/// toolchain), then its runtime stage. The build runs at the lowest CPU
/// and disk priority, so that it takes only what the other tests leave.
#[test]
fn slow_the_image_builds_from_source_with_podman() {
    use crate::container::{Cleanup, RUN_FLAGS, podman, podman_ok, require_podman};
    require_podman();
    let dockerfile = concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile");
    let text = std::fs::read_to_string(dockerfile).unwrap();
    let rust_image = text
        .lines()
        .find_map(|l| l.strip_prefix("FROM rust:"))
        .and_then(|l| l.split_whitespace().next())
        .map(|tag| format!("docker.io/library/rust:{tag}"))
        .expect("the build stage's image");
    crate::common::require(
        podman(&["image", "exists", &rust_image]).status.success(),
        "the Rust image scripts/container-base.sh makes",
    );
    let image = format!("localhost/improbe:source-{}", std::process::id());
    let cleanup = Cleanup {
        containers: vec![format!("improbe-source-{}", std::process::id())],
        volumes: Vec::new(),
        image: image.clone(),
    };
    // Idle disk priority too: the compiler's writes must not slow the
    // other tests' databases and servers.
    let mut build = std::process::Command::new("ionice");
    build.args(["-c", "3", "nice", "-n", "19", "podman", "build"]);
    build.args(["--pull=never", "--format", "docker"]);
    build.args(RUN_FLAGS).args(["--layers=false", "-t", &image]);
    let started = std::time::Instant::now();
    let out = build.arg(env!("CARGO_MANIFEST_DIR")).output().unwrap();
    assert!(
        out.status.success(),
        "podman build .: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("built from source in {:?}", started.elapsed());

    let mut args = vec!["run", "--rm"];
    args.extend(RUN_FLAGS);
    args.extend([image.as_str(), "--version"]);
    let version = podman_ok(&args);
    assert!(
        version.contains(env!("CARGO_PKG_VERSION")),
        "improbe --version in the image: {version}"
    );
    let user = podman_ok(&["image", "inspect", "--format", "{{.Config.User}}", &image]);
    assert_eq!(user.trim(), "improbe");
    // The image's binary is the release build with its relocations packed
    // (Dockerfile, docs/container.md), and stripped.
    podman_ok(&["create", "--name", &cleanup.containers[0], &image]);
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("improbe");
    let from = format!("{}:/usr/local/bin/improbe", cleanup.containers[0]);
    podman_ok(&["cp", &from, binary.to_str().unwrap()]);
    let dynamic = std::process::Command::new("readelf")
        .args(["--dynamic", "--section-headers"])
        .arg(&binary)
        .output()
        .unwrap();
    let dynamic = String::from_utf8_lossy(&dynamic.stdout);
    assert!(
        dynamic.contains("(RELR)"),
        "no packed relocations: {dynamic}"
    );
    assert!(!dynamic.contains(".debug_line"), "not stripped");
}
