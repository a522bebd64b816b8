//! UTC minutes, the unit every verdict is kept in.

use std::fmt;

use chrono::{DateTime, TimeZone, Utc};

/// One UTC minute, stored as whole minutes since the Unix epoch.
///
/// Integers rather than timestamps so that both databases store, compare and
/// index minutes identically and the SLA code counts them exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Minute(pub i64);

impl Minute {
    /// The minute in which `instant` falls (the attempt's start minute).
    pub fn containing<Tz: TimeZone>(instant: &DateTime<Tz>) -> Self {
        Minute(instant.timestamp().div_euclid(60))
    }

    /// The minute in which an instant given in Unix milliseconds falls,
    /// as the database stores attempts' starts.
    pub fn containing_ms(ms: i64) -> Self {
        Minute(ms.div_euclid(60_000))
    }

    /// The first minute that starts at or after `instant`.
    pub fn at_or_after<Tz: TimeZone>(instant: &DateTime<Tz>) -> Self {
        let seconds = instant.timestamp();
        let partial = seconds.rem_euclid(60) != 0 || instant.timestamp_subsec_nanos() != 0;
        Minute(seconds.div_euclid(60) + i64::from(partial))
    }

    /// The instant this minute starts.
    pub fn start(self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.0 * 60, 0).expect("minute within chrono's range")
    }

    /// The UTC hour this minute belongs to, as whole hours since the epoch.
    pub fn hour(self) -> i64 {
        self.0.div_euclid(60)
    }

    pub fn next(self) -> Self {
        Minute(self.0 + 1)
    }
}

impl fmt::Display for Minute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.start().format("%Y-%m-%dT%H:%MZ"))
    }
}

/// A half-open range of minutes `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinuteRange {
    pub start: Minute,
    pub end: Minute,
}

impl MinuteRange {
    /// The whole UTC hours inside (as hours since the epoch) and the
    /// partial-hour edges at either end, so that a read can take the hours
    /// from a roll-up and only the edges minute by minute.
    pub fn split_by_hours(self) -> (std::ops::Range<i64>, [MinuteRange; 2]) {
        let first_full_hour = (self.start.0 + 59).div_euclid(60);
        let end_full_hour = self.end.0.div_euclid(60);
        if first_full_hour >= end_full_hour {
            return (0..0, [self, MinuteRange::new(self.end, self.end)]);
        }
        (
            first_full_hour..end_full_hour,
            [
                MinuteRange::new(self.start, Minute(first_full_hour * 60)),
                MinuteRange::new(Minute(end_full_hour * 60), self.end),
            ],
        )
    }

    pub fn new(start: Minute, end: Minute) -> Self {
        Self {
            start,
            end: end.max(start),
        }
    }

    pub fn len(&self) -> i64 {
        self.end.0 - self.start.0
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, minute: Minute) -> bool {
        self.start <= minute && minute < self.end
    }

    pub fn intersect(&self, other: &MinuteRange) -> MinuteRange {
        MinuteRange::new(self.start.max(other.start), self.end.min(other.end))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hours_split_keeps_every_minute_once() {
        for (start, end) in [
            (0, 600),
            (30, 95),
            (61, 119),
            (59, 61),
            (-90, 150),
            (120, 120),
        ] {
            let range = super::MinuteRange::new(super::Minute(start), super::Minute(end));
            let (hours, edges) = range.split_by_hours();
            let covered = (hours.end - hours.start) * 60 + edges[0].len() + edges[1].len();
            assert_eq!(covered, range.len(), "{start}..{end}");
            assert!(
                edges
                    .iter()
                    .all(|e| e.is_empty() || (range.start <= e.start && e.end <= range.end))
            );
        }
    }

    use super::*;

    #[test]
    fn containing_floors_and_at_or_after_ceils() {
        let t = DateTime::parse_from_rfc3339("2026-03-17T00:00:05Z").unwrap();
        assert_eq!(
            Minute::containing(&t).start().to_rfc3339(),
            "2026-03-17T00:00:00+00:00"
        );
        assert_eq!(
            Minute::at_or_after(&t).start().to_rfc3339(),
            "2026-03-17T00:01:00+00:00"
        );
        let exact = DateTime::parse_from_rfc3339("2026-03-17T00:01:00Z").unwrap();
        assert_eq!(Minute::at_or_after(&exact), Minute::containing(&exact));
    }

    #[test]
    fn minutes_before_the_epoch_floor_downwards() {
        let t = DateTime::parse_from_rfc3339("1969-12-31T23:59:30Z").unwrap();
        assert_eq!(Minute::containing(&t), Minute(-1));
        assert_eq!(Minute(-1).hour(), -1);
    }
}
