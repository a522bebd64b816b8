//! `improbe run` wired together: probes, writer, control check and the
//! monthly figures, with a clean stop that loses no finished attempt.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::accounting::{self, MonthSelection};
use crate::clock::Clock;
use crate::config::Config;
use crate::control::ControlCheck;
use crate::heartbeat::HeartbeatRecorder;
use crate::probe;
use crate::retention;
use crate::schedule::{self, Scheduler};
use crate::server::{self, Surface};
use crate::spool::Spool;
use crate::store::{self, Store};
use crate::writer::{self, WriterCounters};

/// How often a database that was down at start is tried again.
pub const PREPARE_RETRY: Duration = Duration::from_secs(2);

/// How often the current Service Month's figures are refreshed in `service_months`.
pub const MONTHS_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// A running daemon's shared state, for the HTTP surface and tests.
pub struct Daemon {
    pub scheduler: Arc<Scheduler>,
    pub writer: Arc<WriterCounters>,
}

/// Probes every target until `stop` turns true; then waits for attempts in
/// flight, writes everything measured and returns.
pub async fn run(
    config: &Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    // The database may be down at start: probe anyway, spool, and prepare
    // it (migrations, the config's exclusions) as soon as it answers.
    let (database_ready, ready) = watch::channel(false);
    let mut background = JoinSet::new();
    match store::prepare(store.as_ref(), config, clock.now()).await {
        Ok(()) => {
            let _ = database_ready.send(true);
        }
        Err(e) if store::is_unreachable(&e) => {
            tracing::error!(
                "the database does not answer ({e:#}); probing anyway: attempts go to the spool until it does"
            );
            background.spawn(prepare_when_reachable(
                config.clone(),
                store.clone(),
                clock.clone(),
                database_ready,
                stop.clone(),
            ));
        }
        Err(e) => return Err(e),
    }
    // Build every probe first: a bad secret stops start-up before anything runs.
    let mut probes = Vec::new();
    let mut operations = 0;
    for target in &config.targets {
        let (plans, notes) = schedule::plan(target);
        match probe::for_target(target, clock.clone())? {
            Some(probe) => {
                operations += plans.len();
                probes.push((Arc::new(target.clone()), probe));
            }
            None => {
                tracing::warn!(target = %target.name, "not probed: the {:?} provider has no probe yet", target.provider)
            }
        }
        for note in notes {
            tracing::warn!("{note}");
        }
    }
    // Attempts an earlier run could not write are replayed before new ones.
    let spool = Spool::open(&config.prober.spool_path())?;
    let control = match &config.prober.control_url {
        Some(url) => Some(Arc::new(ControlCheck::new(url.clone())?)),
        None => None,
    };

    let (sink, attempts) = mpsc::channel(writer::CHANNEL_CAPACITY);
    let daemon = Daemon {
        scheduler: Scheduler::new(
            config.prober.id.clone(),
            clock.clone(),
            sink,
            control.clone(),
        ),
        writer: Arc::new(WriterCounters::default()),
    };
    let writer_task = tokio::spawn(writer::run(
        store.clone(),
        spool,
        attempts,
        ready,
        daemon.writer.clone(),
    ));

    let surface = Arc::new(Surface {
        config: config.clone(),
        store: store.clone(),
        clock: clock.clone(),
        schedule: daemon.scheduler.counters.clone(),
        writer: daemon.writer.clone(),
        control: control.clone(),
        probing: AtomicBool::new(false),
    });
    if let Some(addr) = config.prober.listen {
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {addr} for /metrics, /healthz and /readyz ([prober] listen): {e}"
            )
        })?;
        tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
        let (surface, stop) = (surface.clone(), stop.clone());
        background.spawn(async move {
            if let Err(e) = server::serve(listener, surface, stop).await {
                tracing::error!("HTTP surface stopped: {e}");
            }
        });
    }
    if let Some(control) = control {
        let stop = stop.clone();
        background.spawn(async move { control.run(stop).await });
    }
    background.spawn(retention::run(
        config.clone(),
        store.clone(),
        clock.clone(),
        stop.clone(),
    ));
    background.spawn(refresh_months(
        config.clone(),
        store.clone(),
        clock.clone(),
        stop.clone(),
    ));

    let heartbeat = tokio::spawn(
        HeartbeatRecorder::new(
            config.prober.id.clone(),
            daemon.scheduler.counters.clone(),
            store.clone(),
            clock.clone(),
        )
        .run(stop.clone()),
    );

    daemon.scheduler.expect_operations(operations);
    let mut probing = JoinSet::new();
    for (target, probe) in probes {
        probing.spawn(
            daemon
                .scheduler
                .clone()
                .run_target(target, probe, stop.clone()),
        );
    }
    surface.probing.store(true, Ordering::Relaxed);
    tracing::info!(prober = %config.prober.id, targets = config.targets.len(), database = store.backend(), "probing");
    while probing.join_next().await.is_some() {}
    surface.probing.store(false, Ordering::Relaxed);
    log_summary(&daemon);
    heartbeat.await?.beat().await;
    // Every probe loop has ended: closing the channel lets the writer finish.
    drop(daemon.scheduler);
    writer_task.await?;
    while background.join_next().await.is_some() {}
    tracing::info!("stopped");
    Ok(())
}

/// Retries [`store::prepare`] until it succeeds, then lets the writer in.
async fn prepare_when_reachable(
    config: Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    ready: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stop.changed() => if *stop.borrow() { return },
            _ = tokio::time::sleep(PREPARE_RETRY) => {}
        }
        match store::prepare(store.as_ref(), &config, clock.now()).await {
            Ok(()) => {
                tracing::info!("the database answers; replaying the spool");
                let _ = ready.send(true);
                return;
            }
            Err(e) => tracing::debug!("database still not ready: {e:#}"),
        }
    }
}

/// Keeps `service_months` current for every target.
async fn refresh_months(
    config: Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(MONTHS_REFRESH_INTERVAL);
    loop {
        tokio::select! {
            _ = stop.changed() => if *stop.borrow() { return },
            _ = ticker.tick() => {}
        }
        let now = clock.now();
        for target in &config.targets {
            let result = async {
                let months = accounting::select_months(target, MonthSelection::Current, now)?;
                let statements =
                    accounting::statements(store.as_ref(), target, months, now).await?;
                store.save_service_months(&statements, Utc::now()).await
            };
            if let Err(e) = result.await {
                tracing::debug!(target = %target.name, "service month not refreshed: {e:#}");
            }
        }
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
