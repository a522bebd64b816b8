//! Test helpers: real databases (a temporary SQLite file, a fresh PostgreSQL
//! database per test) and attempt builders.

pub mod postgres;
pub mod prosody;
pub mod proxy;
pub mod receivers;
pub mod synapse;
pub mod tls;
pub mod vendors;
pub mod wait;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, Utc};
use improbe::attempt::{Attempt, Kind, Outcome};
use improbe::store::{self, Store};
use sqlx::Connection;

/// The PostgreSQL server the tests use; override with IMPROBE_TEST_POSTGRES.
pub fn postgres_admin_url() -> String {
    std::env::var("IMPROBE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database that exists for one test.
pub struct TestDb {
    pub url: String,
    pub backend: &'static str,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("improbe.db").display());
        TestDb {
            url,
            backend: "sqlite",
            _dir: Some(dir),
            pg_name: None,
        }
    }

    /// A fresh PostgreSQL database. A missing server fails the test:
    /// scripts/test.sh starts the local cluster, and refuses to run without it.
    pub async fn postgres() -> TestDb {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let admin = postgres_admin_url();
        let mut conn = match sqlx::PgConnection::connect(&admin).await {
            Ok(conn) => conn,
            Err(e) => panic!(
                "PostgreSQL is required at {admin} but is unreachable: {e} \
                 (scripts/test.sh starts the local cluster)"
            ),
        };
        let name = format!(
            "improbe_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            Utc::now().timestamp_micros() % 1_000_000
        );
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let url = match admin.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("admin URL {admin} names no database"),
        };
        TestDb {
            url,
            backend: "postgres",
            _dir: None,
            pg_name: Some(name),
        }
    }

    pub async fn store(&self) -> Arc<dyn Store> {
        let store = store::open(&self.url).await.unwrap();
        store.migrate().await.unwrap();
        store
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        let admin = postgres_admin_url();
        // Drop runs outside any runtime guarantee: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// Fails the test when what it needs is not here. scripts/test.sh installs
/// every such server and tool; where it cannot (outside CI), it leaves the
/// tests that need it out by name, so the runner counts them as skipped
/// rather than as passed.
pub fn require(present: bool, what: &str) {
    assert!(
        present,
        "this test needs {what}, which is not here: run it through scripts/test.sh, \
         which installs it or leaves this test out by name"
    );
}

/// Both backends, SQLite and PostgreSQL.
pub async fn backends() -> Vec<TestDb> {
    vec![TestDb::sqlite(), TestDb::postgres().await]
}

pub fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

pub fn attempt(
    target: &str,
    prober: &str,
    kind: Kind,
    started_at: &str,
    outcome: Outcome,
) -> Attempt {
    Attempt {
        target: target.into(),
        prober: prober.into(),
        kind,
        started_at: at(started_at),
        latency_ms: Some(100),
        outcome,
        http_status: Some(200),
        error_code: None,
        error: None,
        reason: None,
        delivery: None,
    }
}

pub async fn ingest(store: &dyn Store, attempts: &[Attempt]) -> improbe::store::IngestSummary {
    let mut source = attempts.iter().cloned().map(Ok);
    store.ingest(&mut source).await.unwrap()
}

/// Requests a simulator answered, over every operation.
pub fn answered(sim: &improbe::simulator::Simulator) -> u64 {
    Kind::ALL
        .iter()
        .map(|k| {
            let s = sim.stats(*k);
            s.ok + s.error
        })
        .sum()
}

/// A loopback port free at the moment of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs the daemon on the system clock for `seconds` (a real server's
/// answers take real time) and returns the store.
pub async fn probe_for(text: &str, db: &TestDb, seconds: u64) -> Arc<dyn Store> {
    let daemon = InProcessDaemon::start(text).await;
    tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
    daemon.stop().await;
    db.store().await
}

/// `improbe run` inside the test process, on a config given as text.
pub struct InProcessDaemon {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// Where the HTTP surface listens, when the config has `[prober] listen`
    /// (port 0 there lets the system choose).
    pub addr: Option<std::net::SocketAddr>,
}

impl InProcessDaemon {
    pub async fn start(text: &str) -> InProcessDaemon {
        Self::start_with_clock(text, Arc::new(improbe::clock::SystemClock)).await
    }

    /// The same on a clock the test moves (see [`ScriptedClock`]).
    pub async fn start_with_clock(
        text: &str,
        clock: Arc<dyn improbe::clock::Clock>,
    ) -> InProcessDaemon {
        let config = improbe::config::Config::parse(text, "test").unwrap();
        let store = store::open(&config.database.url).await.unwrap();
        store.migrate().await.unwrap();
        let application = improbe::daemon::Application::build(&config, store, clock)
            .await
            .unwrap();
        let addr = application.listen_addr();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(application.run(stopped));
        InProcessDaemon { stop, task, addr }
    }

    /// Stops it as SIGTERM would and waits until everything is written.
    pub async fn stop(self) {
        self.stop.send(true).unwrap();
        self.task.await.unwrap().unwrap();
    }
}

/// The `improbe` binary, with the environment a test does not choose
/// (`IMPROBE_CONFIG`, `IMPROBE_DATABASE_URL`) removed: every test that runs
/// the binary starts here.
pub fn improbe_command() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_improbe"));
    command
        .env_remove("IMPROBE_CONFIG")
        .env_remove("IMPROBE_DATABASE_URL");
    command
}

/// The binary with the config `improbe.toml` in `dir`, on `db`.
pub fn improbe_in(dir: &std::path::Path, db: &TestDb, args: &[&str]) -> std::process::Output {
    improbe_command()
        .arg("--config")
        .arg(dir.join("improbe.toml"))
        .args(args)
        .env("IMPROBE_DATABASE_URL", &db.url)
        .output()
        .unwrap()
}

/// The standard output of a command that must have succeeded (its
/// standard error in the failure otherwise).
pub fn succeeded(output: std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A fresh database on the same backend as `db`.
pub async fn another_like(db: &TestDb) -> TestDb {
    if db.backend == "sqlite" {
        TestDb::sqlite()
    } else {
        TestDb::postgres().await
    }
}

/// `improbe run` as a child process with this config (stderr discarded).
pub fn spawn_run(config: &std::path::Path) -> std::process::Child {
    improbe_command()
        .arg("--config")
        .arg(config)
        .arg("run")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Sends SIGTERM, checks that the daemon stopped cleanly and says how long
/// it took from the signal.
pub fn terminate(mut daemon: std::process::Child) -> std::time::Duration {
    let signalled = std::time::Instant::now();
    let signal = std::process::Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .unwrap();
    assert!(signal.success());
    let status = daemon.wait().unwrap();
    assert!(status.success(), "improbe run exited with {status}");
    signalled.elapsed()
}

/// Writes the TOML of a daemon test: one prober, one database and targets
/// probing a simulator, every one with the same SLA terms. Each test says
/// only what differs.
pub struct ConfigBuilder {
    prober: Vec<String>,
    database_url: String,
    database: Vec<String>,
    targets: Vec<String>,
    extra: String,
}

impl ConfigBuilder {
    pub fn new(prober_id: &str, database_url: &str) -> ConfigBuilder {
        ConfigBuilder {
            prober: vec![format!("id = \"{prober_id}\"")],
            database_url: database_url.to_owned(),
            database: Vec::new(),
            targets: Vec::new(),
            extra: String::new(),
        }
    }

    /// A line of `[prober]`, such as `listen = "127.0.0.1:0"`.
    pub fn prober(mut self, line: &str) -> ConfigBuilder {
        self.prober.push(line.to_owned());
        self
    }

    /// A line of `[database]` beside its `url`, such as `pooler = "transaction"`.
    pub fn database(mut self, line: &str) -> ConfigBuilder {
        self.database.push(line.to_owned());
        self
    }

    pub fn data_dir(self, dir: &std::path::Path) -> ConfigBuilder {
        let line = format!("data_dir = \"{}\"", dir.display());
        self.prober(&line)
    }

    /// A target probing the simulator at `endpoint`.
    pub fn simulator_target(
        mut self,
        name: &str,
        endpoint: &str,
        interval: &str,
        timeout: &str,
    ) -> ConfigBuilder {
        self.targets.push(format!(
            "[[targets]]\nname = \"{name}\"\nprovider = \"simulator\"\ninterval = \"{interval}\"\ntimeout = \"{timeout}\"\n\
             [targets.simulator]\nendpoint = \"{endpoint}\"\n\
             [targets.sla]\nservice_start = \"2026-01-01\"\ntimezone = \"UTC\"\nmonthly_fee = \"1\"\n"
        ));
        self
    }

    /// `count` targets named `sim0`, `sim1`, ... probing every second.
    pub fn simulator_targets(self, count: usize, endpoint: &str) -> ConfigBuilder {
        (0..count).fold(self, |b, n| {
            b.simulator_target(&format!("sim{n}"), endpoint, "1s", "1s")
        })
    }

    /// TOML appended as it is (other providers' targets, exclusions).
    pub fn raw(mut self, toml: &str) -> ConfigBuilder {
        self.extra.push_str(toml);
        self
    }

    pub fn build(&self) -> String {
        format!(
            "[prober]\n{}\n[database]\nurl = \"{}\"\n{}{}{}",
            self.prober.join("\n"),
            self.database_url,
            self.database
                .iter()
                .map(|l| format!("{l}\n"))
                .collect::<String>(),
            self.targets.concat(),
            self.extra
        )
    }
}

/// A wall clock that a test moves from minute to minute: after
/// [`ScriptedClock::enter_minute`] it reads that minute's start plus the real
/// time since (held inside the minute), so a few real seconds against a real
/// server make one whole scripted minute.
pub struct ScriptedClock {
    start: DateTime<Utc>,
    phase: std::sync::Mutex<(DateTime<Utc>, std::time::Instant)>,
}

impl ScriptedClock {
    pub fn starting_at(start: DateTime<Utc>) -> Arc<ScriptedClock> {
        Arc::new(ScriptedClock {
            start,
            phase: std::sync::Mutex::new((start, std::time::Instant::now())),
        })
    }

    /// Moves to minute `n` after the start.
    pub fn enter_minute(&self, n: i64) {
        self.jump_to(chrono::Duration::minutes(n));
    }

    /// Moves to `offset` after the start; the clock then runs on in real
    /// time (across minute boundaries too) for up to a minute.
    pub fn jump_to(&self, offset: chrono::Duration) {
        *self.phase.lock().unwrap() = (self.start + offset, std::time::Instant::now());
    }
}

impl improbe::clock::Clock for ScriptedClock {
    fn now(&self) -> DateTime<Utc> {
        let (minute, since) = *self.phase.lock().unwrap();
        let elapsed = since
            .elapsed()
            .min(std::time::Duration::from_millis(59_999));
        minute + chrono::Duration::from_std(elapsed).unwrap()
    }
}

/// A real server a test freezes, stops and starts again (Synapse, Prosody).
pub trait ServerUnderTest {
    /// The server's process, while it runs.
    fn process(&mut self) -> &mut Option<std::process::Child>;

    /// Starts (again) and waits until it answers.
    fn launch(&mut self) -> impl std::future::Future<Output = ()>;

    /// SIGSTOP: the process keeps its port, connections stay open, nothing
    /// is answered.
    fn freeze(&mut self) {
        signal(self.process(), "-STOP");
    }

    fn thaw(&mut self) {
        signal(self.process(), "-CONT");
    }

    /// Kills the process: connections are refused until `launch`.
    fn stop(&mut self) {
        if let Some(mut child) = self.process().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn signal(process: &Option<std::process::Child>, signal: &str) {
    if let Some(child) = process {
        let status = std::process::Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// The scripted minutes every open-protocol adapter is tested with, one
/// minute each on `clock`, each left once the daemon has stored what the
/// next step needs: healthy, frozen, healthy again (thawed once every
/// attempt of the frozen minute is stored, so none is answered healthy),
/// stopped, started again. [`scripted_outage_verdicts`] checks them. A fault
/// begins just before its minute does, so no attempt of that minute can be
/// answered by a server that is still healthy; the minute before it has
/// its successes already.
pub async fn script_outages(
    clock: &ScriptedClock,
    server: &mut impl ServerUnderTest,
    store: &dyn Store,
    target: &str,
) {
    use improbe::minute::Minute;
    let first = Minute::containing(&clock.start);
    let ok = |a: &Attempt| a.outcome == Outcome::Ok;
    let failed = |a: &Attempt| a.outcome == Outcome::Fail;
    let sent_ok = |a: &Attempt| a.outcome == Outcome::Ok && a.kind != Kind::Login;
    stored_in_minute(store, target, first, 4, sent_ok).await;
    server.freeze();
    clock.enter_minute(1);
    stored_in_minute(store, target, Minute(first.0 + 1), 3, failed).await;
    clock.enter_minute(2);
    written_before(store, 1, clock.start + chrono::Duration::minutes(2)).await;
    server.thaw();
    stored_in_minute(store, target, Minute(first.0 + 2), 3, ok).await;
    server.stop();
    clock.enter_minute(3);
    stored_in_minute(store, target, Minute(first.0 + 3), 3, failed).await;
    clock.enter_minute(4);
    server.launch().await;
    stored_in_minute(store, target, Minute(first.0 + 4), 3, ok).await;
}

/// Waits until `target` has at least `n` stored attempts in `minute` that
/// `keep` holds for; panics after 60 s, naming what it found.
pub async fn stored_in_minute(
    store: &dyn Store,
    target: &str,
    minute: improbe::minute::Minute,
    n: usize,
    keep: impl Fn(&Attempt) -> bool,
) {
    let in_minute = |a: &Attempt| a.minute() == minute;
    stored_where(store, target, n, in_minute, keep).await;
}

/// Waits until `target` has at least `n` stored attempts of those `scope`
/// holds for that `keep` holds for too; panics after 60 s, naming the
/// attempts in `scope`.
async fn stored_where(
    store: &dyn Store,
    target: &str,
    n: usize,
    scope: impl Fn(&Attempt) -> bool,
    keep: impl Fn(&Attempt) -> bool,
) {
    let (scope, keep) = (&scope, &keep);
    wait::until(std::time::Duration::from_secs(60), async || {
        let stored: Vec<Attempt> = all_attempts(store, target)
            .await
            .into_iter()
            .filter(|a| scope(a))
            .collect();
        if stored.iter().filter(|a| keep(a)).count() >= n {
            Ok(())
        } else {
            Err(format!("{target}: {n} such attempts among {stored:#?}"))
        }
    })
    .await;
}

/// Waits until `probers` probers have reported to `store` and each has
/// stored everything it started before `instant` (its watermark,
/// docs/many-regions.md).
pub async fn written_before(store: &dyn Store, probers: usize, instant: DateTime<Utc>) {
    wait::until(std::time::Duration::from_secs(60), async || {
        let facts = store.settlement_facts().await.unwrap();
        if facts.marks.len() == probers && facts.marks.iter().all(|m| m.complete_until >= instant) {
            Ok(())
        } else {
            Err(format!("watermarks past {instant}: {facts:?}"))
        }
    })
    .await;
}

/// Waits until `target` has at least `n` group sends started after `since`
/// in the database (written, so finished); panics after 60 s.
pub async fn group_sends_after(
    store: &dyn Store,
    target: &str,
    since: chrono::DateTime<chrono::Utc>,
    n: usize,
) {
    group_sends_where(store, target, n, |a| a.started_at > since).await;
}

/// Waits until `target` has at least `n` stored group sends that `keep`
/// holds for; panics after 60 s, naming what it found.
pub async fn group_sends_where(
    store: &dyn Store,
    target: &str,
    n: usize,
    keep: impl Fn(&Attempt) -> bool,
) {
    let group_sends = |a: &Attempt| a.kind == Kind::SendGroup;
    stored_where(store, target, n, group_sends, keep).await;
}

/// Every minute a test stores anything in, from the epoch on.
pub fn all_time() -> improbe::minute::MinuteRange {
    use improbe::minute::{Minute, MinuteRange};
    MinuteRange::new(Minute(0), Minute(i64::MAX / 120_000))
}

/// Every stored attempt of `target`.
pub async fn all_attempts(store: &dyn Store, target: &str) -> Vec<Attempt> {
    let mut all = Vec::new();
    store
        .visit_attempts(target, all_time(), &mut |a| all.push(a))
        .await
        .unwrap();
    all
}

/// The verdicts of `count` minutes from `from`, `no_data` where none is stored.
pub async fn verdicts(
    store: &dyn Store,
    target: &str,
    from: improbe::minute::Minute,
    count: i64,
) -> Vec<improbe::verdict::Verdict> {
    use improbe::minute::MinuteRange;
    let stored = store
        .minute_verdicts(
            target,
            MinuteRange::new(from, improbe::minute::Minute(from.0 + count)),
        )
        .await
        .unwrap();
    (0..count)
        .map(|n| {
            stored
                .iter()
                .find(|v| v.minute.0 == from.0 + n)
                .map_or(improbe::verdict::Verdict::NoData, |v| v.verdict)
        })
        .collect()
}

/// After [`script_outages`] from `start`: available, failure, available,
/// failure, available; every attempt of the frozen minute a timeout, every
/// one of the stopped minute a failure. Returns the attempts, each with its
/// minute (0 to 4).
pub async fn scripted_outage_verdicts(
    store: &dyn Store,
    target: &str,
    start: DateTime<Utc>,
    backend: &str,
) -> Vec<(i64, Attempt)> {
    use improbe::verdict::Verdict::{Available, Failure};
    let first = improbe::minute::Minute::containing(&start);
    assert_eq!(
        verdicts(store, target, first, 5).await,
        [Available, Failure, Available, Failure, Available],
        "on {backend}"
    );
    let all: Vec<(i64, Attempt)> = all_attempts(store, target)
        .await
        .into_iter()
        .map(|a| (a.minute().0 - first.0, a))
        .collect();
    let frozen: Vec<_> = all
        .iter()
        .filter(|(m, _)| *m == 1)
        .map(|(_, a)| a)
        .collect();
    assert!(frozen.len() >= 3, "{frozen:?}");
    assert!(
        frozen.iter().all(|a| a.outcome == Outcome::Fail
            && a.error.as_deref().is_some_and(|e| e.contains("timeout"))),
        "{frozen:?}"
    );
    let stopped: Vec<_> = all
        .iter()
        .filter(|(m, _)| *m == 3)
        .map(|(_, a)| a)
        .collect();
    assert!(
        stopped.iter().all(|a| a.outcome == Outcome::Fail),
        "{stopped:?}"
    );
    all
}
