//! What the HTTP surface serves, kept by the daemon's own loop: no request
//! waits on the database per target (docs/many-regions.md).
//!
//! Every [`SETTLEMENT_REFRESH`] the loop reads the watermarks and the last
//! settled minute's verdicts of every target (two queries whatever the
//! number of targets); every [`PAGE_REFRESH`] it rebuilds the status page
//! and the `/report/<target>` pages asked for recently. A scrape reads
//! memory only; a page asked for the first time is built once, then kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::accounting;
use crate::clock::Clock;
use crate::config::{Config, Target};
use crate::minute::{Minute, MinuteRange};
use crate::report::evidence::{self, Depth, Evidence};
use crate::settlement::{self, Settlement};
use crate::sla::ExcludedMinutes;
use crate::sla::MinuteBook;
use crate::store::Store;
use crate::sync::{Locked, Shared};
use crate::verdict::Verdict;

/// How often the watermarks and the last settled minute are read.
pub const SETTLEMENT_REFRESH: Duration = Duration::from_secs(5);
/// How often the status page and the reports asked for are rebuilt; also
/// how old a page served may be.
pub const PAGE_REFRESH: Duration = Duration::from_secs(60);
/// A report nobody asked for in this long is no longer rebuilt.
const REPORT_KEPT: Duration = Duration::from_secs(600);

/// The settlement, as last read.
#[derive(Debug, Clone)]
pub struct SettledView {
    pub settlement: Settlement,
    /// The last settled minute and every target's verdict in it.
    pub last_minute: Option<(Minute, Vec<(String, Verdict)>)>,
}

struct Page {
    html: String,
    built: Instant,
    asked: Instant,
}

/// The copies the HTTP surface serves, and what they are made from.
pub struct LiveState {
    config: Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    settled: RwLock<Option<SettledView>>,
    status_page: Mutex<Option<Page>>,
    reports: Mutex<HashMap<String, Page>>,
}

impl LiveState {
    pub fn new(config: Config, store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> LiveState {
        LiveState {
            config,
            store,
            clock,
            settled: RwLock::default(),
            status_page: Mutex::default(),
            reports: Mutex::default(),
        }
    }

    pub fn settled(&self) -> Option<SettledView> {
        self.settled.reading().clone()
    }
}

/// Keeps the copies current until `stop`.
pub async fn run(
    live: Arc<LiveState>,
    mut ready: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) {
    if !crate::ticks::until_ready(&mut ready, &mut stop).await {
        return;
    }
    let mut ticker = crate::ticks::ticker(SETTLEMENT_REFRESH);
    let mut pages_built = Instant::now();
    while crate::ticks::tick(&mut ticker, &mut stop).await {
        crate::ticks::guarded("live-settlement", refresh_settled(&live)).await;
        if pages_built.elapsed() >= PAGE_REFRESH {
            pages_built = Instant::now();
            crate::ticks::guarded("live-pages", async {
                refresh_pages(&live).await;
                Ok(())
            })
            .await;
        }
    }
}

async fn refresh_settled(live: &LiveState) -> anyhow::Result<()> {
    let now = live.clock.now();
    let facts = live.store.settlement_facts().await?;
    let settlement = settlement::settle(&facts, now);
    let last = Minute(settlement.end.0 - 1);
    let counts = live.store.minute_counts_at(last).await?;
    let windows = live.store.exclusions(None).await?;
    let verdicts = live
        .config
        .targets
        .iter()
        .map(|target| {
            let excluded = ExcludedMinutes::new(
                windows
                    .iter()
                    .filter(|e| e.target == target.name)
                    .map(|e| e.window),
            );
            let stored = counts
                .iter()
                .filter(|(name, _)| *name == target.name)
                .map(|(_, c)| (last, *c));
            let book = MinuteBook::new(stored, excluded);
            (target.name.clone(), book.verdict(last))
        })
        .collect();
    *live.settled.writing() = Some(SettledView {
        settlement,
        last_minute: Some((last, verdicts)),
    });
    Ok(())
}

async fn refresh_pages(live: &LiveState) {
    let has_page = live
        .status_page
        .lock()
        .expect("live state poisoned")
        .is_some();
    if has_page && let Ok(html) = build_status_page(live).await {
        keep(&live.status_page, html);
    }
    let asked: Vec<String> = {
        let mut reports = live.reports.locked();
        reports.retain(|_, page| page.asked.elapsed() < REPORT_KEPT);
        reports.keys().cloned().collect()
    };
    for name in asked {
        if let Some(target) = live.config.targets.iter().find(|t| t.name == name)
            && let Ok(Some(html)) = build_report(live, target).await
        {
            let mut reports = live.reports.locked();
            if let Some(page) = reports.get_mut(&name) {
                page.html = html;
                page.built = Instant::now();
            }
        }
    }
}

fn keep(slot: &Mutex<Option<Page>>, html: String) {
    let now = Instant::now();
    let mut slot = slot.locked();
    let asked = slot.as_ref().map_or(now, |p| p.asked);
    *slot = Some(Page {
        html,
        built: now,
        asked,
    });
}

/// The status page: the kept copy, or built now if there is none yet.
pub async fn status_page(live: &LiveState) -> anyhow::Result<String> {
    if let Some(page) = live
        .status_page
        .lock()
        .expect("live state poisoned")
        .as_mut()
        .filter(|p| p.built.elapsed() < 2 * PAGE_REFRESH)
    {
        page.asked = Instant::now();
        return Ok(page.html.clone());
    }
    let html = build_status_page(live).await?;
    keep(&live.status_page, html.clone());
    Ok(html)
}

/// A target's current report: the kept copy, or built now. `None`: the
/// service starts later.
pub async fn report(live: &LiveState, target: &Target) -> anyhow::Result<Option<String>> {
    {
        let mut reports = live.reports.locked();
        if let Some(page) = reports
            .get_mut(&target.name)
            .filter(|p| p.built.elapsed() < 2 * PAGE_REFRESH)
        {
            page.asked = Instant::now();
            return Ok(Some(page.html.clone()));
        }
    }
    let Some(html) = build_report(live, target).await? else {
        return Ok(None);
    };
    let now = Instant::now();
    live.reports.locked().insert(
        target.name.clone(),
        Page {
            html: html.clone(),
            built: now,
            asked: now,
        },
    );
    Ok(Some(html))
}

async fn build_status_page(live: &LiveState) -> anyhow::Result<String> {
    let now = live.clock.now();
    let mut statuses = Vec::with_capacity(live.config.targets.len());
    for target in &live.config.targets {
        if let Some(status) = target_status(live, target, now).await? {
            statuses.push(status);
        }
    }
    let generated = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    Ok(crate::report::status::render(&statuses, &generated))
}

async fn build_report(live: &LiveState, target: &Target) -> anyhow::Result<Option<String>> {
    let now = live.clock.now();
    Ok(current_evidence(live, target, now, Depth::WithAttempts)
        .await?
        .map(|evidence| crate::report::html::render(&evidence)))
}

async fn target_status(
    live: &LiveState,
    target: &Target,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<crate::report::status::TargetStatus>> {
    let Some(evidence) = current_evidence(live, target, now, Depth::MinutesOnly).await? else {
        return Ok(None);
    };
    let closed = Minute::containing(&now);
    let hour = MinuteRange::new(Minute(closed.0 - 60), closed);
    // From the start of the first minute's interval, so it is decided whole.
    let contract = &target.sla.contract;
    let read = MinuteRange::new(contract.interval_of(hour.start).start, hour.end);
    let (book, _) = accounting::minute_book(live.store.as_ref(), &target.name, read).await?;
    let last_hour = (hour.start.0..hour.end.0)
        .map(|m| (Minute(m), book.interval_verdict(contract, Minute(m))))
        .collect();
    Ok(Some(crate::report::status::TargetStatus {
        tolerated_minutes: evidence.figures.tolerated_failure_minutes,
        evidence,
        last_hour,
    }))
}

/// The current Service Month's evidence, or `None` before the service starts.
async fn current_evidence(
    live: &LiveState,
    target: &Target,
    now: DateTime<Utc>,
    depth: Depth,
) -> anyhow::Result<Option<Evidence>> {
    let Some(month) =
        accounting::select_months(target, accounting::MonthSelection::Current, now)?.pop()
    else {
        return Ok(None);
    };
    evidence::for_month(live.store.as_ref(), target, month, now, depth)
        .await
        .map(Some)
}
