//! Every minute of a range as a reader sees it, beside the accounting that
//! reads it: stored counts and exclusion windows, each minute decided by
//! the one verdict rule (`verdict::decide`).

use super::ExcludedMinutes;
use crate::minute::Minute;
use crate::verdict::{OutcomeCounts, Verdict, decide};

/// Every minute of a range as a reader sees it: the counts stored for the
/// minutes that hold attempts, and the exclusion windows. Minutes without a
/// row are decided by [`decide`] like any other (`no_data`, or `excluded`
/// inside a window), so the report, `/metrics` and the demo agree.
#[derive(Debug, Default)]
pub struct MinuteBook {
    counts: std::collections::HashMap<Minute, OutcomeCounts>,
    excluded: ExcludedMinutes,
}

impl MinuteBook {
    pub fn new(
        stored: impl IntoIterator<Item = (Minute, OutcomeCounts)>,
        excluded: ExcludedMinutes,
    ) -> Self {
        Self {
            counts: stored.into_iter().collect(),
            excluded,
        }
    }

    /// The attempts stored for a minute (none for a minute without a row).
    pub fn counts(&self, minute: Minute) -> OutcomeCounts {
        self.counts.get(&minute).copied().unwrap_or_default()
    }

    pub fn verdict(&self, minute: Minute) -> Verdict {
        decide(self.counts(minute), self.excluded.contains(minute))
    }

    pub fn excluded(&self) -> &ExcludedMinutes {
        &self.excluded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_book_decides_minutes_without_a_row_like_any_other() {
        use crate::sla::ExclusionWindow;
        let window = ExclusionWindow {
            start: "2026-04-02T02:00:00Z".parse().unwrap(),
            end: "2026-04-02T02:02:00Z".parse().unwrap(),
        };
        let inside = Minute::containing(&window.start);
        let after = inside.next().next();
        let failing = OutcomeCounts {
            fail: 3,
            ..OutcomeCounts::default()
        };
        let book = MinuteBook::new(
            [(inside, failing), (after, failing)],
            ExcludedMinutes::new([window]),
        );
        assert_eq!(book.verdict(inside), Verdict::Excluded);
        assert_eq!(
            book.verdict(inside.next()),
            Verdict::Excluded,
            "no row, in the window"
        );
        assert_eq!(book.verdict(after), Verdict::Failure);
        assert_eq!(
            book.verdict(after.next()),
            Verdict::NoData,
            "no row, no window"
        );
        assert_eq!(book.counts(after.next()), OutcomeCounts::default());
    }
}
