//! The daemon's one settlement task. Every [`notify::TICK`] it reads the
//! probers' watermarks once and applies the rule of `src/settlement.rs`;
//! each time a minute settles it hands that minute to every consumer, in
//! this order: the figures ([`accounting::Figures`], written to
//! `service_months`), the live copies the HTTP surface serves
//! ([`LiveState`]: the last settled minute's verdicts and the pages) and
//! the notifications. A budget notification, `/metrics`, the status page
//! and `service_months` therefore never disagree on which minutes count.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::live::{self, LiveState};
use crate::accounting::{self, Figures, MonthSelection};
use crate::clock::Clock;
use crate::config::Config;
use crate::minute::Minute;
use crate::notify::{self, Notifier};
use crate::settlement::{self, Settlement};
use crate::store::Store;
use crate::ticks;

/// Until `stop`: every [`notify::TICK`], settles; once a new minute has
/// settled, computes the figures, then publishes the settlement and
/// rebuilds the pages; then steps the notifications (if any channel is
/// configured) with the figures and the settled minute.
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
    let own_wait = settlement::own_wait(&config);
    let mut ticker = ticks::ticker(notify::TICK);
    // The settled end the figures were last computed at; `None`: never.
    let mut computed_at: Option<Minute> = None;
    while ticks::tick(&mut ticker, &mut stop).await {
        let now = clock.now();
        let settle = async {
            Ok(settlement::settle_here(
                &store.settlement_facts().await?,
                now,
                own_wait,
            ))
        };
        let Some(settled) = ticks::guarded("settlement", settle).await else {
            continue;
        };
        let end = settled.end;
        let mut newly_settled = false;
        if computed_at != Some(end) {
            // The first round writes every month to date: past months change
            // when an earlier run's spool is replayed or the config's
            // exclusions change.
            let every_month = computed_at.is_none();
            let round = refresh(&config, store.as_ref(), now, every_month);
            if let Some(figures) = ticks::guarded("service-months", round).await {
                live.publish(figures);
                computed_at = Some(end);
                newly_settled = true;
            }
        }
        if newly_settled {
            publish_settled(&live, settled).await;
            ticks::guarded("live-pages", async {
                live::refresh_pages(&live).await;
                Ok(())
            })
            .await;
        } else {
            // Probers' reports and who holds settlement back change between
            // minutes; the last settled minute's verdicts do not.
            live.update_settlement(settled);
        }
        if let Some(notifier) = &mut notifier {
            let figures = live.figures();
            let current = (computed_at == Some(end)).then_some((figures.as_ref(), end));
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

/// Publishes `settled` with the verdicts of its last minute.
async fn publish_settled(live: &LiveState, settled: Settlement) {
    let last = Minute(settled.end.0 - 1);
    match ticks::guarded("live-settlement", live::verdicts_at(live, last)).await {
        Some(verdicts) => live.publish_settled(settled, Some((last, verdicts))),
        None => live.update_settlement(settled),
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
