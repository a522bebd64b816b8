//! The append-only spool, the prober's one local journal: everything
//! measured that the database could not take waits here until it is
//! replayed. One JSON Lines record each: an attempt (the import format), or
//! a minute's heartbeat a stop could not write (`{"heartbeat": {...}}`).
//!
//! Records are appended with a plain `write` (they survive the process being
//! killed, since the kernel holds them) and the file is fsynced once per
//! writer tick (they survive a machine crash after that). Replay reads the
//! file oldest first; once every record is in the database the file is
//! truncated. Ingest is idempotent, so a replay cut short by a crash and
//! repeated after a restart stores nothing twice.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::attempt::Attempt;
use crate::attempt::jsonl;
use crate::minute::Minute;
use crate::store::Heartbeat;

/// One record of the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Attempt(Attempt),
    Heartbeat(Heartbeat),
}

/// A heartbeat's fields as the journal (and the heartbeat file of releases
/// before the journal held heartbeats) spells them.
#[derive(Serialize, Deserialize)]
pub struct HeartbeatFields {
    prober: String,
    /// Minutes since the Unix epoch (UTC).
    minute: i64,
    scheduled: i64,
    started: i64,
    skipped: i64,
    finished: i64,
}

impl From<&Heartbeat> for HeartbeatFields {
    fn from(beat: &Heartbeat) -> HeartbeatFields {
        HeartbeatFields {
            prober: beat.prober.clone(),
            minute: beat.minute.0,
            scheduled: beat.scheduled,
            started: beat.started,
            skipped: beat.skipped,
            finished: beat.finished,
        }
    }
}

impl From<HeartbeatFields> for Heartbeat {
    fn from(line: HeartbeatFields) -> Heartbeat {
        Heartbeat {
            prober: line.prober,
            minute: Minute(line.minute),
            scheduled: line.scheduled,
            started: line.started,
            skipped: line.skipped,
            finished: line.finished,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct HeartbeatRecord {
    heartbeat: HeartbeatFields,
}

/// How a heartbeat record begins: an attempt's never does.
const HEARTBEAT_START: &str = "{\"heartbeat\":";

fn heartbeat_line(beat: &Heartbeat) -> String {
    serde_json::to_string(&HeartbeatRecord {
        heartbeat: beat.into(),
    })
    .expect("a heartbeat serialises")
}

fn parse_line(number: usize, line: &str) -> Result<Record, String> {
    if line.starts_with(HEARTBEAT_START) {
        return serde_json::from_str::<HeartbeatRecord>(line)
            .map(|r| Record::Heartbeat(r.heartbeat.into()))
            .map_err(|e| e.to_string());
    }
    jsonl::parse_record(number, line)
        .map(Record::Attempt)
        .map_err(|e| e.message)
}

/// A spool file that cannot be used as it is.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error(
        "cannot use the spool file {path}: {source}; check that [prober] data_dir exists and is writable"
    )]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "spool file {path} line {line} is corrupt ({message}); it holds attempts not yet in the database: \
         fix or delete that line (`improbe import {path}` loads the others) and start again"
    )]
    Corrupt {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

pub struct Spool {
    path: PathBuf,
    file: File,
    /// Records in the file not yet replayed.
    pending: u64,
    /// Byte offset of the first record not yet replayed.
    replay_offset: u64,
    /// Lines before `replay_offset`, for error messages.
    replayed_lines: usize,
    /// Bytes in the file: only this writer changes it.
    len: u64,
    dirty: bool,
}

impl Spool {
    /// Opens (or creates) the spool and checks every record in it. A last
    /// line without its newline is a write the process did not finish before
    /// it died: it is cut off with a warning. Any other bad line is an error.
    pub fn open(path: &Path) -> Result<Spool, SpoolError> {
        let io_error = |source| SpoolError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(io_error)?;
        let mut pending = 0;
        let mut complete_bytes = 0u64;
        let mut reader = BufReader::new(&mut file);
        let mut line = String::new();
        let mut number = 0;
        loop {
            line.clear();
            let read = reader.read_line(&mut line).map_err(io_error)?;
            if read == 0 {
                break;
            }
            number += 1;
            if !line.ends_with('\n') {
                tracing::warn!(
                    spool = %path.display(),
                    line = number,
                    bytes = read,
                    "the spool ends in a record cut short by a crash; dropping that partial record"
                );
                break;
            }
            complete_bytes += read as u64;
            if line.trim().is_empty() {
                continue;
            }
            parse_line(number, line.trim_end()).map_err(|message| SpoolError::Corrupt {
                path: path.to_owned(),
                line: number,
                message,
            })?;
            pending += 1;
        }
        drop(reader);
        if file.metadata().map_err(io_error)?.len() != complete_bytes {
            file.set_len(complete_bytes).map_err(io_error)?;
        }
        if pending > 0 {
            tracing::warn!(spool = %path.display(), records = pending, "the spool holds what an earlier run measured; replaying it");
        }
        Ok(Spool {
            path: path.to_owned(),
            file,
            pending,
            replay_offset: 0,
            replayed_lines: 0,
            len: complete_bytes,
            dirty: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records waiting to be replayed.
    pub fn pending(&self) -> u64 {
        self.pending
    }

    /// Appends attempts; they are in the kernel's hands when this returns.
    pub fn append(&mut self, attempts: &[Attempt]) -> io::Result<()> {
        let lines = attempts.iter().map(jsonl::to_line);
        self.append_lines(lines)
    }

    /// Appends heartbeats, as [`Spool::append`] does attempts.
    pub fn append_heartbeats(&mut self, beats: &[Heartbeat]) -> io::Result<()> {
        let lines = beats.iter().map(heartbeat_line);
        self.append_lines(lines)
    }

    fn append_lines(&mut self, lines: impl Iterator<Item = String>) -> io::Result<()> {
        let mut text = String::new();
        let mut records = 0;
        for line in lines {
            text.push_str(&line);
            text.push('\n');
            records += 1;
        }
        if let Err(e) = self.file.write_all(text.as_bytes()) {
            // Never leave half a record behind: the next append would glue onto it.
            let _ = self.file.set_len(self.len);
            return Err(e);
        }
        self.len += text.len() as u64;
        self.pending += records;
        self.dirty = true;
        Ok(())
    }

    /// Makes appended records durable on disk.
    pub fn sync(&mut self) -> io::Result<()> {
        if self.dirty {
            self.file.sync_data()?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Up to `max` records from the oldest not yet replayed, and where the
    /// next ones start. Hand that back to [`Spool::replayed`] once they are
    /// in the database.
    pub fn next_chunk(&mut self, max: usize) -> Result<(Vec<Record>, ReplayMark), SpoolError> {
        let io_error = |source| SpoolError::Io {
            path: self.path.clone(),
            source,
        };
        let mut reader = BufReader::new(&self.file);
        (&self.file)
            .seek(SeekFrom::Start(self.replay_offset))
            .map_err(io_error)?;
        let mut chunk = Vec::new();
        let mut offset = self.replay_offset;
        let mut lines = self.replayed_lines;
        let mut line = String::new();
        while chunk.len() < max {
            line.clear();
            let read = reader.read_line(&mut line).map_err(io_error)?;
            if read == 0 || !line.ends_with('\n') {
                break;
            }
            offset += read as u64;
            lines += 1;
            if line.trim().is_empty() {
                continue;
            }
            let record =
                parse_line(lines, line.trim_end()).map_err(|message| SpoolError::Corrupt {
                    path: self.path.clone(),
                    line: lines,
                    message,
                })?;
            chunk.push(record);
        }
        Ok((chunk, ReplayMark { offset, lines }))
    }

    /// Notes that a chunk from [`Spool::next_chunk`] is in the database; when
    /// nothing is left the file is emptied.
    pub fn replayed(&mut self, mark: ReplayMark, records: usize) -> io::Result<()> {
        self.replay_offset = mark.offset;
        self.replayed_lines = mark.lines;
        self.pending = self.pending.saturating_sub(records as u64);
        if self.replay_offset >= self.len {
            self.file.set_len(0)?;
            self.len = 0;
            self.file.sync_data()?;
            self.replay_offset = 0;
            self.replayed_lines = 0;
            self.pending = 0;
        }
        Ok(())
    }
}

/// Where a replayed chunk ended.
#[derive(Debug, Clone, Copy)]
pub struct ReplayMark {
    offset: u64,
    lines: usize,
}

/// Removes the spool file if it is empty (a tidy data directory after a
/// clean stop).
pub fn remove_if_empty(path: &Path) {
    if fs::metadata(path).is_ok_and(|m| m.len() == 0) {
        let _ = fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attempt::{Kind, Outcome};
    use chrono::{TimeZone, Utc};

    fn attempt(second: u32) -> Attempt {
        Attempt {
            target: "t".into(),
            prober: "p".into(),
            kind: Kind::Login,
            started_at: Utc.with_ymd_and_hms(2026, 3, 17, 0, 0, second).unwrap(),
            latency_ms: Some(5),
            outcome: Outcome::Fail,
            http_status: Some(502),
            error_code: None,
            error: Some("bad gateway".into()),
            reason: None,
            delivery: None,
        }
    }

    fn records(attempts: &[Attempt]) -> Vec<Record> {
        attempts.iter().cloned().map(Record::Attempt).collect()
    }

    #[test]
    fn heartbeats_and_attempts_replay_from_one_journal_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.jsonl");
        let beat = Heartbeat {
            prober: "p".into(),
            minute: Minute(29_000_000),
            scheduled: 36,
            started: 35,
            skipped: 1,
            finished: 34,
        };
        let mut spool = Spool::open(&path).unwrap();
        spool.append(&[attempt(1)]).unwrap();
        spool
            .append_heartbeats(std::slice::from_ref(&beat))
            .unwrap();
        spool.append(&[attempt(2)]).unwrap();
        let mut reopened = Spool::open(&path).unwrap();
        assert_eq!(reopened.pending(), 3);
        assert_eq!(
            reopened.next_chunk(10).unwrap().0,
            [
                Record::Attempt(attempt(1)),
                Record::Heartbeat(beat),
                Record::Attempt(attempt(2))
            ]
        );
        // A heartbeat record that does not read is named like any other.
        fs::write(&path, "{\"heartbeat\": {\"prober\": 5}}\n").unwrap();
        let error = Spool::open(&path).err().unwrap().to_string();
        assert!(error.contains("line 1 is corrupt"), "{error}");
    }

    #[test]
    fn records_replay_in_order_and_the_file_empties() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.jsonl");
        let mut spool = Spool::open(&path).unwrap();
        spool.append(&[attempt(1), attempt(2), attempt(3)]).unwrap();
        spool.sync().unwrap();
        assert_eq!(spool.pending(), 3);

        let (first, mark) = spool.next_chunk(2).unwrap();
        assert_eq!(first, records(&[attempt(1), attempt(2)]));
        spool.replayed(mark, first.len()).unwrap();
        assert_eq!(spool.pending(), 1);
        spool.append(&[attempt(4)]).unwrap();

        let (rest, mark) = spool.next_chunk(10).unwrap();
        assert_eq!(rest, records(&[attempt(3), attempt(4)]));
        spool.replayed(mark, rest.len()).unwrap();
        assert_eq!(spool.pending(), 0);
        assert_eq!(fs::metadata(&path).unwrap().len(), 0);
    }

    #[test]
    fn a_reopened_spool_counts_what_an_earlier_run_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.jsonl");
        Spool::open(&path)
            .unwrap()
            .append(&[attempt(1), attempt(2)])
            .unwrap();
        let mut reopened = Spool::open(&path).unwrap();
        assert_eq!(reopened.pending(), 2);
        assert_eq!(reopened.next_chunk(10).unwrap().0.len(), 2);
    }

    #[test]
    fn a_record_cut_short_by_a_crash_is_dropped_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.jsonl");
        Spool::open(&path).unwrap().append(&[attempt(1)]).unwrap();
        let whole = fs::read_to_string(&path).unwrap();
        fs::write(&path, format!("{whole}{}", &whole[..20])).unwrap();

        let mut spool = Spool::open(&path).unwrap();
        assert_eq!(spool.pending(), 1);
        assert_eq!(fs::read_to_string(&path).unwrap(), whole);
        spool.append(&[attempt(2)]).unwrap();
        assert_eq!(
            spool.next_chunk(10).unwrap().0,
            records(&[attempt(1), attempt(2)])
        );
    }

    #[test]
    fn a_corrupt_line_names_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.jsonl");
        Spool::open(&path).unwrap().append(&[attempt(1)]).unwrap();
        let whole = fs::read_to_string(&path).unwrap();
        fs::write(&path, format!("{whole}{{\"target\": 5}}\n{whole}")).unwrap();
        let error = Spool::open(&path).err().unwrap().to_string();
        assert!(error.contains("line 2 is corrupt"), "{error}");
        assert!(error.contains("spool.jsonl"), "{error}");
        // Nothing was cut off: the user decides what to do with the file.
        assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 3);
    }
}
