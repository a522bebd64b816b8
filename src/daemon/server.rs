//! The small HTTP surface: `/metrics` (Prometheus text format), `/healthz`
//! (the process is alive) and `/readyz` (database reachable, probes running,
//! credentials accepted).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::config::Config;
use crate::daemon::control::ControlCheck;
use crate::daemon::metrics::{Exposition, Histogram};
use crate::daemon::schedule::{LATENESS_BUCKETS_MS, ScheduleCounters};
use crate::daemon::writer::WriterCounters;
use crate::sla::MonthStatement;
use crate::store::Store;

/// Credentials rejected this recently make the prober not ready.
pub const CREDENTIALS_WINDOW: Duration = Duration::from_secs(120);
/// A database that does not answer within this is reported unreachable.
const PING_TIMEOUT: Duration = Duration::from_secs(3);

/// What the endpoints report on.
pub struct Surface {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub schedule: Arc<ScheduleCounters>,
    pub writer: Arc<WriterCounters>,
    pub control: Option<Arc<ControlCheck>>,
    /// Set once every probe loop is running.
    pub probing: AtomicBool,
    /// The current Service Months, as the daemon last wrote them.
    /// Per `[[notify]]` channel: sent, failed, pending.
    pub notifications: crate::notify::sender::SenderCounters,
    /// The copies the endpoints serve, kept by the settlement task (`settled.rs`).
    pub live: Arc<super::live::LiveState>,
    /// What the last storage round measured.
    pub storage: Arc<super::retention::StorageGauges>,
}

pub fn router(surface: Arc<Surface>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/", get(status_page))
        .route("/report/{target}", get(current_report))
        .with_state(surface)
}

/// Serves until `stop` turns true, within the listener's bounds and behind
/// its gate (`listener.rs`).
pub async fn serve(
    listener: TcpListener,
    gate: super::listener::Gate,
    surface: Arc<Surface>,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    super::listener::serve(listener, router(surface), gate, stop).await
}

async fn readyz(State(surface): State<Arc<Surface>>) -> Response {
    let mut problems = Vec::new();
    match tokio::time::timeout(PING_TIMEOUT, surface.store.ping()).await {
        Ok(Ok(())) => {}
        // Named for what failed: TLS with the database is not an outage.
        Ok(Err(e @ crate::store::StoreError::Tls(..))) => {
            problems.push(format!("database TLS: {e:#}"))
        }
        Ok(Err(e)) => problems.push(format!("database unreachable: {e:#}")),
        Err(_) => problems.push("database did not answer within 3s".to_owned()),
    }
    if !surface.probing.load(Ordering::Relaxed) {
        problems.push("probes not running".to_owned());
    }
    for target in surface
        .schedule
        .attempts
        .credentials_failing(CREDENTIALS_WINDOW)
    {
        problems.push(format!(
            "target {target}: credentials rejected within the last {}s",
            CREDENTIALS_WINDOW.as_secs()
        ));
    }
    if problems.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, problems.join("\n") + "\n").into_response()
    }
}

/// The live status page (docs/operations.md "Status page"), from the copy the daemon
/// keeps (`live.rs`).
async fn status_page(State(surface): State<Arc<Surface>>) -> Response {
    match super::live::status_page(&surface.live).await {
        Ok(page) => html(page),
        Err(e) => {
            tracing::warn!("status page: {e:#}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the database does not answer: {e:#}\n"),
            )
                .into_response()
        }
    }
}

/// The current Service Month's full evidence report for one target.
async fn current_report(
    State(surface): State<Arc<Surface>>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Response {
    let Some(target) = surface.config.targets.iter().find(|t| t.name == name) else {
        return (StatusCode::NOT_FOUND, "no such target\n").into_response();
    };
    match super::live::report(&surface.live, target).await {
        Ok(Some(page)) => html(page),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            "no Service Month yet: the service starts later\n",
        )
            .into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}\n")).into_response(),
    }
}

/// The pages need nothing but their own inline styles: no script, no other
/// origin, no framing (docs/operations.md "Metrics and health"), so provider text that got past escaping
/// could still do nothing.
const PAGE_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn html(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, PAGE_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

async fn metrics(State(surface): State<Arc<Surface>>) -> Response {
    let mut out = Exposition::default();
    surface.schedule.attempts.render(&mut out);
    render_storage(&surface, &mut out);
    let s = &surface.schedule;
    out.family(
        "improbe_schedule_skipped_total",
        "counter",
        "Scheduled starts that did not happen, by reason.",
    );
    for (reason, counter) in [
        ("in_flight", &s.skipped_in_flight),
        ("minute_proof", &s.skipped_minute_proof),
        ("send_quota", &s.skipped_budget),
    ] {
        out.sample(
            "improbe_schedule_skipped_total",
            &[("reason", reason)],
            counter.load(Ordering::Relaxed) as f64,
        );
    }
    out.family(
        "improbe_schedule_lateness_seconds",
        "histogram",
        "How late attempts started against their schedule.",
    );
    let bounds: Vec<f64> = LATENESS_BUCKETS_MS
        .iter()
        .map(|ms| *ms as f64 / 1000.0)
        .collect();
    let lateness = Histogram::from_counts(s.lateness.counts(), s.lateness.sum_seconds());
    out.histogram("improbe_schedule_lateness_seconds", &[], &bounds, &lateness);
    let writer = &surface.writer;
    for (name, kind, help, value) in [
        (
            "improbe_buffered_attempts",
            "gauge",
            "Attempts measured and held in memory, not yet in the database or the spool.",
            &writer.buffered,
        ),
        (
            "improbe_spooled_attempts",
            "gauge",
            "Attempts in the on-disk spool, waiting for the database.",
            &writer.spooled,
        ),
        (
            "improbe_spool_errors_total",
            "counter",
            "Failed spool reads or writes.",
            &writer.spool_errors,
        ),
        (
            "improbe_dropped_attempts_total",
            "counter",
            "Attempts given up with the database and the spool both failing.",
            &writer.dropped,
        ),
    ] {
        out.family(name, kind, help);
        out.sample(name, &[], value.load(Ordering::Relaxed) as f64);
    }
    out.family(
        "improbe_database_write_errors_total",
        "counter",
        "Failed database writes, by reason (disk_full, unreachable, refused, timeout); their attempts went to the spool.",
    );
    for (reason, counter) in crate::store::WriteErrorReason::ALL
        .iter()
        .zip(&writer.write_errors_by_reason)
    {
        out.sample(
            "improbe_database_write_errors_total",
            &[("reason", reason.as_str())],
            counter.load(Ordering::Relaxed) as f64,
        );
    }
    out.family(
        "improbe_background_errors_total",
        "counter",
        "Rounds of a background task (retention, service-months, settlement, notify-*, live-*) that failed unexpectedly or panicked; the task goes on.",
    );
    for (task, n) in crate::ticks::background_errors() {
        out.sample(
            "improbe_background_errors_total",
            &[("task", task)],
            n as f64,
        );
    }
    if !surface.notifications.is_empty() {
        type Count = fn(&crate::notify::sender::ChannelCounters) -> &std::sync::atomic::AtomicU64;
        let families: [(&str, &str, &str, Count); 4] = [
            (
                "improbe_notifications_sent_total",
                "counter",
                "Notifications a channel accepted.",
                |c| &c.sent,
            ),
            (
                "improbe_notifications_failed_total",
                "counter",
                "Tries a channel refused or did not answer; each is retried unless refused for good.",
                |c| &c.failed,
            ),
            (
                "improbe_notifications_given_up_total",
                "counter",
                "Notifications a channel refused for good (HTTP 4xx other than 408/429, SMTP 5xx); the channel moved on.",
                |c| &c.given_up,
            ),
            (
                "improbe_notifications_pending",
                "gauge",
                "Notifications in the outbox not yet accepted by their channel.",
                |c| &c.pending,
            ),
        ];
        for (name, kind, help, count) in families {
            out.family(name, kind, help);
            for (channel, counters) in &surface.notifications {
                out.sample(
                    name,
                    &[("channel", channel)],
                    count(counters).load(Ordering::Relaxed) as f64,
                );
            }
        }
    }
    if let Some(control) = &surface.control {
        out.family(
            "improbe_control_check_up",
            "gauge",
            "1 while our own network answers the control check.",
        );
        out.sample(
            "improbe_control_check_up",
            &[],
            f64::from(u8::from(control.is_healthy())),
        );
    }
    render_settlement(&surface, &mut out);
    // As the daemon last computed them and wrote them to `service_months`
    // (once a minute, daemon/settled.rs).
    let figures = surface.live.figures();
    let months = figures.currents();
    type Figure = fn(&MonthStatement) -> Option<f64>;
    let figures: [(&str, &str, Figure); 5] = [
        (
            "improbe_service_month_availability_ratio",
            "Availability of the current Service Month so far (failure minutes over all its minutes).",
            |m| Some(m.availability_ratio()),
        ),
        (
            "improbe_service_month_failure_minutes",
            "Apparent Failure minutes in the current Service Month.",
            |m| Some(m.failure_minutes as f64),
        ),
        (
            "improbe_service_month_tolerated_failure_minutes",
            "Failure minutes the current Service Month can hold and still meet its contract's commitment (the error budget).",
            |m| Some(m.tolerated_failure_minutes as f64),
        ),
        (
            "improbe_service_month_coverage_ratio",
            "Share of the current Service Month's elapsed, not excluded minutes that hold a conclusive verdict.",
            |m| {
                m.coverage_basis_points
                    .map(|points| points as f64 / 10_000.0)
            },
        ),
        (
            "improbe_service_month_credit_percent",
            "Credit tier the current Service Month has reached.",
            |m| Some(f64::from(m.credit_percent)),
        ),
    ];
    for (name, help, figure) in figures {
        out.family(name, "gauge", help);
        for m in &months {
            if let Some(value) = figure(m) {
                out.sample(name, &[("target", &m.target)], value);
            }
        }
    }
    // The same budget in the contract's own intervals, labelled with the
    // contract (docs/contracts.md); under `tencent-im` equal to the minutes.
    type Count = fn(&MonthStatement) -> i64;
    let interval_figures: [(&str, &str, Count); 2] = [
        (
            "improbe_service_month_down_intervals",
            "Down intervals of the target's contract in the current period (Apparent Failure minutes under tencent-im).",
            MonthStatement::down_units,
        ),
        (
            "improbe_service_month_tolerated_down_intervals",
            "Down intervals the current period can hold and still meet the contract's commitment.",
            MonthStatement::tolerated_down_units,
        ),
    ];
    for (name, help, figure) in interval_figures {
        out.family(name, "gauge", help);
        for m in &months {
            let unit = m.unit_minutes.to_string();
            let labels = [
                ("target", m.target.as_str()),
                ("contract", m.contract.as_str()),
                ("interval_minutes", unit.as_str()),
            ];
            out.sample(name, &labels, figure(m) as f64);
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out.finish(),
    )
        .into_response()
}

/// The last settled minute's verdicts, the write lag and the watermarks, all
/// from memory: the daemon's loops update them (docs/many-regions.md).
/// The database's size as the last storage round found it, and (SQLite)
/// the free space of its volume now: what the volume alert reads
/// (deploy/prometheus/improbe-rules.yml).
fn render_storage(surface: &Surface, out: &mut Exposition) {
    let bytes = surface.storage.database_bytes.load(Ordering::Relaxed);
    if bytes >= 0 {
        out.family(
            "improbe_database_bytes",
            "gauge",
            "The database's bytes on disk after the last storage round.",
        );
        out.sample("improbe_database_bytes", &[], bytes as f64);
    }
    let free = crate::capacity::sqlite_file(&surface.config.database.url)
        .and_then(|file| crate::capacity::volume_free_bytes(&file).ok());
    if let Some(free) = free {
        out.family(
            "improbe_volume_free_bytes",
            "gauge",
            "Bytes still free on the volume holding the SQLite database.",
        );
        out.sample("improbe_volume_free_bytes", &[], free as f64);
    }
}

fn render_settlement(surface: &Surface, out: &mut Exposition) {
    let writer = &surface.writer;
    out.family(
        "improbe_write_lag_seconds",
        "gauge",
        "At the last successful write, how long its oldest attempt had waited since it ended.",
    );
    out.sample(
        "improbe_write_lag_seconds",
        &[],
        writer.write_lag_ms.load(Ordering::Relaxed) as f64 / 1000.0,
    );
    let Some(view) = surface.live.settled() else {
        return;
    };
    if let Some((minute, verdicts)) = &view.last_minute {
        out.family(
            "improbe_minute_verdict",
            "gauge",
            "The verdict of the last settled minute (1 for the verdict it has).",
        );
        for target in &surface.config.targets {
            let verdict = verdicts
                .iter()
                .find(|(name, _)| *name == target.name)
                .map_or(crate::verdict::Verdict::NoData, |(_, v)| *v);
            out.sample(
                "improbe_minute_verdict",
                &[("target", &target.name), ("verdict", verdict.as_str())],
                1.0,
            );
        }
        out.family(
            "improbe_settled_minute_timestamp_seconds",
            "gauge",
            "Start of the last settled minute: every live prober has written it.",
        );
        out.sample(
            "improbe_settled_minute_timestamp_seconds",
            &[],
            minute.start().timestamp() as f64,
        );
    }
    let now = surface.clock.now();
    let seconds_behind =
        |t: chrono::DateTime<chrono::Utc>| (now - t).num_milliseconds() as f64 / 1000.0;
    let settlement = &view.settlement;
    out.family(
        "improbe_settlement_lag_seconds",
        "gauge",
        "How far behind now the slowest live prober's watermark is: what announcements wait for.",
    );
    out.sample(
        "improbe_settlement_lag_seconds",
        &[],
        seconds_behind(settlement.complete_until),
    );
    out.family(
        "improbe_prober_watermark_lag_seconds",
        "gauge",
        "Per prober sharing the database: how far behind now its stored attempts are complete.",
    );
    for mark in settlement.live.iter().chain(&settlement.given_up) {
        out.sample(
            "improbe_prober_watermark_lag_seconds",
            &[("prober", &mark.prober)],
            seconds_behind(mark.complete_until),
        );
    }
    out.family(
        "improbe_probers",
        "gauge",
        "Probers sharing the database: live, or given up after 60 s without a report.",
    );
    out.sample(
        "improbe_probers",
        &[("state", "live")],
        settlement.live.len() as f64,
    );
    out.sample(
        "improbe_probers",
        &[("state", "given_up")],
        settlement.given_up.len() as f64,
    );
}
