//! `improbe demo`: a zero-configuration tour. The built-in simulator runs a
//! scripted outage, the real daemon probes it into a local SQLite file, each
//! minute's verdict is printed as it closes, with the sends whose delivery
//! the history read-back found missing, then the SLA table.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::accounting::{self, MonthSelection};
use crate::attempt::{Delivery, Kind};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::daemon;
use crate::minute::{Minute, MinuteRange};
use crate::report;
use crate::simulator::{Behaviour, Phase, Simulator};
use crate::store;

/// The demo's database, in the current directory; replaced on every run.
pub const DEMO_DATABASE: &str = "improbe-demo.db";
/// A minute with less than this left is not worth starting the script in.
const MIN_FIRST_MINUTE: Duration = Duration::from_secs(20);
/// After a minute closes: its last attempts may run for the timeout, then the
/// writer flushes; this covers both.
const SETTLE: Duration = Duration::from_secs(4);

/// The scripted minute for position `i` of the tour.
fn scripted(i: u32, minute: DateTime<Utc>) -> (Phase, &'static str) {
    match i % 4 {
        0 => (
            Phase {
                minute,
                login: Behaviour::healthy(),
                send_direct: Behaviour::healthy(),
                send_group: Behaviour::healthy(),
                history: Behaviour::healthy(),
            },
            "healthy",
        ),
        1 => (
            Phase {
                minute,
                login: Behaviour::http(503),
                send_direct: Behaviour::error(20005),
                send_group: Behaviour::error(10002),
                history: Behaviour::healthy(),
            },
            "everything fails",
        ),
        2 => (
            Phase {
                minute,
                login: Behaviour::healthy(),
                send_direct: Behaviour::error(90995),
                send_group: Behaviour {
                    hang: true,
                    ..Behaviour::healthy()
                },
                history: Behaviour::healthy(),
            },
            "only login works",
        ),
        // Accepted by the API, never in the histories: the SLA counts the
        // minute available; the delivery read-back shows the sends lost.
        _ => (
            Phase {
                minute,
                login: Behaviour::healthy(),
                send_direct: Behaviour::undelivered(),
                send_group: Behaviour::undelivered(),
                history: Behaviour::healthy(),
            },
            "sends accepted, never delivered",
        ),
    }
}

pub async fn run(minutes: u32) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=60).contains(&minutes),
        "--minutes must be between 1 and 60"
    );
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let simulator = Simulator::start("127.0.0.1:0".parse()?).await?;

    let now = clock.now();
    let mut first = Minute::containing(&now).next();
    if first.start() - now
        >= chrono::Duration::from_std(Duration::from_secs(60) - MIN_FIRST_MINUTE)?
    {
        first = Minute::containing(&now);
    }
    let script: Vec<(Minute, &str)> = (0..minutes)
        .map(|i| {
            let minute = Minute(first.0 + i64::from(i));
            let (phase, label) = scripted(i, minute.start());
            simulator.schedule([phase]);
            (minute, label)
        })
        .collect();

    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{DEMO_DATABASE}{suffix}"));
    }
    let config = Config::parse(&demo_config(&simulator.endpoint(), now), "demo")?;
    let store = store::open(&config.database.url).await?;
    store.migrate().await?;

    println!(
        "improbe demo: simulator at {}, probing every 2s into {DEMO_DATABASE}",
        simulator.endpoint()
    );
    for (minute, label) in &script {
        println!(
            "  {}  scripted: {label}",
            minute.start().format("%H:%M UTC")
        );
    }
    println!();

    let (stop, stopped) = watch::channel(false);
    let daemon_config = config.clone();
    let daemon_store = store.clone();
    let daemon_clock = clock.clone();
    let probing = tokio::spawn(async move {
        daemon::run(&daemon_config, daemon_store, daemon_clock, stopped).await
    });

    for (minute, label) in &script {
        let closes = minute.next().start();
        let wait = (closes - clock.now()).to_std().unwrap_or_default() + SETTLE;
        tokio::time::sleep(wait).await;
        let (book, _) = accounting::minute_book(
            store.as_ref(),
            "demo",
            MinuteRange::new(*minute, minute.next()),
        )
        .await?;
        let counts = book.counts(*minute);
        let mut missing = 0;
        store
            .visit_attempts(
                "demo",
                MinuteRange::new(*minute, minute.next()),
                &mut |attempt| missing += u32::from(attempt.delivery == Some(Delivery::Missing)),
            )
            .await?;
        println!(
            "{}  {:<10} ok={:<3} fail={:<3} inconclusive={:<3} undelivered={:<3} ({label})",
            minute.start().format("%H:%M UTC"),
            book.verdict(*minute).as_str(),
            counts.ok,
            counts.fail,
            counts.inconclusive,
            missing
        );
    }
    let _ = stop.send(true);
    probing.await??;
    drop(simulator);

    let target = &config.targets[0];
    let now = clock.now();
    let months = accounting::select_months(target, MonthSelection::ToDate, now)?;
    let statements =
        accounting::refresh_service_months(store.as_ref(), target, months, now).await?;
    println!("\n{}", report::sla_table::table(&statements, now));
    println!("The month is almost all no-data: the demo watched only {minutes} minute(s) of it.");
    println!("Query the minutes yourself: sqlite3 {DEMO_DATABASE} 'SELECT * FROM minute_verdicts'");
    Ok(())
}

fn demo_config(endpoint: &str, now: DateTime<Utc>) -> String {
    let start = now.date_naive();
    format!(
        r#"
[prober]
id = "demo"

[database]
url = "sqlite://{DEMO_DATABASE}"

[[targets]]
name = "demo"
provider = "simulator"
interval = "2s"
timeout = "2s"
operations = {operations:?}

[targets.simulator]
endpoint = "{endpoint}"

[targets.sla]
service_start = "{start}"
timezone = "UTC"
monthly_fee = "100.00"
"#,
        operations = Kind::ALL.map(Kind::as_str),
    )
}
