//! What the HTTP surface serves, kept by the daemon's settlement task
//! (`settled.rs`): no request waits on the database per target
//! (docs/many-regions.md).
//!
//! Each time a minute settles, the task hands over the settlement, the
//! last settled minute's verdicts of every target and the Service Month
//! statements, and rebuilds the status page and the `/report/<target>`
//! pages asked for recently from them; between minutes it refreshes the
//! probers' reports. A scrape reads memory only; a page asked for the
//! first time is built once, then kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::accounting::{self, Figures};
use crate::clock::Clock;
use crate::config::{Config, Target};
use crate::minute::{Minute, MinuteRange};
use crate::report::evidence::{self, Depth, Evidence};
use crate::settlement::Settlement;
use crate::sla::ExcludedMinutes;
use crate::sla::MinuteBook;
use crate::store::Store;
use crate::sync::{Locked, Shared};
use crate::verdict::Verdict;

/// How often the status page and the reports asked for are rebuilt (with
/// the figures, once a minute); a kept page older than twice this is built
/// again on request.
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
    figures: RwLock<Arc<Figures>>,
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
            figures: RwLock::default(),
            status_page: Mutex::default(),
            reports: Mutex::default(),
        }
    }

    pub fn settled(&self) -> Option<SettledView> {
        self.settled.reading().clone()
    }

    /// The figures as last computed (none before the first round).
    pub fn figures(&self) -> Arc<Figures> {
        self.figures.reading().clone()
    }

    pub fn publish(&self, figures: Figures) {
        *self.figures.writing() = Arc::new(figures);
    }

    /// A newly settled minute, with its verdicts.
    pub fn publish_settled(
        &self,
        settlement: Settlement,
        last_minute: Option<(Minute, Vec<(String, Verdict)>)>,
    ) {
        *self.settled.writing() = Some(SettledView {
            settlement,
            last_minute,
        });
    }

    /// The probers' reports as of now, the settled minute unchanged.
    pub fn update_settlement(&self, settlement: Settlement) {
        let mut settled = self.settled.writing();
        let last_minute = settled.take().and_then(|view| view.last_minute);
        *settled = Some(SettledView {
            settlement,
            last_minute,
        });
    }
}

/// Every target's verdict in `minute`, from its buckets and exclusions
/// (two queries whatever the number of targets).
pub async fn verdicts_at(
    live: &LiveState,
    minute: Minute,
) -> anyhow::Result<Vec<(String, Verdict)>> {
    let counts = live.store.minute_counts_at(minute).await?;
    let windows = live.store.exclusions(None).await?;
    Ok(live
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
                .map(|(_, c)| (minute, *c));
            let book = MinuteBook::new(stored, excluded);
            (target.name.clone(), book.verdict(minute))
        })
        .collect())
}

/// Rebuilds the kept pages from the figures just published.
pub async fn refresh_pages(live: &LiveState) {
    let has_page = live.status_page.locked().is_some();
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
        .locked()
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
    let mut statuses = Vec::with_capacity(live.config.targets.len());
    let mut generated = None;
    for target in &live.config.targets {
        if let Some(status) = target_status(live, target).await? {
            generated.get_or_insert(status.evidence_at);
            statuses.push(status.status);
        }
    }
    let generated = generated.unwrap_or_else(|| live.clock.now());
    let generated = generated.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    Ok(crate::report::status::render(&statuses, &generated))
}

async fn build_report(live: &LiveState, target: &Target) -> anyhow::Result<Option<String>> {
    Ok(current_evidence(live, target, Depth::WithAttempts)
        .await?
        .map(|(evidence, _)| crate::report::html::render(&evidence)))
}

struct StatusAt {
    status: crate::report::status::TargetStatus,
    evidence_at: DateTime<Utc>,
}

async fn target_status(live: &LiveState, target: &Target) -> anyhow::Result<Option<StatusAt>> {
    let Some((evidence, at)) = current_evidence(live, target, Depth::MinutesOnly).await? else {
        return Ok(None);
    };
    let closed = Minute::containing(&at);
    let hour = MinuteRange::new(Minute(closed.0 - 60), closed);
    // From the start of the first minute's interval, so it is decided whole.
    let contract = &target.sla.contract;
    let read = MinuteRange::new(contract.interval_of(hour.start).start, hour.end);
    let (book, _) = accounting::minute_book(live.store.as_ref(), &target.name, read).await?;
    let last_hour = (hour.start.0..hour.end.0)
        .map(|m| (Minute(m), book.interval_verdict(contract, Minute(m))))
        .collect();
    Ok(Some(StatusAt {
        status: crate::report::status::TargetStatus {
            tolerated_minutes: evidence.figures.tolerated_failure_minutes,
            evidence,
            last_hour,
        },
        evidence_at: at,
    }))
}

/// The current Service Month's evidence and the instant it stands at, from
/// the figures as last computed; `None` before the service starts. Until
/// the settlement task has run once, the statement is computed here, by the
/// same function.
async fn current_evidence(
    live: &LiveState,
    target: &Target,
    depth: Depth,
) -> anyhow::Result<Option<(Evidence, DateTime<Utc>)>> {
    let figures = live.figures();
    let kept = figures
        .computed_at
        .and_then(|at| Some((figures.current(&target.name)?.clone(), at)));
    let (statement, at) = match kept {
        Some(kept) => kept,
        None => {
            let now = live.clock.now();
            let Some(month) =
                accounting::select_months(target, accounting::MonthSelection::Current, now)?.pop()
            else {
                return Ok(None);
            };
            let statements = accounting::statements(live.store.as_ref(), target, vec![month], now);
            match statements.await?.pop() {
                Some(statement) => (statement, now),
                None => return Ok(None),
            }
        }
    };
    let evidence = evidence::gather_to(live.store.as_ref(), target, &statement, at, depth).await?;
    Ok(Some((evidence, at)))
}
