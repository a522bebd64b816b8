//! The prober's heartbeat: at every minute boundary it records that it was
//! alive and what its scheduler did in the minute that just closed, so a
//! no-data minute reads as "prober down" (no heartbeat) or "prober up, no
//! conclusive attempt" (heartbeat with attempts that were inconclusive or
//! skipped).
//!
//! While the database is away, heartbeats wait in memory and are written
//! with the next one that gets through; a stop during an outage hands them
//! to the writer, which keeps them in the spool with the attempts (the one
//! local journal, `spool.rs`) and replays them at the next start, so an
//! outage's minutes keep their heartbeats.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::clock::Clock;
use crate::daemon::schedule::ScheduleCounters;
use crate::daemon::spool::HeartbeatFields;
use crate::minute::Minute;
use crate::store::{Heartbeat, Store};

/// Heartbeats kept while the database is down: a week of minutes (about
/// 100 bytes each).
const BACKLOG_LIMIT: usize = 7 * 1_440;

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
    /// Heartbeats not yet in the database, oldest first.
    backlog: Vec<Heartbeat>,
    /// When the stop signal was seen.
    stopped_at: Option<Instant>,
}

impl HeartbeatRecorder {
    /// Starts counting the current minute.
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
            stopped_at: None,
        }
    }

    /// Beats at every minute boundary until `stop`; returns itself so the
    /// caller can record the last, partial minute once probing has ended.
    /// A write the database holds up never delays the stop.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) -> HeartbeatRecorder {
        loop {
            let until_next = (self.minute.next().start() - self.clock.now())
                .to_std()
                .unwrap_or_default();
            tokio::select! {
                _ = stop.changed() => if *stop.borrow() { break },
                _ = tokio::time::sleep(until_next) => {}
            }
            // Attribute the minute by the clock, not by our count of sleeps.
            if Minute::containing(&self.clock.now()) > self.minute {
                self.close_minute();
                tokio::select! {
                    _ = self.flush() => {}
                    _ = stop.changed() => if *stop.borrow() { break },
                }
            }
        }
        self.stopped_at = Some(Instant::now());
        self
    }

    /// Records the minute in progress and writes everything due, giving up
    /// `budget` after the stop, or at once when the database is known to be
    /// away. Returns what is not written, for the spool.
    pub async fn finish(
        mut self,
        budget: std::time::Duration,
        database_away: bool,
    ) -> Vec<Heartbeat> {
        let deadline = self.stopped_at.unwrap_or_else(Instant::now) + budget;
        self.close_minute();
        if !database_away {
            let _ = tokio::time::timeout_at(deadline, self.flush()).await;
        }
        self.backlog
    }

    /// Closes the minute in progress (or just closed) into the backlog.
    fn close_minute(&mut self) {
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
    }

    /// Writes the backlog; kept for the next try when the database fails.
    async fn flush(&mut self) {
        match self.store.record_heartbeats(&self.backlog).await {
            Ok(()) => self.backlog.clear(),
            Err(e) => tracing::debug!(
                pending = self.backlog.len(),
                "heartbeat not written yet: {e:#}"
            ),
        }
    }
}

/// Heartbeats a release before the journal held them left in their own
/// file at a stop, taken out of it (the file is removed) to go into the
/// spool. A line that cannot be read is skipped with a warning: heartbeats
/// are diagnostics, and no figure depends on them.
pub fn take_earlier_backlog(path: &Path) -> Vec<Heartbeat> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let beats = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .filter_map(|(i, line)| match serde_json::from_str::<HeartbeatFields>(line) {
            Ok(fields) => Some(Heartbeat::from(fields)),
            Err(e) => {
                tracing::warn!(file = %path.display(), line = i + 1, "skipping an unreadable heartbeat: {e}");
                None
            }
        })
        .collect();
    let _ = std::fs::remove_file(path);
    beats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_earlier_releases_heartbeat_file_is_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("improbe-heartbeats-p.jsonl");
        std::fs::write(
            &path,
            "{\"prober\":\"p\",\"minute\":29000000,\"scheduled\":36,\"started\":35,\"skipped\":1,\"finished\":34}\nnot json\n",
        )
        .unwrap();
        let beats = take_earlier_backlog(&path);
        assert_eq!(beats.len(), 1);
        assert_eq!(
            (beats[0].minute, beats[0].finished),
            (Minute(29_000_000), 34)
        );
        assert!(!path.exists());
        assert!(take_earlier_backlog(&path).is_empty());
    }
}
