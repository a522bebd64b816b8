//! `improbe run` as a process: a SIGTERM in the middle of attempts loses none.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{ConfigBuilder, TestDb, wait};
use improbe::attempt::Kind;
use improbe::simulator::{Behaviour, Simulator};

// A second thread: the daemons are child processes probing servers that
// run on this test's runtime, while the test blocks waiting for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
        ConfigBuilder::new("sigterm", &db.url)
            .simulator_target("sim", &sim.endpoint(), "2s", "2s")
            .build(),
    )
    .unwrap();
    let daemon = crate::common::improbe_command()
        .arg("--config")
        .arg(&config)
        .arg("run")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Wait until several attempts were answered and one is in flight right now.
    wait::until_true(
        "the daemon to get going",
        Duration::from_secs(30),
        || async {
            let stats: Vec<_> = Kind::ALL.iter().map(|k| sim.stats(*k)).collect();
            let answered: u64 = stats.iter().map(|s| s.ok + s.error).sum();
            let in_flight = stats.iter().any(|s| s.received > s.ok + s.error);
            answered >= 3 && in_flight
        },
    )
    .await;
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

async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

// A second thread: `improbe healthcheck`, a blocking child, asks this
// test's in-process daemon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_health_and_readiness_follow_the_probes() {
    let sim = Simulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let db = TestDb::sqlite();
    // A second target that nobody probes (matrix is not probed yet), inside
    // an exclusion window: its minutes have no row, and must read as
    // excluded, as the report reads them, not as no_data.
    let window_start = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let window_end = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let text = ConfigBuilder::new("metrics", &db.url)
        .prober("listen = \"127.0.0.1:0\"")
        .simulator_target("sim", &sim.endpoint(), "1s", "1s")
        .raw(&format!(
            "[[targets]]\nname = \"quiet\"\nprovider = \"matrix\"\n[targets.matrix]\nhomeserver = \"https://m.example\"\nuser = \"@p:m.example\"\npassword = \"unused\"\ndirect_room = \"!d\"\ngroup_room = \"!g\"\n[targets.sla]\nservice_start = \"2026-01-01\"\ntimezone = \"UTC\"\nmonthly_fee = \"1\"\n\
             [[exclusions]]\ntarget = \"quiet\"\nstart = \"{window_start}\"\nend = \"{window_end}\"\nreason = \"announced maintenance\"\nannounced_at = \"2026-01-01T00:00:00Z\"\n"
        ))
        .build();
    let daemon = crate::common::InProcessDaemon::start(&text).await;
    let base = format!("http://{}", daemon.addr.expect("listening"));

    // Ready once probes run and the database answers.
    wait::until_true("/readyz to answer 200", Duration::from_secs(20), || async {
        reqwest::get(format!("{base}/readyz"))
            .await
            .is_ok_and(|r| r.status().as_u16() == 200)
    })
    .await;
    assert_eq!(
        get(&format!("{base}/healthz")).await,
        (200, "ok\n".to_owned())
    );
    let healthcheck = |url: String| {
        crate::common::improbe_command()
            .args(["healthcheck", "--url", &url])
            .output()
            .unwrap()
    };
    assert!(healthcheck(format!("{base}/healthz")).status.success());
    // Wait for a successful attempt of every operation.
    wait::until(Duration::from_secs(20), || async {
        let (_, text) = get(&format!("{base}/metrics")).await;
        let all_ok = Kind::ALL
            .iter()
            .all(|k| text.contains(&format!("kind=\"{k}\",outcome=\"ok\"")));
        if all_ok {
            Ok(())
        } else {
            Err(format!("a success of every operation:\n{text}"))
        }
    })
    .await;

    // Credentials rejected: inconclusive attempts, counted, and not ready.
    sim.set_behaviour(Kind::Login, Behaviour::error(70001));
    let reasons = wait::until(Duration::from_secs(20), || async {
        let (status, body) = get(&format!("{base}/readyz")).await;
        if status == 503 {
            Ok(body)
        } else {
            Err("credentials failures to make the prober unready".into())
        }
    })
    .await;
    assert!(
        reasons.contains("target sim: credentials rejected"),
        "{reasons}"
    );

    // A code missing from the classification table counts, and is made loud.
    sim.set_behaviour(Kind::SendGroup, Behaviour::error(77777));
    wait::until(Duration::from_secs(20), || async {
        let (_, text) = get(&format!("{base}/metrics")).await;
        if text.contains(r#"improbe_unclassified_error_codes_total{target="sim",code="77777"}"#) {
            Ok(())
        } else {
            Err(format!("the unclassified code:\n{text}"))
        }
    })
    .await;

    let (status, exposition) = get(&format!("{base}/metrics")).await;
    assert_eq!(status, 200);
    let mut parser = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/metrics_parse.py"
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    parser
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let parsed = parser.wait_with_output().unwrap();
    assert!(
        parsed.status.success(),
        "invalid exposition: {}\n{exposition}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    let samples = String::from_utf8(parsed.stdout).unwrap();
    let value = |prefix: &str| -> f64 {
        samples
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no sample {prefix} in\n{samples}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(value("counter improbe_attempts_total{kind=send_direct,outcome=ok,target=sim}") >= 1.0);
    assert!(
        value("counter improbe_inconclusive_attempts_total{reason=credentials,target=sim}") >= 1.0
    );
    assert!(
        value("histogram improbe_attempt_duration_seconds_count{kind=login,target=sim}") >= 2.0
    );
    assert!(value("counter improbe_unclassified_error_codes_total{code=77777,target=sim}") >= 1.0);
    assert!(
        value("counter improbe_attempts_total{kind=send_group,outcome=fail,target=sim}") >= 1.0,
        "an unknown code still counts against the provider"
    );
    assert_eq!(
        value("counter improbe_schedule_skipped_total{reason=in_flight}"),
        0.0
    );
    assert!(
        value("histogram improbe_schedule_lateness_seconds_count{}") >= 3.0,
        "{samples}"
    );
    assert_eq!(value("gauge improbe_buffered_attempts{}").fract(), 0.0);
    // The SQLite database's volume, for the alert that it fills within a
    // week, and the database's size as the storage round at start found it.
    assert!(value("gauge improbe_volume_free_bytes{}") > 0.0);
    assert!(value("gauge improbe_database_bytes{}") > 4096.0);
    assert!(
        samples.contains("gauge improbe_service_month_availability_ratio{target=sim}"),
        "{samples}"
    );
    assert!(
        samples.contains("gauge improbe_minute_verdict{target=sim,"),
        "{samples}"
    );
    assert_eq!(
        value("gauge improbe_minute_verdict{target=quiet,verdict=excluded}"),
        1.0,
        "an unprobed minute inside an exclusion window is excluded"
    );

    daemon.stop().await;
    // The daemon keeps the current Service Month in `service_months`.
    let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
    let months_kept: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM service_months WHERE target = 'sim'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let (month, total, claim_deadline): (i64, i64, String) = sqlx::query_as(
        "SELECT month, total_minutes, claim_deadline FROM service_months WHERE target = 'sim' ORDER BY month DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .expect("the daemon wrote the current Service Month");
    let now = chrono::Utc::now();
    let target = &improbe::config::Config::parse(&text, "metrics")
        .unwrap()
        .targets[0];
    let current = improbe::accounting::select_months(
        target,
        improbe::accounting::MonthSelection::Current,
        now,
    )
    .unwrap()
    .remove(0);
    assert_eq!(month, i64::from(current.index));
    assert_eq!(
        months_kept, month,
        "every Service Month to date is written once the database is ready"
    );
    assert_eq!(total, current.total_minutes());
    assert!(
        claim_deadline.contains(&format!(
            "{}",
            current.last_day + chrono::Duration::days(60)
        )),
        "{claim_deadline}"
    );
    // The heartbeat accounts for every attempt the prober stored.
    let reader = db.store().await;
    let now = improbe::minute::Minute::containing(&chrono::Utc::now());
    let beats = reader
        .heartbeats(improbe::minute::MinuteRange::new(
            improbe::minute::Minute(now.0 - 5),
            now.next(),
        ))
        .await
        .unwrap();
    assert!(beats.iter().all(|b| b.prober == "metrics"), "{beats:?}");
    assert_eq!(
        beats.iter().map(|b| b.finished).sum::<i64>(),
        reader.attempt_count().await.unwrap(),
        "{beats:?}"
    );
    let down = healthcheck(format!("{base}/healthz"));
    assert_eq!(
        down.status.code(),
        Some(1),
        "a stopped daemon is not healthy"
    );
    assert!(String::from_utf8_lossy(&down.stderr).contains("/healthz"));
}

/// Waits until `url` answers 200, or panics after `limit`.
async fn wait_until_up(client: &reqwest::Client, url: &str, limit: Duration) {
    wait::until_true(&format!("{url} to answer 200"), limit, || async {
        client
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().as_u16() == 200)
    })
    .await;
}

/// Eighty idle connections against the listener of a daemon allowed 64
/// descriptors: the listener takes only its share, a client that sends half
/// a request is cut off, and no attempt fails for want of a descriptor.
// A second thread: the held connections are blocking sockets, read on
// this test's thread, while the simulator the daemon probes runs on its
// runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_held_against_the_listener_cannot_fail_an_attempt() {
    let sim = Simulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("improbe.toml");
    let port = crate::common::free_port();
    std::fs::write(
        &config,
        ConfigBuilder::new("crowded", &db.url)
            .prober(&format!("listen = \"127.0.0.1:{port}\""))
            .data_dir(dir.path())
            .simulator_target("sim", &sim.endpoint(), "1s", "1s")
            .build(),
    )
    .unwrap();
    let daemon = Command::new("prlimit")
        .arg("--nofile=64:64")
        .arg(env!("CARGO_BIN_EXE_improbe"))
        .arg("--config")
        .arg(&config)
        .arg("run")
        .env_remove("IMPROBE_DATABASE_URL")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    wait_until_up(
        &client,
        &format!("http://127.0.0.1:{port}/healthz"),
        Duration::from_secs(20),
    )
    .await;

    let answered = || -> u64 {
        Kind::ALL
            .iter()
            .map(|k| {
                let s = sim.stats(*k);
                s.ok + s.error
            })
            .sum()
    };
    let before = answered();
    let mut held: Vec<std::net::TcpStream> = (0..80)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    use std::io::{Read, Write};
    held[0].write_all(b"GET /metrics HT").unwrap();
    // Half a request line is cut off after the header-read timeout.
    held[0]
        .set_read_timeout(Some(improbe::daemon::listener::HEADER_READ_TIMEOUT * 3))
        .unwrap();
    let mut buf = [0u8; 64];
    let read = held[0].read(&mut buf);
    assert!(
        matches!(read, Ok(0))
            || read
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "a half request was kept open: {read:?}"
    );
    // Probing goes on meanwhile: at least fifteen more answers.
    wait::until_true(
        "fifteen more answers with the listener crowded",
        Duration::from_secs(30),
        || async { answered() >= before + 15 },
    )
    .await;
    held.clear();
    crate::common::terminate(daemon);

    let store = db.store().await;
    let attempts = crate::common::all_attempts(store.as_ref(), "sim").await;
    let failed: Vec<_> = attempts
        .iter()
        .filter(|a| a.outcome != improbe::attempt::Outcome::Ok)
        .map(|a| (a.kind, a.error.clone(), a.reason))
        .collect();
    assert!(attempts.len() >= 15);
    assert!(
        failed.is_empty(),
        "attempts not ok with a crowded listener: {failed:?}"
    );
}

/// A prober out of descriptors while it makes an attempt records it as
/// inconclusive with reason `prober`: our fault, never the provider's.
#[tokio::test]
async fn an_attempt_without_a_descriptor_is_inconclusive_not_failed() {
    // The descriptor limit is the process's: only where each test has a
    // process of its own (nextest, which the test script uses).
    crate::common::require(
        std::env::var_os("NEXTEST").is_some(),
        "a process of its own (cargo nextest)",
    );
    let sim = Simulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let text = ConfigBuilder::new("starved", &db.url)
        .data_dir(dir.path())
        .simulator_target("sim", &sim.endpoint(), "1s", "1s")
        .build();
    let daemon = crate::common::InProcessDaemon::start(&text).await;
    // Starved only once the database is prepared and written to: this test
    // is about the attempts, not about a start in the middle of it.
    let reader = db.store().await;
    wait::until_true(
        "a login answered and written",
        Duration::from_secs(20),
        || async { sim.stats(Kind::Login).ok >= 1 && reader.attempt_count().await.unwrap() >= 1 },
    )
    .await;
    let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    let limited = Command::new("prlimit")
        .arg("--pid")
        .arg(std::process::id().to_string())
        .arg(format!("--nofile={}:", open + 64))
        .status()
        .unwrap();
    assert!(limited.success());
    let logins_before = sim.stats(Kind::Login).received;
    // Out of descriptors until an attempt has met the limit (every login
    // opens a new connection). A descriptor the daemon closes meanwhile (a
    // connection ending) is taken back at once, so no login finds one free
    // for long.
    let mut hoard = Vec::new();
    wait::until_true(
        "an attempt that met the exhausted descriptors",
        Duration::from_secs(30),
        async || {
            while let Ok(file) = std::fs::File::open("/dev/null") {
                hoard.push(file);
            }
            let mut starved = false;
            // A read that itself finds no descriptor is only "not yet".
            let _ = reader
                .visit_attempts("sim", crate::common::all_time(), &mut |a| {
                    starved |= a.reason.map(|r| r.as_str()) == Some("prober")
                })
                .await;
            starved
        },
    )
    .await;
    let logins_starved = sim.stats(Kind::Login).received - logins_before;
    drop(hoard);
    daemon.stop().await;

    let attempts = crate::common::all_attempts(reader.as_ref(), "sim").await;
    assert!(
        attempts
            .iter()
            .all(|a| a.outcome != improbe::attempt::Outcome::Fail),
        "{:?}",
        attempts
            .iter()
            .filter(|a| a.outcome == improbe::attempt::Outcome::Fail)
            .map(|a| &a.error)
            .collect::<Vec<_>>()
    );
    let ours: Vec<_> = attempts
        .iter()
        .filter(|a| a.reason.map(|r| r.as_str()) == Some("prober"))
        .collect();
    assert!(
        !ours.is_empty(),
        "no attempt met the exhausted descriptors ({logins_starved} logins reached the provider)"
    );
    assert!(ours.iter().all(|a| {
        a.outcome == improbe::attempt::Outcome::Inconclusive
            && a.error
                .as_deref()
                .is_some_and(|e| e.contains("os error 24"))
    }));
}

/// TLS and basic auth on the HTTP surface: every page but `/healthz` and
/// `/readyz` asks for a user, a wrong password is refused, plain HTTP gets
/// nowhere, and `improbe healthcheck` still works from the config.
// A second thread: `improbe healthcheck`, a blocking child, asks this
// test's in-process daemon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_surface_can_require_tls_and_a_password() {
    let sim = Simulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let ca = crate::common::receivers::TestCa::generate();
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let port = crate::common::free_port();
    let hash = bcrypt::hash("s3cret-scrape", 4).unwrap();
    let text = ConfigBuilder::new("guarded", &db.url)
        .prober(&format!("listen = \"127.0.0.1:{port}\""))
        .data_dir(dir.path())
        .simulator_target("sim", &sim.endpoint(), "1s", "1s")
        .raw(&format!(
            "[prober.web]\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n[prober.web.basic_auth_users]\nprometheus = \"{hash}\"\n",
            ca.server_cert().display(),
            ca.server_key().display()
        ))
        .build();
    let config = dir.path().join("improbe.toml");
    std::fs::write(&config, &text).unwrap();
    let daemon = crate::common::InProcessDaemon::start(&text).await;
    let ca_cert = reqwest::Certificate::from_pem(&std::fs::read(ca.ca_pem()).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(ca_cert)
        .build()
        .unwrap();
    let base = format!("https://localhost:{port}");
    wait_until_up(&client, &format!("{base}/healthz"), Duration::from_secs(20)).await;
    let readyz = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_ne!(
        readyz.status().as_u16(),
        401,
        "/readyz is for orchestrators, without a password"
    );
    for path in ["/metrics", "/", "/report/sim"] {
        let anonymous = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(anonymous.status().as_u16(), 401, "{path}");
        assert!(
            anonymous.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
        let wrong = client
            .get(format!("{base}{path}"))
            .basic_auth("prometheus", Some("guess"))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status().as_u16(), 401, "{path}");
    }
    let metrics = client
        .get(format!("{base}/metrics"))
        .basic_auth("prometheus", Some("s3cret-scrape"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status().as_u16(), 200);
    assert!(
        metrics
            .text()
            .await
            .unwrap()
            .contains("improbe_attempts_total")
    );
    // Plain HTTP on the TLS port is not served.
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await;
    assert!(plain.is_err() || plain.unwrap().status().as_u16() >= 400);
    let healthcheck = crate::common::improbe_command()
        .arg("--config")
        .arg(&config)
        .arg("healthcheck")
        .output()
        .unwrap();
    assert!(
        healthcheck.status.success(),
        "{}",
        String::from_utf8_lossy(&healthcheck.stderr)
    );
    daemon.stop().await;
}
