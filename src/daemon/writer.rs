//! The batching writer: drains probe results into memory at once and writes
//! them in batches, so probes never wait on the database.
//!
//! A batch the database does not take goes to the append-only spool
//! (`spool.rs`) and is replayed, oldest first, before anything newer is
//! written; while the spool is not empty newer batches queue behind it. Only
//! if the spool itself cannot be written do attempts stay in memory, up to
//! [`MEMORY_LIMIT`]. Ingest is idempotent, so a retry or replay after an
//! ambiguous failure never counts an attempt twice. A storage fault is only
//! ever a write error: it never turns into an attempt or a verdict.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::attempt::Attempt;
use crate::clock::Clock;
use crate::daemon::spool::{Record, Spool};
use crate::store::{Heartbeat, ProberMark, Store, WriteErrorReason};

/// Buffered attempts are written at least this often.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// A buffer this large is written at once.
pub const FLUSH_BATCH: usize = 500;
/// Spooled attempts replayed per transaction.
pub const REPLAY_CHUNK: usize = 1_000;
/// Capacity of the channel from the probes to the writer.
pub const CHANNEL_CAPACITY: usize = 4_096;
/// A write that has not finished by then counts as failed (its attempts are
/// spooled; if it did commit after all, the replay skips them).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(20);
/// After the stop signal, no database write runs past this: what is not
/// written by then goes to the spool (fsynced) for the next start, so a stop
/// takes well under the 10 s after which `docker stop` kills, whatever the
/// database does (refusing, or hanging on a half-open connection). With the
/// database already failing at the stop, nothing is tried at all.
pub const STOP_WRITE_DEADLINE: Duration = Duration::from_secs(6);
/// Attempts kept in memory when neither the database nor the spool takes
/// them (about 300 bytes each); past this the oldest are dropped, loudly.
pub const MEMORY_LIMIT: usize = 100_000;

/// What the writer has done, for metrics and tests.
#[derive(Debug, Default)]
pub struct WriterCounters {
    /// Attempts in memory, not yet in the database or the spool.
    pub buffered: AtomicU64,
    /// Attempts in the spool, not yet replayed.
    pub spooled: AtomicU64,
    pub write_errors: AtomicU64,
    /// Of `write_errors`, by `WriteErrorReason` (in the order of its `ALL`).
    pub write_errors_by_reason: [AtomicU64; crate::store::WriteErrorReason::ALL.len()],
    pub spool_errors: AtomicU64,
    /// Attempts given up because memory was full and the spool failing.
    pub dropped: AtomicU64,
    /// The last database write failed (cleared by the next that succeeds).
    pub database_failing: AtomicBool,
    /// At the last successful write, how long its oldest attempt had waited
    /// since it finished (milliseconds): `improbe_write_lag_seconds`.
    pub write_lag_ms: AtomicU64,
}

/// Who writes, for the watermark it records with its attempts.
#[derive(Clone)]
pub struct WriterIdentity {
    pub prober: String,
    pub clock: Arc<dyn Clock>,
    /// No attempt is still running this long after it started: the longest
    /// target timeout plus a margin for handing it to the writer.
    pub in_flight_bound: Duration,
}

/// What the writer is handed.
pub struct Inbox {
    /// Every attempt, as it finishes; closed once every probe loop ended.
    pub attempts: mpsc::Receiver<Attempt>,
    /// At the stop, the heartbeats the heartbeat recorder could not write.
    pub unwritten_heartbeats: oneshot::Receiver<Vec<Heartbeat>>,
}

/// An attempt ends within its target's timeout; this covers the hand-over.
pub const IN_FLIGHT_MARGIN: Duration = Duration::from_secs(1);

struct Writer {
    store: Arc<dyn Store>,
    identity: WriterIdentity,
    spool: Spool,
    receiver: mpsc::Receiver<Attempt>,
    /// False until the database is migrated (it may be down at start).
    ready: watch::Receiver<bool>,
    /// Attempts received and not yet written anywhere, oldest first.
    buffer: VecDeque<Attempt>,
    closed: bool,
    /// The last spool write failed (errors are logged once per streak).
    spool_failing: bool,
    /// Turns true when the daemon stops.
    stop: watch::Receiver<bool>,
    /// Set by the stop: no database write runs past it.
    write_deadline: Option<Instant>,
    counters: Arc<WriterCounters>,
}

/// Runs until the channel closes (every probe loop has ended), then writes
/// what is left; what the database does not take by [`STOP_WRITE_DEADLINE`]
/// stays in the spool, with the heartbeats the stop could not write
/// ([`Inbox::unwritten_heartbeats`]).
pub async fn run(
    store: Arc<dyn Store>,
    identity: WriterIdentity,
    spool: Spool,
    inbox: Inbox,
    ready: watch::Receiver<bool>,
    stop: watch::Receiver<bool>,
    counters: Arc<WriterCounters>,
) {
    counters.spooled.store(spool.pending(), Ordering::Relaxed);
    let Inbox {
        attempts: receiver,
        unwritten_heartbeats,
    } = inbox;
    let mut writer = Writer {
        store,
        identity,
        spool,
        receiver,
        ready,
        buffer: VecDeque::new(),
        closed: false,
        spool_failing: false,
        stop,
        write_deadline: None,
        counters,
    };
    writer.note_stop();
    let mut ticker = tokio::time::interval(FLUSH_INTERVAL);
    while !writer.closed {
        tokio::select! {
            received = writer.receiver.recv() => match received {
                Some(attempt) => {
                    writer.buffer.push_back(attempt);
                    if writer.spool.pending() > 0 {
                        // The database is behind: straight to disk, so a
                        // crash now loses nothing already measured.
                        writer.spill();
                    } else if writer.buffer.len() >= FLUSH_BATCH {
                        writer.drain().await;
                    }
                }
                None => writer.closed = true,
            },
            _ = ticker.tick() => {
                writer.drain().await;
                writer.sync_spool();
            }
            _ = writer.stop.changed(), if writer.write_deadline.is_none() => writer.note_stop(),
        }
        writer.publish();
    }
    let database_away = writer.database_failing() || !*writer.ready.borrow();
    if !database_away {
        writer.drain().await;
        writer.publish();
    }
    let heartbeats = unwritten_heartbeats.await.unwrap_or_default();
    if !heartbeats.is_empty() {
        match writer.spool.append_heartbeats(&heartbeats) {
            Ok(()) => tracing::warn!(
                heartbeats = heartbeats.len(),
                "heartbeats not written at shutdown are in the spool for the next start"
            ),
            Err(e) => tracing::error!(
                heartbeats = heartbeats.len(),
                "heartbeats not written at shutdown are lost: cannot write the spool: {e}"
            ),
        }
    }
    if !database_away && writer.buffer.is_empty() && writer.spool.pending() == 0 {
        crate::daemon::spool::remove_if_empty(writer.spool.path());
        return;
    }
    writer.spill();
    writer.sync_spool();
    writer.publish();
    tracing::warn!(
        spooled = writer.spool.pending(),
        in_memory = writer.buffer.len(),
        spool = %writer.spool.path().display(),
        "the database is not taking writes at shutdown; everything measured is in the spool and is replayed on the next start"
    );
}

impl Writer {
    /// Replays the spool, then writes the buffer. Whatever the database does
    /// not take ends up in the spool, behind what is already there.
    async fn drain(&mut self) {
        if !*self.ready.borrow() || self.out_of_time() || self.stopping_with_database_away() {
            self.spill();
            return;
        }
        while self.spool.pending() > 0 {
            if self.out_of_time() {
                self.spill();
                return;
            }
            let (chunk, mark) = match self.spool.next_chunk(REPLAY_CHUNK) {
                Ok(next) => next,
                Err(e) => {
                    self.counters.spool_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!("cannot read the spool: {e}");
                    self.spill();
                    return;
                }
            };
            if chunk.is_empty() {
                break;
            }
            let (mut attempts, mut heartbeats) = (Vec::new(), Vec::new());
            for record in &chunk {
                match record {
                    Record::Attempt(attempt) => attempts.push(attempt.clone()),
                    Record::Heartbeat(beat) => heartbeats.push(beat.clone()),
                }
            }
            if !self.write(&attempts, None).await || !self.write_heartbeats(&heartbeats).await {
                self.spill();
                return;
            }
            if let Err(e) = self.spool.replayed(mark, chunk.len()) {
                self.counters.spool_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(spool = %self.spool.path().display(), "cannot truncate the replayed spool: {e}");
            }
            tracing::info!(
                replayed = chunk.len(),
                still_spooled = self.spool.pending(),
                "replayed spooled attempts into the database"
            );
            self.publish();
        }
        // Everything that finished by now is in the buffer: once it is
        // written, the watermark can say so (docs/many-regions.md).
        while let Ok(attempt) = self.receiver.try_recv() {
            self.buffer.push_back(attempt);
        }
        let mut mark = Some(self.watermark());
        let mut before_mark = self.buffer.len();
        while !self.buffer.is_empty() || mark.is_some() {
            if self.out_of_time() {
                self.spill();
                return;
            }
            let batch: Vec<Attempt> = {
                let take = self.buffer.len().min(FLUSH_BATCH);
                self.buffer.range(..take).cloned().collect()
            };
            before_mark = before_mark.saturating_sub(batch.len());
            let watermark = if before_mark == 0 { mark.take() } else { None };
            if !self.write(&batch, watermark.as_ref()).await {
                self.spill();
                return;
            }
            self.buffer.drain(..batch.len());
        }
    }

    /// Replayed heartbeats. They add to what the database holds for their
    /// minute (a stop splits a minute in two), so unlike attempts a chunk
    /// written twice, after a crash between the write and the spool's
    /// truncation, counts them twice: diagnostics only, no figure reads
    /// them.
    async fn write_heartbeats(&mut self, beats: &[Heartbeat]) -> bool {
        if beats.is_empty() {
            return true;
        }
        let limit = self
            .write_deadline
            .unwrap_or_else(|| Instant::now() + WRITE_TIMEOUT);
        match tokio::time::timeout_at(limit, self.store.record_heartbeats(beats)).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::debug!("spooled heartbeats not written yet: {e:#}");
                false
            }
            Err(_) => false,
        }
    }

    /// The watermark true now: every attempt that started before it has
    /// ended, and so has reached the writer.
    fn watermark(&self) -> ProberMark {
        let now = self.identity.clock.now();
        let bound = chrono::Duration::from_std(self.identity.in_flight_bound)
            .unwrap_or(chrono::Duration::MAX);
        ProberMark {
            prober: self.identity.prober.clone(),
            complete_until: now.checked_sub_signed(bound).unwrap_or(now),
            reported_at: now,
        }
    }

    /// One ingest; attempts keep arriving into the buffer meanwhile. It is
    /// given up after [`WRITE_TIMEOUT`], or at the stop's deadline.
    async fn write(&mut self, batch: &[Attempt], watermark: Option<&ProberMark>) -> bool {
        if batch.is_empty() && watermark.is_none() {
            return true;
        }
        let store = self.store.clone();
        let ingest = async move { store.store_attempts(batch, watermark).await };
        tokio::pin!(ingest);
        let give_up_at = Instant::now() + WRITE_TIMEOUT;
        let limit = |deadline: Option<Instant>| deadline.map_or(give_up_at, |d| d.min(give_up_at));
        let timer = tokio::time::sleep_until(limit(self.write_deadline));
        tokio::pin!(timer);
        let result = loop {
            tokio::select! {
                result = &mut ingest => break Some(result),
                _ = &mut timer => break None,
                received = self.receiver.recv(), if !self.closed => match received {
                    Some(attempt) => {
                        self.buffer.push_back(attempt);
                        // Replaying the spool: newer attempts belong behind
                        // it on disk at once, not in memory for as long as
                        // the database takes to fail.
                        if self.spool.pending() > 0 {
                            self.spill();
                        }
                    }
                    None => self.closed = true,
                },
                _ = self.stop.changed(), if self.write_deadline.is_none() => {
                    self.note_stop();
                    if self.database_failing() {
                        // Retrying a database that already failed: a stop
                        // does not wait for the retry.
                        break None;
                    }
                    timer.as_mut().reset(limit(self.write_deadline));
                }
            }
        };
        tracing::trace!(
            attempts = batch.len(),
            elapsed_ms = (Instant::now() + WRITE_TIMEOUT - give_up_at).as_millis() as u64,
            "write"
        );
        let (error, reason) = match result {
            Some(Ok(_)) => {
                self.set_database_failing(false);
                self.note_lag(batch);
                return true;
            }
            Some(Err(e)) => (format!("{e:#}"), e.write_error_reason()),
            None if self.write_deadline.is_some() => (
                "given up: the daemon is stopping".to_owned(),
                WriteErrorReason::Timeout,
            ),
            None => (
                format!("no answer within {}s", WRITE_TIMEOUT.as_secs()),
                WriteErrorReason::Timeout,
            ),
        };
        self.set_database_failing(true);
        let first = self.counters.write_errors.fetch_add(1, Ordering::Relaxed) == 0;
        let index = WriteErrorReason::ALL
            .iter()
            .position(|r| *r == reason)
            .expect("listed");
        let first_of_reason =
            self.counters.write_errors_by_reason[index].fetch_add(1, Ordering::Relaxed) == 0;
        if reason == WriteErrorReason::DiskFull && (first_of_reason || self.spool.pending() == 0) {
            tracing::error!(
                attempts = batch.len(),
                spool = %self.spool.path().display(),
                "the database's disk is full: attempts wait in memory (up to {MEMORY_LIMIT}) and in the spool, \
                 and are written when space returns; free space on the database's volume: {error}"
            );
        } else if first || self.spool.pending() == 0 {
            tracing::error!(
                attempts = batch.len(),
                spool = %self.spool.path().display(),
                "database write failed; attempts go to the spool and are replayed when it is back: {error}"
            );
        } else {
            tracing::debug!("database write failed again: {error}");
        }
        false
    }

    /// How long the oldest attempt of a batch just written waited after it
    /// ended (a replayed spool shows as the outage's length).
    fn note_lag(&self, batch: &[Attempt]) {
        let Some(oldest_end) = batch
            .iter()
            .map(|a| a.started_at_ms() + a.latency_ms.unwrap_or_default())
            .min()
        else {
            return;
        };
        let now = self.identity.clock.now().timestamp_millis();
        self.counters.write_lag_ms.store(
            now.saturating_sub(oldest_end).max(0) as u64,
            Ordering::Relaxed,
        );
    }

    /// Starts the stop's write deadline once the daemon is stopping (or its
    /// stop signal is gone).
    fn note_stop(&mut self) {
        let stopping = self.stop.has_changed().is_err() || *self.stop.borrow();
        if stopping && self.write_deadline.is_none() {
            self.write_deadline = Some(Instant::now() + STOP_WRITE_DEADLINE);
        }
    }

    /// The last database write failed: at a stop, nothing more is tried.
    fn database_failing(&self) -> bool {
        self.counters.database_failing.load(Ordering::Relaxed)
    }

    fn set_database_failing(&self, failing: bool) {
        self.counters
            .database_failing
            .store(failing, Ordering::Relaxed);
    }

    /// Stopping, and the database failed its last write: not worth a retry.
    fn stopping_with_database_away(&self) -> bool {
        self.write_deadline.is_some() && self.database_failing()
    }

    fn out_of_time(&self) -> bool {
        self.write_deadline
            .is_some_and(|deadline| Instant::now() >= deadline)
    }

    fn sync_spool(&mut self) {
        if let Err(e) = self.spool.sync() {
            self.counters.spool_errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!(spool = %self.spool.path().display(), "cannot fsync the spool: {e}");
        }
    }

    /// Moves the buffer to the spool (fsynced on the next tick); if the
    /// spool fails too, keeps it in memory within [`MEMORY_LIMIT`].
    fn spill(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        match self.spool.append(self.buffer.make_contiguous()) {
            Ok(()) => {
                self.buffer.clear();
                if std::mem::take(&mut self.spool_failing) {
                    tracing::info!("the spool takes attempts again");
                }
            }
            Err(e) => {
                self.counters.spool_errors.fetch_add(1, Ordering::Relaxed);
                if !std::mem::replace(&mut self.spool_failing, true) {
                    tracing::error!(
                        spool = %self.spool.path().display(),
                        in_memory = self.buffer.len(),
                        "cannot write the spool either; attempts stay in memory: {e}"
                    );
                }
                let excess = self.buffer.len().saturating_sub(MEMORY_LIMIT);
                if excess > 0 {
                    self.buffer.drain(..excess);
                    self.counters
                        .dropped
                        .fetch_add(excess as u64, Ordering::Relaxed);
                    tracing::error!(
                        dropped = excess,
                        "memory buffer full with the database and the spool failing; the oldest attempts were dropped"
                    );
                }
            }
        }
    }

    fn publish(&self) {
        self.counters
            .buffered
            .store(self.buffer.len() as u64, Ordering::Relaxed);
        self.counters
            .spooled
            .store(self.spool.pending(), Ordering::Relaxed);
    }
}
