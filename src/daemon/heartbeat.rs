//! The prober's heartbeat: at every minute boundary it records that it was
//! alive and what its scheduler did in the minute that just closed, so a
//! no-data minute reads as "prober down" (no heartbeat) or "prober up, no
//! conclusive attempt" (heartbeat with attempts that were inconclusive or
//! skipped).
//!
//! While the database is away, heartbeats wait in memory and are written
//! with the next one that gets through; a stop during an outage leaves them
//! in a small file beside the spool, read back at the next start, so an
//! outage's minutes keep their heartbeats.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::clock::Clock;
use crate::daemon::schedule::ScheduleCounters;
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

/// A heartbeat as one line of the backlog file.
#[derive(Serialize, Deserialize)]
struct BacklogLine {
    prober: String,
    /// Minutes since the Unix epoch (UTC).
    minute: i64,
    scheduled: i64,
    started: i64,
    skipped: i64,
    finished: i64,
}

pub struct HeartbeatRecorder {
    prober: String,
    counters: Arc<ScheduleCounters>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    last: Totals,
    minute: Minute,
    backlog: Vec<Heartbeat>,
    backlog_path: PathBuf,
    /// The backlog file holds heartbeats not yet in the database.
    backlog_on_disk: bool,
    /// When the stop signal was seen.
    stopped_at: Option<Instant>,
}

impl HeartbeatRecorder {
    /// Starts counting the current minute, with what an earlier run left in
    /// `backlog_path` (a line that cannot be read is skipped with a warning:
    /// heartbeats are diagnostics, and no figure depends on them).
    pub fn new(
        prober: String,
        counters: Arc<ScheduleCounters>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        backlog_path: PathBuf,
    ) -> HeartbeatRecorder {
        let minute = Minute::containing(&clock.now());
        let backlog = read_backlog(&backlog_path);
        HeartbeatRecorder {
            prober,
            last: Totals::read(&counters),
            counters,
            store,
            clock,
            minute,
            backlog_on_disk: backlog_path.exists(),
            backlog,
            backlog_path,
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
    /// away; what is not written goes to the backlog file.
    pub async fn finish(mut self, budget: std::time::Duration, database_away: bool) {
        let deadline = self.stopped_at.unwrap_or_else(Instant::now) + budget;
        self.close_minute();
        if !database_away {
            let _ = tokio::time::timeout_at(deadline, self.flush()).await;
        }
        if self.backlog.is_empty() {
            if self.backlog_on_disk {
                let _ = std::fs::remove_file(&self.backlog_path);
            }
            return;
        }
        match write_backlog(&self.backlog_path, &self.backlog) {
            Ok(()) => tracing::warn!(
                heartbeats = self.backlog.len(),
                file = %self.backlog_path.display(),
                "heartbeats not written at shutdown are kept for the next start"
            ),
            Err(e) => tracing::error!(
                heartbeats = self.backlog.len(),
                file = %self.backlog_path.display(),
                "heartbeats not written at shutdown are lost: {e}"
            ),
        }
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
            Ok(()) => {
                self.backlog.clear();
                if std::mem::take(&mut self.backlog_on_disk) {
                    let _ = std::fs::remove_file(&self.backlog_path);
                }
            }
            Err(e) => tracing::debug!(
                pending = self.backlog.len(),
                "heartbeat not written yet: {e:#}"
            ),
        }
    }
}

fn read_backlog(path: &std::path::Path) -> Vec<Heartbeat> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .filter_map(|(i, line)| match serde_json::from_str::<BacklogLine>(line) {
            Ok(b) => Some(Heartbeat {
                prober: b.prober,
                minute: Minute(b.minute),
                scheduled: b.scheduled,
                started: b.started,
                skipped: b.skipped,
                finished: b.finished,
            }),
            Err(e) => {
                tracing::warn!(file = %path.display(), line = i + 1, "skipping an unreadable heartbeat: {e}");
                None
            }
        })
        .collect()
}

/// Replaces the file at once (write beside it, fsync, rename), so a crash
/// leaves either the old backlog or the new one.
fn write_backlog(path: &std::path::Path, backlog: &[Heartbeat]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut text = String::new();
    for beat in backlog {
        let line = BacklogLine {
            prober: beat.prober.clone(),
            minute: beat.minute.0,
            scheduled: beat.scheduled,
            started: beat.started,
            skipped: beat.skipped,
            finished: beat.finished,
        };
        text.push_str(&serde_json::to_string(&line).map_err(std::io::Error::other)?);
        text.push('\n');
    }
    let partial = path.with_extension("jsonl.partial");
    let mut file = std::fs::File::create(&partial)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&partial, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backlog_written_at_stop_reads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("improbe-heartbeats-p.jsonl");
        let beats: Vec<Heartbeat> = (0..3)
            .map(|m| Heartbeat {
                prober: "p".into(),
                minute: Minute(29_000_000 + m),
                scheduled: 30 + m,
                started: 29,
                skipped: 1,
                finished: 28,
            })
            .collect();
        write_backlog(&path, &beats).unwrap();
        assert_eq!(read_backlog(&path), beats);
        std::fs::write(&path, "not json\n").unwrap();
        assert!(read_backlog(&path).is_empty());
        assert!(read_backlog(&dir.path().join("absent")).is_empty());
    }
}
