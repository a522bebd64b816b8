//! The daemon's one producer of figures. Once per settled minute it
//! computes every target's open Service Months ([`accounting::Figures`]),
//! writes them to `service_months` and hands them to the HTTP surface
//! ([`LiveState`]); then, from those same statements, it rebuilds the pages
//! and lets the notifications decide. A budget notification, `/metrics`,
//! the status page and `service_months` therefore never disagree.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::live::{self, LiveState};
use crate::accounting::{self, Figures, MonthSelection};
use crate::clock::Clock;
use crate::config::Config;
use crate::minute::Minute;
use crate::notify::{self, Notifier};
use crate::store::Store;
use crate::ticks;

/// Until `stop`: every [`notify::TICK`], computes the figures once a new
/// minute has settled, then rebuilds the pages, then steps the
/// notifications (if any channel is configured).
pub async fn run(
    config: Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    live: Arc<LiveState>,
    mut notifier: Option<Notifier>,
    mut ready: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) {
    if !ticks::until_ready(&mut ready, &mut stop).await {
        return;
    }
    let settle = notify::decider::settle_wait(&config);
    let mut ticker = ticks::ticker(notify::TICK);
    // The minute the figures were last computed after; `None`: never.
    let mut computed_after: Option<Minute> = None;
    while ticks::tick(&mut ticker, &mut stop).await {
        let now = clock.now();
        let settled = Minute::containing(&(now - settle));
        if computed_after != Some(settled) {
            // The first round writes every month to date: past months change
            // when an earlier run's spool is replayed or the config's
            // exclusions change.
            let every_month = computed_after.is_none();
            let round = refresh(&config, store.as_ref(), now, every_month);
            if let Some(figures) = ticks::guarded("service-months", round).await {
                live.publish(figures);
                computed_after = Some(settled);
                ticks::guarded("live-pages", async {
                    live::refresh_pages(&live).await;
                    Ok(())
                })
                .await;
            }
        }
        if let Some(notifier) = &mut notifier {
            let figures = live.figures();
            let current = (computed_after == Some(settled)).then_some(figures.as_ref());
            let stopping = stop.clone();
            notifier
                .step(store.as_ref(), current, clock.as_ref(), || {
                    !*stopping.borrow()
                })
                .await;
        }
    }
    if let Some(notifier) = notifier {
        notifier.release(store.as_ref()).await;
    }
}

/// Computes every target's figures at `now` and writes them to
/// `service_months`; with `every_month`, the months before the open ones
/// are computed and written too.
async fn refresh(
    config: &Config,
    store: &dyn Store,
    now: DateTime<Utc>,
    every_month: bool,
) -> anyhow::Result<Figures> {
    let mut figures = Figures::empty(now);
    for target in &config.targets {
        let months = if every_month {
            accounting::select_months(target, MonthSelection::ToDate, now)?
        } else {
            accounting::open_months(target, now)
        };
        let statements = accounting::statements(store, target, months, now).await?;
        store.save_service_months(&statements, now).await?;
        figures.insert(target, statements, now);
    }
    Ok(figures)
}
