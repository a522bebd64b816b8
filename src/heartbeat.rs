//! The prober's heartbeat: at every minute boundary it records that it was
//! alive and what its scheduler did in the minute that just closed, so a
//! no-data minute reads as "prober down" (no heartbeat) or "prober up, no
//! conclusive attempt" (heartbeat with attempts that were inconclusive or
//! skipped).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use tokio::sync::watch;

use crate::clock::Clock;
use crate::minute::Minute;
use crate::schedule::ScheduleCounters;
use crate::store::{Heartbeat, Store};

/// Heartbeats kept while the database is down: a day of minutes.
const BACKLOG_LIMIT: usize = 1_440;

#[derive(Clone, Copy, Default)]
struct Totals {
    scheduled: u64,
    started: u64,
    skipped: u64,
    finished: u64,
}

impl Totals {
    fn read(c: &ScheduleCounters) -> Totals {
        Totals {
            scheduled: c.scheduled.load(Relaxed),
            started: c.started.load(Relaxed),
            skipped: c.skipped_in_flight.load(Relaxed)
                + c.skipped_minute_proof.load(Relaxed)
                + c.skipped_budget.load(Relaxed),
            finished: c.finished.load(Relaxed),
        }
    }
}

pub struct HeartbeatRecorder {
    prober: String,
    counters: Arc<ScheduleCounters>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    last: Totals,
    minute: Minute,
    backlog: Vec<Heartbeat>,
}

impl HeartbeatRecorder {
    pub fn new(
        prober: String,
        counters: Arc<ScheduleCounters>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> HeartbeatRecorder {
        let minute = Minute::containing(&clock.now());
        HeartbeatRecorder {
            prober,
            last: Totals::read(&counters),
            counters,
            store,
            clock,
            minute,
            backlog: Vec::new(),
        }
    }

    /// Beats at every minute boundary until `stop`; returns itself so the
    /// caller can record the last, partial minute once probing has ended.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) -> HeartbeatRecorder {
        loop {
            let until_next = (self.minute.next().start() - self.clock.now())
                .to_std()
                .unwrap_or_default();
            tokio::select! {
                _ = stop.changed() => if *stop.borrow() { return self },
                _ = tokio::time::sleep(until_next) => {}
            }
            // Attribute the minute by the clock, not by our count of sleeps.
            if Minute::containing(&self.clock.now()) > self.minute {
                self.beat().await;
            }
        }
    }

    /// Records the minute in progress (or just closed) and writes what is due.
    pub async fn beat(&mut self) {
        let now = Totals::read(&self.counters);
        self.backlog.push(Heartbeat {
            prober: self.prober.clone(),
            minute: self.minute,
            scheduled: (now.scheduled - self.last.scheduled) as i64,
            started: (now.started - self.last.started) as i64,
            skipped: (now.skipped - self.last.skipped) as i64,
            finished: (now.finished - self.last.finished) as i64,
        });
        self.last = now;
        self.minute = Minute::containing(&self.clock.now());
        if self.backlog.len() > BACKLOG_LIMIT {
            let excess = self.backlog.len() - BACKLOG_LIMIT;
            self.backlog.drain(..excess);
        }
        match self.store.record_heartbeats(&self.backlog).await {
            Ok(()) => self.backlog.clear(),
            Err(e) => tracing::debug!(
                pending = self.backlog.len(),
                "heartbeat not written yet: {e:#}"
            ),
        }
    }
}
