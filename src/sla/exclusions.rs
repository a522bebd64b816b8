//! Exclusion windows as minutes: a minute is excluded when it overlaps a window.

use chrono::{DateTime, Utc};

use crate::minute::{Minute, MinuteRange};

/// A declared window during which downtime does not count (docs/sla.md, exclusions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExclusionWindow {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl ExclusionWindow {
    /// Every minute that overlaps `[start, end)`, partially or wholly.
    pub fn minutes(&self) -> MinuteRange {
        MinuteRange::new(
            Minute::containing(&self.start),
            Minute::at_or_after(&self.end),
        )
    }
}

/// Minute ranges of several windows, merged so that overlaps count once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExcludedMinutes {
    merged: Vec<MinuteRange>,
}

impl ExcludedMinutes {
    pub fn new(windows: impl IntoIterator<Item = ExclusionWindow>) -> Self {
        let mut ranges: Vec<MinuteRange> = windows
            .into_iter()
            .map(|w| w.minutes())
            .filter(|r| !r.is_empty())
            .collect();
        ranges.sort_by_key(|r| r.start);
        let mut merged: Vec<MinuteRange> = Vec::with_capacity(ranges.len());
        for range in ranges {
            match merged.last_mut() {
                Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
                _ => merged.push(range),
            }
        }
        Self { merged }
    }

    pub fn contains(&self, minute: Minute) -> bool {
        let after = self.merged.partition_point(|r| r.start <= minute);
        after > 0 && self.merged[after - 1].contains(minute)
    }

    /// How many minutes of `range` are excluded.
    pub fn count_within(&self, range: MinuteRange) -> i64 {
        self.merged.iter().map(|r| r.intersect(&range).len()).sum()
    }

    /// Whether any minute of `range` is excluded (a measured interval that
    /// overlaps a window is excluded whole).
    pub fn overlaps(&self, range: MinuteRange) -> bool {
        self.count_within(range) > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(start: &str, end: &str) -> ExclusionWindow {
        ExclusionWindow {
            start: start.parse().unwrap(),
            end: end.parse().unwrap(),
        }
    }

    #[test]
    fn partial_minutes_count_as_overlapping() {
        let w = window("2026-04-01T18:00:30Z", "2026-04-01T18:02:01Z");
        // 18:00, 18:01 and 18:02 all overlap the window.
        assert_eq!(w.minutes().len(), 3);
        let exact = window("2026-04-01T18:00:00Z", "2026-04-01T20:00:00Z");
        assert_eq!(exact.minutes().len(), 120);
    }

    #[test]
    fn overlapping_windows_count_once_and_clip_to_the_range() {
        let excluded = ExcludedMinutes::new([
            window("2026-04-01T18:00:00Z", "2026-04-01T20:00:00Z"),
            window("2026-04-01T19:00:00Z", "2026-04-01T21:00:00Z"),
            window("2026-04-02T00:00:00Z", "2026-04-02T00:10:00Z"),
        ]);
        let day = MinuteRange::new(
            Minute::containing(&"2026-04-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap()),
            Minute::containing(&"2026-04-02T00:05:00Z".parse::<DateTime<Utc>>().unwrap()),
        );
        assert_eq!(excluded.count_within(day), 180 + 5);
        let inside = Minute::containing(&"2026-04-01T20:59:00Z".parse::<DateTime<Utc>>().unwrap());
        assert!(excluded.contains(inside));
        assert!(!excluded.contains(inside.next()));
    }
}
