//! Storage faults under load: PostgreSQL stopped, the SQLite file made
//! read-only, its volume full, the process killed between spool and replay. Afterwards every
//! attempt the prober finished is in the database exactly once, and a storage
//! fault never shows up as a provider failure.
//!
//! These tests change file attributes (`chattr +i`), mount a small tmpfs
//! and run a private PostgreSQL server, so they need root, as CI has.

use crate::common::postgres::PrivatePostgres;
use crate::common::{ConfigBuilder, InProcessDaemon, answered, spawn_run, terminate, wait};

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use chrono::Utc;
use improbe::attempt::Kind;
use improbe::minute::{Minute, MinuteRange};
use improbe::simulator::Simulator;
use improbe::store::{self, Store};
use improbe::verdict::Verdict;

const TARGETS: usize = 20;

fn config_text(id: &str, db_url: &str, endpoint: &str, data_dir: &Path, targets: usize) -> String {
    ConfigBuilder::new(id, db_url)
        .data_dir(data_dir)
        .simulator_targets(targets, endpoint)
        .build()
}

fn spool_lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// Every stored attempt is counted once in the minute verdicts, and no
/// minute is a failure: the simulator was healthy all along.
async fn assert_counted_once_and_no_failure(store: &dyn Store, targets: usize, expected: u64) {
    assert_eq!(
        store.attempt_count().await.unwrap() as u64,
        expected,
        "attempts in the database"
    );
    let now = Minute::containing(&Utc::now());
    let range = MinuteRange::new(Minute(now.0 - 30), Minute(now.0 + 2));
    let mut counted = 0;
    for n in 0..targets {
        for minute in store
            .minute_verdicts(&format!("sim{n}"), range)
            .await
            .unwrap()
        {
            assert_ne!(
                minute.verdict,
                Verdict::Failure,
                "a storage fault became a failure minute: {minute:?}"
            );
            counted += minute.counts.ok + minute.counts.fail + minute.counts.inconclusive;
        }
    }
    assert_eq!(
        counted as u64, expected,
        "attempts counted in minute verdicts"
    );
}

fn chattr(flag: &str, paths: &[PathBuf]) {
    for path in paths.iter().filter(|p| p.exists()) {
        let status = Command::new("chattr").arg(flag).arg(path).status().unwrap();
        assert!(
            status.success(),
            "chattr {flag} {} failed: these tests need root",
            path.display()
        );
    }
}

/// The database and its write-ahead log. Not the `-shm` index: SQLite maps it
/// into memory, and a mapped page that cannot be written kills the process
/// with SIGBUS, which is a different fault from a read-only database.
fn sqlite_files(db: &Path) -> Vec<PathBuf> {
    ["", "-wal"]
        .iter()
        .map(|suffix| PathBuf::from(format!("{}{suffix}", db.display())))
        .collect()
}

/// Undoes `chattr +i` even when an assertion fails, so the temporary
/// directory can be removed.
struct Immutable(Vec<PathBuf>);

impl Immutable {
    fn set(paths: Vec<PathBuf>) -> Immutable {
        chattr("+i", &paths);
        Immutable(paths)
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        chattr("-i", &self.0);
    }
}

#[tokio::test]
async fn sqlite_made_read_only_under_load_spools_and_replays_every_attempt() {
    let sim = Simulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("improbe.db");
    let url = format!("sqlite://{}", db_path.display());
    let spool = dir.path().join("improbe-spool-ro.jsonl");
    let daemon = InProcessDaemon::start(&config_text(
        "ro",
        &url,
        &sim.endpoint(),
        dir.path(),
        TARGETS,
    ))
    .await;
    let reader = store::open(&url).await.unwrap();
    wait::until_true(
        "first attempts written",
        Duration::from_secs(20),
        async || reader.attempt_count().await.unwrap() >= TARGETS as i64,
    )
    .await;

    {
        let _read_only = Immutable::set(sqlite_files(&db_path));
        wait::until_true(
            "attempts in the spool",
            Duration::from_secs(30),
            async || spool_lines(&spool) >= 3 * TARGETS * 3,
        )
        .await;
    }
    wait::until_true("the spool replayed", Duration::from_secs(60), async || {
        spool_lines(&spool) == 0
    })
    .await;
    daemon.stop().await;

    assert!(!spool.exists(), "an empty spool is removed at a clean stop");
    assert_counted_once_and_no_failure(reader.as_ref(), TARGETS, answered(&sim)).await;
}

/// A tmpfs of `bytes` of its own, unmounted when dropped.
struct SmallVolume(tempfile::TempDir);

impl SmallVolume {
    fn mount(bytes: u64) -> SmallVolume {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "mount -t tmpfs failed: this test needs root"
        );
        SmallVolume(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    /// Writes a file until the volume is full; returns its path.
    fn fill(&self) -> PathBuf {
        use std::io::Write as _;
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0x5a_u8; 4096];
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc_enospc()) => break,
                Err(e) => panic!("filling the volume: {e}"),
            }
        }
        let _ = file.sync_all();
        path
    }
}

fn libc_enospc() -> i32 {
    28
}

impl Drop for SmallVolume {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

/// The database's volume fills while the prober writes, then space
/// returns: the failed writes are counted as `disk_full`, their attempts
/// wait (the spool is on the same full volume, so in memory), and once
/// space is back every attempt is written exactly once, on a connection
/// that works again.
#[tokio::test]
async fn a_full_volume_is_named_survived_and_loses_nothing() {
    let sim = Simulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let volume = SmallVolume::mount(16 << 20);
    let db_path = volume.path().join("improbe.db");
    let url = format!("sqlite://{}", db_path.display());
    let config = ConfigBuilder::new("full", &url)
        .data_dir(volume.path())
        .prober("listen = \"127.0.0.1:0\"")
        .simulator_targets(TARGETS, &sim.endpoint())
        .build();
    let daemon = InProcessDaemon::start(&config).await;
    let metrics = format!("http://{}/metrics", daemon.addr.unwrap());
    let reader = store::open(&url).await.unwrap();
    wait::until_true(
        "first attempts written",
        Duration::from_secs(20),
        async || reader.attempt_count().await.unwrap() >= TARGETS as i64,
    )
    .await;

    let filler = volume.fill();
    let disk_full = r#"improbe_database_write_errors_total{reason="disk_full"}"#;
    wait::until_true(
        "a write failing for lack of space",
        Duration::from_secs(30),
        async || {
            let text = reqwest::get(&metrics).await.unwrap().text().await.unwrap();
            text.lines()
                .find(|l| l.starts_with(disk_full))
                .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .is_some_and(|n| n >= 2.0)
        },
    )
    .await;
    let stored_while_full = reader.attempt_count().await.unwrap();
    // Any write's transaction that fails for lack of space leaves its
    // connection usable once space returns (not stuck inside it).
    let beat = |minute: i64| improbe::store::Heartbeat {
        prober: "other".into(),
        minute: Minute(minute),
        scheduled: 1,
        started: 1,
        skipped: 0,
        finished: 1,
    };
    let beats: Vec<_> = (0..2_000).map(beat).collect();
    let full = reader.record_heartbeats(&beats).await.unwrap_err();
    assert!(full.is_disk_full(), "{full}");

    std::fs::remove_file(&filler).unwrap();
    reader.record_heartbeats(&beats).await.unwrap();
    wait::until_true(
        "writes again once space is back",
        Duration::from_secs(60),
        async || reader.attempt_count().await.unwrap() > stored_while_full + TARGETS as i64,
    )
    .await;
    daemon.stop().await;
    assert_counted_once_and_no_failure(reader.as_ref(), TARGETS, answered(&sim)).await;
}

/// A private PostgreSQL server and a healthy simulator: what the PostgreSQL
/// fault tests start from.
async fn postgres_and_simulator() -> (PrivatePostgres, Simulator) {
    let pg = tokio::task::spawn_blocking(PrivatePostgres::start)
        .await
        .unwrap();
    let sim = Simulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    (pg, sim)
}

#[tokio::test]
async fn postgres_stopped_under_load_loses_and_invents_nothing() {
    let (pg, sim) = postgres_and_simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("improbe-spool-pgdown.jsonl");
    let daemon = InProcessDaemon::start(&config_text(
        "pgdown",
        &pg.url(),
        &sim.endpoint(),
        dir.path(),
        TARGETS,
    ))
    .await;
    let reader = store::open(&pg.url()).await.unwrap();
    wait::until_true(
        "first attempts written",
        Duration::from_secs(20),
        async || reader.attempt_count().await.unwrap() >= TARGETS as i64,
    )
    .await;

    let pg = pg.ctl_async("stop").await;
    wait::until_true(
        "attempts in the spool",
        Duration::from_secs(60),
        async || spool_lines(&spool) >= 5 * TARGETS * 3,
    )
    .await;
    let pg = pg.ctl_async("start").await;
    wait::until_true("the spool replayed", Duration::from_secs(90), async || {
        spool_lines(&spool) == 0
    })
    .await;
    daemon.stop().await;

    let reader = store::open(&pg.url()).await.unwrap();
    // The stop re-decides for at most 2 s; on a loaded machine what is left
    // pending is re-decided by whichever prober comes next, as here.
    while reader.settle_pending().await.unwrap() > 0 {}
    assert_counted_once_and_no_failure(reader.as_ref(), TARGETS, answered(&sim)).await;
}

// A second thread: the daemons are child processes probing servers that
// run on this test's runtime, while the test blocks waiting for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_between_spool_and_replay_loses_nothing_spooled() {
    let sim = Simulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("improbe.db");
    let url = format!("sqlite://{}", db_path.display());
    let spool = dir.path().join("improbe-spool-killed.jsonl");
    let config = dir.path().join("improbe.toml");
    let targets = 2;
    std::fs::write(
        &config,
        config_text("killed", &url, &sim.endpoint(), dir.path(), targets),
    )
    .unwrap();
    let spawn = || spawn_run(&config);

    let mut first = spawn();
    let reader = store::open(&url).await.unwrap();
    wait::until_true(
        "first attempts written",
        Duration::from_secs(20),
        async || reader.attempt_count().await.unwrap_or(0) >= 3,
    )
    .await;
    let spooled: Vec<String> = {
        let _read_only = Immutable::set(sqlite_files(&db_path));
        wait::until_true(
            "attempts in the spool",
            Duration::from_secs(30),
            async || spool_lines(&spool) >= 12,
        )
        .await;
        first.kill().unwrap();
        first.wait().unwrap();
        std::fs::read_to_string(&spool)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let answered_before_kill = answered(&sim);

    // The restart replays the spool before anything new.
    let second = spawn();
    wait::until_true("the spool replayed", Duration::from_secs(30), async || {
        spool_lines(&spool) == 0
    })
    .await;
    let _ = terminate(second);

    let stored: HashSet<(String, i16, i64)> =
        sqlx::query_as(
            "SELECT t.name, a.kind, a.started_at_ms FROM attempts AS a JOIN target_names AS t ON t.id = a.target_id",
        )
            .fetch_all(&sqlx::SqlitePool::connect(&url).await.unwrap())
            .await
            .unwrap()
            .into_iter()
            .collect();
    for line in &spooled {
        let attempt = improbe::attempt::jsonl::parse_record(1, line).unwrap();
        assert!(
            stored.contains(&(
                attempt.target.clone(),
                attempt.kind.code(),
                attempt.started_at_ms()
            )),
            "spooled attempt missing after the restart: {line}"
        );
    }
    // What the first run finished but had not yet handed on when it was
    // killed is bounded by the attempts in flight; the second run stopped
    // cleanly and loses nothing.
    let stored_count = stored.len() as u64;
    let total = answered(&sim);
    assert!(
        stored_count <= total,
        "{stored_count} stored > {total} made"
    );
    let in_flight_bound = (targets * Kind::ALL.len() * 2) as u64;
    assert!(
        total - stored_count <= in_flight_bound,
        "{} attempts lost (first run answered {answered_before_kill}, spooled {})",
        total - stored_count,
        spooled.len()
    );
    assert_counted_once_and_no_failure(reader.as_ref(), targets, stored_count).await;
}

// A second thread: the daemons are child processes probing servers that
// run on this test's runtime, while the test blocks waiting for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_when_the_daemon_starts_is_waited_for() {
    let pg = tokio::task::spawn_blocking(|| {
        let pg = PrivatePostgres::start();
        pg.ctl("stop");
        pg
    })
    .await
    .unwrap();
    let sim = Simulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("improbe-spool-late.jsonl");
    let config = dir.path().join("improbe.toml");
    let targets = 5;
    std::fs::write(
        &config,
        config_text("late", &pg.url(), &sim.endpoint(), dir.path(), targets),
    )
    .unwrap();
    let mut daemon = spawn_run(&config);
    wait::until_true(
        "attempts in the spool",
        Duration::from_secs(30),
        async || spool_lines(&spool) >= 3 * targets * 3,
    )
    .await;
    assert!(
        daemon.try_wait().unwrap().is_none(),
        "the daemon gave up on a database that is only down"
    );

    let pg = pg.ctl_async("start").await;
    wait::until_true("the spool replayed", Duration::from_secs(60), async || {
        spool_lines(&spool) == 0
    })
    .await;
    let _ = terminate(daemon);

    // The daemon migrated the database itself once it answered.
    let reader = store::open(&pg.url()).await.unwrap();
    assert_counted_once_and_no_failure(reader.as_ref(), targets, answered(&sim)).await;
}

/// Accepts TCP connections on a port and never answers: a database host that
/// hangs (a half-open connection, a frozen server). Dropping it closes the
/// listener and every connection it holds.
struct HangingServer {
    task: tokio::task::JoinHandle<()>,
}

impl HangingServer {
    async fn bind(port: u16) -> HangingServer {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        HangingServer { task }
    }
}

impl Drop for HangingServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How the database is away during the outage.
#[derive(Clone, Copy, Debug)]
enum Outage {
    /// Stopped: connections are refused.
    Refused,
    /// A listener on its port accepts and never answers.
    Hanging,
}

/// The stop time a container platform allows before it kills (`docker stop`).
const STOP_LIMIT: Duration = Duration::from_secs(10);

/// [`terminate`] off the async runtime's threads.
async fn timed_terminate(daemon: std::process::Child) -> Duration {
    tokio::task::spawn_blocking(move || terminate(daemon))
        .await
        .unwrap()
}

/// Under load, the database goes away; the daemon is stopped (within the
/// platform's limit) and started again while it is still away, with a spool
/// left behind. It must probe in every second of the outage, and once the
/// database is back hold every attempt exactly once, no failure minute, and
/// a heartbeat for every minute it ran.
async fn restart_during_an_outage(outage: Outage) {
    let (pg, sim) = postgres_and_simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let id = format!("restart-{outage:?}").to_lowercase();
    let spool = dir.path().join(format!("improbe-spool-{id}.jsonl"));
    let config = dir.path().join("improbe.toml");
    let targets = 10;
    std::fs::write(
        &config,
        config_text(&id, &pg.url(), &sim.endpoint(), dir.path(), targets),
    )
    .unwrap();
    let started = Utc::now();
    let first = spawn_run(&config);
    let reader = store::open(&pg.url()).await.unwrap();
    wait::until_true(
        "first attempts written",
        Duration::from_secs(20),
        async || reader.attempt_count().await.unwrap_or(0) >= targets as i64,
    )
    .await;

    let pg = pg.ctl_async("stop").await;
    let hanging = match outage {
        Outage::Refused => None,
        Outage::Hanging => Some(HangingServer::bind(pg.port).await),
    };
    wait::until_true(
        "attempts in the spool",
        Duration::from_secs(60),
        async || spool_lines(&spool) >= 2 * targets * 3,
    )
    .await;
    let stop_took = timed_terminate(first).await;
    eprintln!("{outage:?}: SIGTERM during the outage took {stop_took:?}");
    assert!(
        stop_took < STOP_LIMIT,
        "{outage:?}: SIGTERM during the outage took {stop_took:?}"
    );
    let left_behind = spool_lines(&spool);
    assert!(left_behind > 0, "the stopped run left no spool");

    // Started again while the database is still away, with a spool to replay.
    let restarted = Utc::now();
    let second = spawn_run(&config);
    wait::until_true(
        "new attempts spooled behind the old ones",
        Duration::from_secs(60),
        async || spool_lines(&spool) >= left_behind + 12 * targets * 3,
    )
    .await;
    let outage_over = Utc::now();
    drop(hanging);
    let pg = pg.ctl_async("start").await;
    wait::until_true("the spool replayed", Duration::from_secs(90), async || {
        spool_lines(&spool) == 0
    })
    .await;
    let stop_took = timed_terminate(second).await;
    assert!(stop_took < STOP_LIMIT, "a healthy stop took {stop_took:?}");
    let ended = Utc::now();

    // Probing never paused: a request in every second of the restarted run's
    // outage (its first second is the process starting).
    let by_second = sim.received_by_second();
    let silent: Vec<i64> = (restarted.timestamp() + 1..outage_over.timestamp())
        .filter(|s| by_second.get(s).copied().unwrap_or(0) == 0)
        .collect();
    assert!(
        silent.is_empty(),
        "{outage:?}: seconds of the outage without a single attempt: {silent:?} (restarted at {}, outage over at {}; requests per second: {:?})",
        restarted.timestamp(),
        outage_over.timestamp(),
        by_second
            .range(restarted.timestamp() - 2..outage_over.timestamp() + 1)
            .collect::<Vec<_>>()
    );

    let reader = store::open(&pg.url()).await.unwrap();
    assert_counted_once_and_no_failure(reader.as_ref(), targets, answered(&sim)).await;

    // Every minute either run was up has this prober's heartbeat, including
    // the outage's, written once the database was back.
    let minutes = MinuteRange::new(
        Minute::containing(&started),
        Minute::containing(&ended).next(),
    );
    let beating: HashSet<i64> = reader
        .heartbeats(minutes)
        .await
        .unwrap()
        .into_iter()
        .filter(|b| b.prober == id)
        .map(|b| b.minute.0)
        .collect();
    let missing: Vec<i64> = (minutes.start.0..minutes.end.0)
        .filter(|m| !beating.contains(m))
        .collect();
    assert!(
        missing.is_empty(),
        "{outage:?}: minutes without a heartbeat: {missing:?}"
    );
    // The journal held the stopped run's heartbeats with its attempts, and
    // is empty once both are written.
    let spool = dir.path().join(format!("improbe-spool-{id}.jsonl"));
    assert!(
        std::fs::metadata(&spool).map_or(true, |m| m.len() == 0),
        "{}",
        std::fs::read_to_string(&spool).unwrap_or_default()
    );
}

#[tokio::test]
async fn restart_while_postgres_refuses_keeps_probing_and_stops_in_time() {
    restart_during_an_outage(Outage::Refused).await;
}

#[tokio::test]
async fn restart_while_postgres_hangs_keeps_probing_and_stops_in_time() {
    restart_during_an_outage(Outage::Hanging).await;
}
