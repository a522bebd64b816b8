//! The SLA engine: pure, clock-free arithmetic over minutes (SLA.md).
//!
//! Nothing here reads a clock or a database: callers pass `now` and the
//! observed minute counts, so every figure is reproducible in a test.

pub mod claim;
pub mod exclusions;
pub mod months;
pub mod tiers;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

pub use claim::{BusinessCalendar, ClaimStatus, ClaimWindow};
pub use exclusions::{ExcludedMinutes, ExclusionWindow};
pub use months::{ServiceCalendar, ServiceMonth};

use crate::minute::{Minute, MinuteRange};
use crate::verdict::Verdict;

/// The contract terms of one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaTerms {
    pub calendar: ServiceCalendar,
    pub business_days: BusinessCalendar,
    /// The fee actually consumed in a month, without vouchers or discounts.
    pub monthly_fee: Decimal,
    pub currency: String,
}

/// Minute verdicts observed in one Service Month, outside exclusion windows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ObservedMinutes {
    pub available: i64,
    pub failure: i64,
}

impl ObservedMinutes {
    /// Counts `n` minutes of a verdict (negative `n` takes them away); only
    /// available and failure minutes are counted, the rest are derived.
    pub fn add(&mut self, verdict: Verdict, n: i64) {
        match verdict {
            Verdict::Available => self.available += n,
            Verdict::Failure => self.failure += n,
            Verdict::NoData | Verdict::Excluded => {}
        }
    }

    pub fn is_zero(&self) -> bool {
        self.available == 0 && self.failure == 0
    }
}

/// Every figure of one target's Service Month, as `improbe sla` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthStatement {
    pub target: String,
    pub month: ServiceMonth,
    pub total_minutes: i64,
    pub available_minutes: i64,
    pub failure_minutes: i64,
    pub excluded_minutes: i64,
    pub no_data_minutes: i64,
    pub availability_percent: String,
    pub meets_commitment: bool,
    pub credit_percent: u32,
    pub credit_amount: Decimal,
    pub currency: String,
    pub claim: ClaimWindow,
    pub complete: bool,
    /// Share of the elapsed, non-excluded minutes that had a conclusive
    /// verdict, in hundredths of a percent; `None` before the month starts.
    pub coverage_basis_points: Option<i64>,
}

impl MonthStatement {
    pub fn compute(
        target: &str,
        terms: &SlaTerms,
        month: ServiceMonth,
        observed: ObservedMinutes,
        excluded: &ExcludedMinutes,
        now: DateTime<Utc>,
    ) -> Self {
        let minutes = month.minutes();
        let total_minutes = minutes.len();
        let excluded_minutes = excluded.count_within(minutes);
        let no_data_minutes =
            (total_minutes - excluded_minutes - observed.available - observed.failure).max(0);
        let credit_percent = tiers::credit_percent(observed.failure, total_minutes);

        let elapsed = MinuteRange::new(minutes.start, minutes.end.min(Minute::containing(&now)));
        let watchable = elapsed.len() - excluded.count_within(elapsed);
        let coverage_basis_points = (watchable > 0)
            .then(|| ((observed.available + observed.failure) * 10_000 / watchable).min(10_000));

        Self {
            target: target.to_owned(),
            total_minutes,
            available_minutes: observed.available,
            failure_minutes: observed.failure,
            excluded_minutes,
            no_data_minutes,
            availability_percent: tiers::availability_percent(observed.failure, total_minutes),
            meets_commitment: tiers::meets_commitment(observed.failure, total_minutes),
            credit_percent,
            credit_amount: tiers::credit_amount(terms.monthly_fee, credit_percent),
            currency: terms.currency.clone(),
            claim: ClaimWindow::for_month(
                month.last_day,
                terms.calendar.timezone,
                &terms.business_days,
            ),
            complete: month.is_complete(now),
            coverage_basis_points,
            month,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms() -> SlaTerms {
        SlaTerms {
            calendar: ServiceCalendar::new(
                "2026-03-17".parse().unwrap(),
                "Asia/Shanghai".parse().unwrap(),
            ),
            business_days: BusinessCalendar::default(),
            monthly_fee: "1200.00".parse().unwrap(),
            currency: "USD".into(),
        }
    }

    #[test]
    fn a_statement_adds_up_to_the_whole_month() {
        let terms = terms();
        let month = terms.calendar.month(1).unwrap();
        let window = ExclusionWindow {
            start: "2026-04-01T18:00:00Z".parse().unwrap(),
            end: "2026-04-01T20:00:00Z".parse().unwrap(),
        };
        let observed = ObservedMinutes {
            available: 40_000,
            failure: 447,
        };
        let now = "2026-06-01T00:00:00Z".parse().unwrap();
        let s = MonthStatement::compute(
            "t",
            &terms,
            month,
            observed,
            &ExcludedMinutes::new([window]),
            now,
        );
        assert_eq!(s.total_minutes, 44_640);
        assert_eq!(s.excluded_minutes, 120);
        assert_eq!(s.no_data_minutes, 44_640 - 120 - 40_000 - 447);
        assert!(!s.meets_commitment);
        assert_eq!(s.credit_percent, 10);
        assert_eq!(tiers::format_money(s.credit_amount), "120.00");
        assert!(s.complete);
        assert_eq!(
            s.coverage_basis_points,
            Some((40_447 * 10_000) / (44_640 - 120))
        );
    }

    #[test]
    fn coverage_counts_only_elapsed_minutes_of_a_running_month() {
        let terms = terms();
        let month = terms.calendar.month(1).unwrap();
        // One hour into the month, all 60 minutes observed.
        let now = "2026-03-16T17:00:00Z".parse().unwrap();
        let observed = ObservedMinutes {
            available: 60,
            failure: 0,
        };
        let s = MonthStatement::compute(
            "t",
            &terms,
            month,
            observed,
            &ExcludedMinutes::default(),
            now,
        );
        assert_eq!(s.coverage_basis_points, Some(10_000));
        assert!(!s.complete);
    }
}
