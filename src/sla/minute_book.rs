//! Every minute of a range as a reader sees it, beside the accounting that
//! reads it: stored counts and exclusion windows, each minute decided by
//! the one verdict rule (`verdict::decide`).

use super::ExcludedMinutes;
use super::contract::{Contract, IntervalCounts};
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

    /// The verdict of the contract's measured interval that holds `minute`,
    /// decided like the period's figures ([`Contract::interval_verdict`]
    /// over the interval's summed counts): what the report's incidents, day
    /// table and minute strips show, so they add up to the figures. The book
    /// must hold the interval's every minute (a period or an hour does).
    pub fn interval_verdict(&self, contract: &Contract, minute: Minute) -> Verdict {
        if contract.decides_per_minute() {
            return self.verdict(minute);
        }
        let interval = contract.interval_of(minute);
        let mut sum = IntervalCounts::default();
        for m in interval.start.0..interval.end.0 {
            sum.add(self.counts(Minute(m)).into());
        }
        contract.interval_verdict(sum, self.excluded.overlaps(interval))
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

    /// Every minute shows its interval's verdict, and the intervals these
    /// make up are exactly those the period's figures count.
    #[test]
    fn a_minute_shows_its_intervals_verdict_as_the_figures_count_it() {
        use crate::minute::MinuteRange;
        use crate::sla::contract::{DownRule, Period};
        let contract = Contract {
            period: Period::CalendarMonth,
            interval_minutes: 5,
            down_when: DownRule::ErrorRate {
                above_percent: 5.into(),
            },
            ..Contract::tencent_im()
        };
        let start = Minute(29_000_000);
        let counts = |ok, fail| OutcomeCounts {
            ok,
            fail,
            ..OutcomeCounts::default()
        };
        let stored = [
            (start, counts(19, 0)),
            (Minute(start.0 + 1), counts(0, 2)), // 2 of 21 failed: down
            (Minute(start.0 + 5), counts(40, 2)), // 2 of 42: available
            (Minute(start.0 + 12), counts(0, 0)), // inconclusive only: no data
        ];
        let book = MinuteBook::new(stored, ExcludedMinutes::default());
        let verdicts: Vec<Verdict> = (start.0..start.0 + 15)
            .map(|m| book.interval_verdict(&contract, Minute(m)))
            .collect();
        assert!(
            verdicts[..5].iter().all(|v| *v == Verdict::Failure),
            "{verdicts:?}"
        );
        assert!(
            verdicts[5..10].iter().all(|v| *v == Verdict::Available),
            "{verdicts:?}"
        );
        assert!(
            verdicts[10..].iter().all(|v| *v == Verdict::NoData),
            "{verdicts:?}"
        );
        let observed = contract.observe(
            MinuteRange::new(start, Minute(start.0 + 15)),
            stored.map(|(m, c)| (m, c.into())),
            &ExcludedMinutes::default(),
        );
        assert_eq!((observed.failure, observed.available), (1, 1));
    }
}
