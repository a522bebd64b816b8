//! `improbe run` wired together: probes, writer, control check and the
//! monthly figures, with a clean stop that loses no finished attempt.

pub mod control;
pub mod heartbeat;
pub mod listener;
pub mod live;
pub mod metrics;
pub mod preflight;
pub mod retention;
pub mod schedule;
pub mod server;
pub mod settled;
pub mod spool;
pub mod writer;

use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use self::control::ControlCheck;
use self::heartbeat::HeartbeatRecorder;
use self::schedule::{OperationPlan, Scheduler};
use self::server::Surface;
use self::spool::Spool;
use self::writer::WriterCounters;
use crate::clock::Clock;
use crate::config::{Config, Target};
use crate::notify::{Channel, Decider, Notifier, Sender};
use crate::probe::{Probe, ProbeContext};
use crate::store::{self, Store};
use crate::ticks;

/// How often a database that was down at start is tried again.
pub const PREPARE_RETRY: Duration = Duration::from_secs(2);

/// A running daemon's shared state, for the HTTP surface and tests.
pub struct Daemon {
    pub scheduler: Arc<Scheduler>,
    pub writer: Arc<WriterCounters>,
}

/// Probes every target until `stop` turns true; then waits briefly for
/// attempts in flight, writes or spools everything measured and returns.
/// [`Application::build`] then [`Application::run`].
pub async fn run(
    config: &Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    Application::build(config, store, clock)
        .await?
        .run(stop)
        .await
}

/// The loops of one target, ready to run.
type TargetProbe = (Arc<Target>, Vec<OperationPlan>, Arc<dyn Probe>);

/// `improbe run`, built: everything that can fail on the config or the
/// machine is done (the preflight `check-config` runs too, every probe, the
/// spool, the control check, the listen address), and nothing runs yet.
pub struct Application {
    config: Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    probes: Vec<TargetProbe>,
    operations: usize,
    spool: Spool,
    control: Option<Arc<ControlCheck>>,
    listener: Option<(TcpListener, listener::Gate)>,
    notifications: Arc<Sender>,
}

impl Application {
    pub async fn build(
        config: &Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Application> {
        preflight::check(config)?;
        let mut probes = Vec::new();
        let mut operations = 0;
        for target in &config.targets {
            let (plans, notes) = schedule::plan(target);
            let context = ProbeContext {
                clock: clock.clone(),
                target: target.name.clone(),
                prober: config.prober.id.clone(),
                timeout: target.timeout,
                delivery: target.delivery,
            };
            let probe = target
                .provider
                .probe(&context)
                .map_err(|e| anyhow::anyhow!("target `{}`: {e:#}", target.name))?;
            operations += plans.len();
            probes.push((Arc::new(target.clone()), plans, probe));
            for note in notes {
                tracing::warn!("{note}");
            }
        }
        // What an earlier run could not write is replayed before anything new.
        let mut spool = Spool::open(&config.prober.spool_path())?;
        let earlier_beats = heartbeat::take_earlier_backlog(&config.prober.heartbeat_file_path());
        if !earlier_beats.is_empty() {
            spool.append_heartbeats(&earlier_beats).map_err(|e| {
                anyhow::anyhow!(
                    "cannot move heartbeats into the spool {}: {e}",
                    spool.path().display()
                )
            })?;
        }
        let control = match &config.prober.control_url {
            Some(url) => Some(Arc::new(ControlCheck::new(url.clone())?)),
            None => None,
        };
        let listener = match config.prober.listen {
            Some(addr) => {
                let gate = listener::Gate::new(&config.prober.web)?;
                let listener = TcpListener::bind(addr).await.map_err(|e| {
                    anyhow::anyhow!(
                        "cannot listen on {addr} for /metrics, /healthz and /readyz ([prober] listen): {e}"
                    )
                })?;
                Some((listener, gate))
            }
            None => None,
        };
        // Channels' secrets are read now: a missing one stops the start.
        let channels = config
            .notify
            .iter()
            .map(Channel::build)
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Application {
            config: config.clone(),
            store,
            clock,
            probes,
            operations,
            spool,
            control,
            listener,
            notifications: Arc::new(Sender::new(&config.prober.id, channels)),
        })
    }

    /// Where `/metrics`, `/healthz` and `/readyz` are served: the port the
    /// system chose when `[prober] listen` asks for port 0.
    pub fn listen_addr(&self) -> Option<std::net::SocketAddr> {
        self.listener
            .as_ref()
            .and_then(|(l, _)| l.local_addr().ok())
    }

    /// Probing starts at once, whatever the state of the database:
    /// migrating, syncing the config's exclusions and replaying an earlier
    /// run's spool wait for it in the background, and new attempts queue in
    /// the spool behind the old ones. A database that answers and refuses
    /// (wrong password, unknown database) stops the daemon with that error.
    pub async fn run(self, stop: watch::Receiver<bool>) -> anyhow::Result<()> {
        let Application {
            config,
            store,
            clock,
            probes,
            operations,
            spool,
            control,
            listener,
            notifications,
        } = self;
        let config = &config;
        // Every part of the daemon stops on `halt`: the caller's stop, or a
        // database that refuses us.
        let (halt_sender, halt) = watch::channel(false);
        let (database_ready, ready) = watch::channel(false);
        let mut preparing = tokio::spawn(prepare_until_ready(
            config.clone(),
            store.clone(),
            clock.clone(),
            database_ready,
            halt.clone(),
        ));
        let (sink, attempts) = mpsc::channel(writer::CHANNEL_CAPACITY);
        let (unwritten_heartbeats, heartbeats_for_spool) = oneshot::channel();
        let daemon = Daemon {
            scheduler: Scheduler::new(
                config.prober.id.clone(),
                clock.clone(),
                sink,
                control.clone(),
                operations,
                config.prober.start_burst,
            ),
            writer: Arc::new(WriterCounters::default()),
        };
        let writer_task = tokio::spawn(writer::run(
            store.clone(),
            writer::WriterIdentity {
                prober: config.prober.id.clone(),
                clock: clock.clone(),
                in_flight_bound: config.longest_timeout() + writer::IN_FLIGHT_MARGIN,
            },
            spool,
            writer::Inbox {
                attempts,
                unwritten_heartbeats: heartbeats_for_spool,
            },
            ready.clone(),
            halt.clone(),
            daemon.writer.clone(),
        ));
        let surface = Arc::new(Surface {
            storage: Arc::new(retention::StorageGauges::default()),
            config: config.clone(),
            store: store.clone(),
            clock: clock.clone(),
            schedule: daemon.scheduler.counters.clone(),
            writer: daemon.writer.clone(),
            control: control.clone(),
            probing: AtomicBool::new(false),
            notifications: notifications.counters.clone(),
            live: Arc::new(live::LiveState::new(
                config.clone(),
                store.clone(),
                clock.clone(),
            )),
        });
        let mut background = spawn_background(
            &surface,
            listener,
            control,
            notifications,
            ready.clone(),
            halt.clone(),
        );
        let heartbeat = tokio::spawn(
            HeartbeatRecorder::new(
                config.prober.id.clone(),
                daemon.scheduler.counters.clone(),
                store.clone(),
                clock.clone(),
            )
            .run(halt.clone()),
        );
        let mut probing = JoinSet::new();
        for (target, plans, probe) in probes {
            let scheduler = daemon.scheduler.clone();
            probing.spawn(scheduler.run_target(target, plans, probe, halt.clone()));
        }
        surface.probing.store(true, Ordering::Relaxed);
        tracing::info!(prober = %config.prober.id, targets = config.targets.len(), database = store.backend(), "probing");
        let refused = probe_until_halted(probing, &mut preparing, stop, &halt_sender).await;
        surface.probing.store(false, Ordering::Relaxed);
        log_summary(&daemon);

        // Every probe loop has ended: closing the channel lets the writer finish.
        drop(daemon.scheduler);
        let database_away =
            !*ready.borrow() || daemon.writer.database_failing.load(Ordering::Relaxed);
        let final_beat = async {
            let unwritten = heartbeat
                .await?
                .finish(writer::STOP_WRITE_DEADLINE, database_away)
                .await;
            let _ = unwritten_heartbeats.send(unwritten);
            anyhow::Ok(())
        };
        let (beaten, written) = tokio::join!(final_beat, writer_task);
        beaten?;
        written?;
        // The last writes' minutes are re-decided now rather than by the
        // next prober or command to come along (`store::prepare`), within a
        // short bound: the stop stays well inside a container's 10 s.
        if !database_away && !daemon.writer.database_failing.load(Ordering::Relaxed) {
            let _ = tokio::time::timeout(FINAL_SETTLE_LIMIT, store.settle_pending()).await;
        }
        // Whatever else still waits on the database is not worth a late exit.
        preparing.abort();
        background.shutdown().await;
        if let Some(e) = refused {
            return Err(e);
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// The daemon's tasks beside probing and writing, in one set that a stop
/// ends together: the HTTP surface, the control check, the storage round,
/// the re-decision of pending minutes and the settlement task (figures,
/// live pages, notifications).
fn spawn_background(
    surface: &Arc<Surface>,
    listener: Option<(TcpListener, listener::Gate)>,
    control: Option<Arc<ControlCheck>>,
    notifications: Arc<Sender>,
    ready: watch::Receiver<bool>,
    halt: watch::Receiver<bool>,
) -> JoinSet<()> {
    let (config, store, clock) = (&surface.config, &surface.store, &surface.clock);
    let mut background = JoinSet::new();
    if let Some((listener, gate)) = listener {
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, scheme = gate.scheme(), "serving /metrics, /healthz and /readyz");
        }
        let (surface, halt) = (surface.clone(), halt.clone());
        background.spawn(async move {
            if let Err(e) = server::serve(listener, gate, surface, halt).await {
                tracing::error!("HTTP surface stopped: {e}");
            }
        });
    }
    if let Some(control) = control {
        let halt = halt.clone();
        background.spawn(async move { control.run(halt).await });
    }
    background.spawn(retention::run(
        config.clone(),
        store.clone(),
        clock.clone(),
        surface.storage.clone(),
        ready.clone(),
        halt.clone(),
    ));
    background.spawn(settle_pending(store.clone(), ready.clone(), halt.clone()));
    let notifier = (!notifications.is_empty()).then(|| {
        let writer = surface.writer.clone();
        Notifier::new(Decider::new(config), notifications, move || {
            writer.spooled.load(Ordering::Relaxed) == 0
                && !writer.database_failing.load(Ordering::Relaxed)
        })
    });
    background.spawn(settled::run(
        config.clone(),
        store.clone(),
        clock.clone(),
        surface.live.clone(),
        notifier,
        ready,
        halt,
    ));
    background
}

/// Waits until every probe loop has ended. The caller's `stop`, or a
/// database that refuses us while being prepared, sends `halt`, which ends
/// them; the refusal is returned.
async fn probe_until_halted(
    mut probing: JoinSet<()>,
    preparing: &mut tokio::task::JoinHandle<anyhow::Result<()>>,
    mut stop: watch::Receiver<bool>,
    halt: &watch::Sender<bool>,
) -> Option<anyhow::Error> {
    let mut prepared = false;
    let mut refused = None;
    let mut stopping = *stop.borrow_and_update();
    if stopping {
        let _ = halt.send(true);
    }
    loop {
        tokio::select! {
            joined = probing.join_next() => if joined.is_none() { break },
            changed = stop.changed(), if !stopping => {
                if changed.is_err() || *stop.borrow_and_update() {
                    stopping = true;
                    let _ = halt.send(true);
                }
            }
            result = &mut *preparing, if !prepared => {
                prepared = true;
                if let Ok(Err(e)) = result {
                    tracing::error!("stopping: {e:#}");
                    refused = Some(e);
                    let _ = halt.send(true);
                }
            }
        }
    }
    refused
}

/// Prepares the database ([`store::prepare`]), retrying every
/// [`PREPARE_RETRY`] while it cannot be used (it does not answer, or TLS
/// with it fails), then lets the writer in.
/// A database that answers and refuses is an error.
async fn prepare_until_ready(
    config: Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    ready: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut reported = false;
    loop {
        match store::prepare(store.as_ref(), &config, clock.now()).await {
            Ok(()) => {
                if reported {
                    tracing::info!("the database answers; replaying the spool");
                }
                let _ = ready.send(true);
                return Ok(());
            }
            Err(e) if store::is_unavailable(&e) => {
                if !std::mem::replace(&mut reported, true) {
                    tracing::error!(
                        "cannot use the database ({e:#}); probing anyway: attempts go to the spool until it can be used"
                    );
                } else {
                    tracing::debug!("database still not ready: {e:#}");
                }
            }
            Err(e) => return Err(e),
        }
        tokio::select! {
            _ = stop.changed() => if *stop.borrow() { return Ok(()) },
            _ = tokio::time::sleep(PREPARE_RETRY) => {}
        }
    }
}

/// How long a stop spends re-deciding the last writes' minutes.
const FINAL_SETTLE_LIMIT: Duration = Duration::from_secs(2);

/// How often this prober re-decides pending minutes (its own and any other
/// prober's whose targets are free).
pub const SETTLE_INTERVAL: Duration = Duration::from_secs(1);

/// Re-decides pending minutes every [`SETTLE_INTERVAL`], off the writer's
/// path: a write never waits for a re-decision, and a target another
/// prober is re-deciding is skipped, not waited for (docs/many-regions.md).
async fn settle_pending(
    store: Arc<dyn Store>,
    mut ready: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) {
    if !ticks::until_ready(&mut ready, &mut stop).await {
        return;
    }
    let mut ticker = ticks::ticker(SETTLE_INTERVAL);
    while ticks::tick(&mut ticker, &mut stop).await {
        ticks::guarded("settlement", async {
            store.settle_pending().await?;
            Ok(())
        })
        .await;
    }
}

/// What the scheduler did over the whole run, for operators and benchmarks.
fn log_summary(daemon: &Daemon) {
    use std::sync::atomic::Ordering::Relaxed;
    let c = &daemon.scheduler.counters;
    let bound = |p| {
        c.lateness.percentile_bound_ms(p).map_or_else(
            || "unknown or over 5000".to_owned(),
            |ms| format!("under {ms}"),
        )
    };
    tracing::info!(
        scheduled = c.scheduled.load(Relaxed),
        started = c.started.load(Relaxed),
        finished = c.finished.load(Relaxed),
        skipped_in_flight = c.skipped_in_flight.load(Relaxed),
        skipped_minute_proof = c.skipped_minute_proof.load(Relaxed),
        skipped_budget = c.skipped_budget.load(Relaxed),
        lateness_p50_ms = %bound(50),
        lateness_p99_ms = %bound(99),
        lateness_max_us = c.max_lateness_us.load(Relaxed),
        "probing summary"
    );
}
