//! The SLA engine: pure, clock-free arithmetic over minutes (docs/sla.md).
//!
//! Nothing here reads a clock or a database: callers pass `now` and the
//! observed minute counts, so every figure is reproducible in a test.

pub mod claim_window;
pub mod contract;
pub mod exclusions;
pub mod minute_book;
pub mod months;
pub mod tiers;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

pub use claim_window::{BusinessCalendar, ClaimStatus, ClaimWindow};
pub use contract::Contract;
pub use exclusions::{ExcludedMinutes, ExclusionWindow};
pub use minute_book::MinuteBook;
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
    /// The rules every figure follows (`tencent-im` unless the target names another).
    pub contract: std::sync::Arc<Contract>,
}

/// Minute verdicts observed in one Service Month, outside exclusion windows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ObservedMinutes {
    pub available: i64,
    pub failure: i64,
}

impl SlaTerms {
    /// The claim window of the period ending on `last_day`, by the contract.
    pub fn claim_window(&self, last_day: chrono::NaiveDate) -> ClaimWindow {
        ClaimWindow::for_period(
            last_day,
            self.calendar.timezone,
            &self.business_days,
            self.contract.claim_opens,
            u64::from(self.contract.claim_days),
        )
    }
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
    /// The error budget: the most failure minutes the month can hold and
    /// still meet the commitment (432 in a 30-day month under `tencent-im`).
    pub tolerated_failure_minutes: i64,
    pub credit_percent: u32,
    pub credit_amount: Decimal,
    pub currency: String,
    pub claim: ClaimWindow,
    pub complete: bool,
    /// Share of the elapsed, non-excluded minutes that had a conclusive
    /// verdict, in hundredths of a percent; `None` before the month starts.
    pub coverage_basis_points: Option<i64>,
    /// The contract's measured interval, in minutes: every `*_minutes`
    /// figure is a whole number of these (1 under `tencent-im`).
    pub unit_minutes: i64,
    /// The name of the contract the figures follow.
    pub contract: String,
    /// The contract's commitment, in percent.
    pub commitment: Decimal,
}

impl MonthStatement {
    pub fn total_units(&self) -> i64 {
        self.total_minutes / self.unit_minutes
    }
    pub fn down_units(&self) -> i64 {
        self.failure_minutes / self.unit_minutes
    }
    pub fn available_units(&self) -> i64 {
        self.available_minutes / self.unit_minutes
    }
    pub fn excluded_units(&self) -> i64 {
        self.excluded_minutes / self.unit_minutes
    }
    pub fn no_data_units(&self) -> i64 {
        self.no_data_minutes / self.unit_minutes
    }
    /// The error budget in the contract's intervals.
    pub fn tolerated_down_units(&self) -> i64 {
        self.tolerated_failure_minutes / self.unit_minutes
    }
    /// [`Self::availability_percent`] unrounded, as a ratio, for gauges:
    /// the same down intervals over the same total.
    pub fn availability_ratio(&self) -> f64 {
        1.0 - self.down_units() as f64 / self.total_units().max(1) as f64
    }
}

/// Of the whole intervals in `range`, how many overlap an exclusion window.
fn excluded_units_within(excluded: &ExcludedMinutes, range: MinuteRange, unit: i64) -> i64 {
    let whole = MinuteRange::new(
        range.start,
        Minute(range.start.0 + range.len() / unit * unit),
    );
    excluded_units(excluded, whole, unit)
}

/// How many of the `unit`-minute intervals of `range` (aligned on UTC
/// hours) overlap an exclusion window.
fn excluded_units(excluded: &ExcludedMinutes, range: MinuteRange, unit: i64) -> i64 {
    if unit == 1 {
        return excluded.count_within(range);
    }
    let first = range.start.0.div_euclid(unit);
    let end = range.end.0.div_euclid(unit);
    (first..end)
        .filter(|k| excluded.overlaps(MinuteRange::new(Minute(k * unit), Minute((k + 1) * unit))))
        .count() as i64
}

impl MonthStatement {
    /// The figures of one period. `observed` counts the contract's measured
    /// intervals (minutes under `tencent-im`), as [`Contract::observe`]
    /// decides them; every threshold is applied to interval counts.
    pub fn compute(
        target: &str,
        terms: &SlaTerms,
        month: ServiceMonth,
        observed: ObservedMinutes,
        excluded: &ExcludedMinutes,
        now: DateTime<Utc>,
    ) -> Self {
        let contract = &terms.contract;
        let unit = i64::from(contract.interval_minutes);
        let minutes = month.minutes();
        let total_units = minutes.len() / unit;
        let excluded_units = excluded_units(excluded, minutes, unit);
        let no_data_units =
            (total_units - excluded_units - observed.available - observed.failure).max(0);
        let credit_percent = contract.credit_percent(observed.failure, total_units);

        let elapsed = MinuteRange::new(minutes.start, minutes.end.min(Minute::containing(&now)));
        let watchable = elapsed.len() / unit - excluded_units_within(excluded, elapsed, unit);
        let coverage_basis_points = (watchable > 0)
            .then(|| ((observed.available + observed.failure) * 10_000 / watchable).min(10_000));

        Self {
            target: target.to_owned(),
            total_minutes: total_units * unit,
            available_minutes: observed.available * unit,
            failure_minutes: observed.failure * unit,
            excluded_minutes: excluded_units * unit,
            no_data_minutes: no_data_units * unit,
            unit_minutes: unit,
            contract: contract.name.clone(),
            commitment: contract.commitment,
            availability_percent: tiers::availability_percent(observed.failure, total_units),
            meets_commitment: contract.meets_commitment(observed.failure, total_units),
            tolerated_failure_minutes: contract.tolerated_down_units(total_units) * unit,
            credit_percent,
            credit_amount: tiers::credit_amount(terms.monthly_fee, credit_percent),
            currency: terms.currency.clone(),
            claim: terms.claim_window(month.last_day),
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
            contract: std::sync::Arc::new(Contract::tencent_im()),
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
        // The gauge's ratio is the stated percentage before it is cut to
        // four decimals.
        let stated: f64 = s.availability_percent.parse().unwrap();
        let unrounded = s.availability_ratio() * 100.0;
        assert!(
            (0.0..0.000_1).contains(&(unrounded - stated)),
            "{unrounded} {stated}"
        );
        assert!((s.availability_ratio() - (1.0 - 447.0 / 44_640.0)).abs() < 1e-12);
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

    mod properties {
        use chrono::{Datelike, Days, NaiveDate};
        use proptest::prelude::*;

        use super::*;
        use crate::sla::contract::Period;

        /// Zones with DST in either hemisphere, half-hour DST, a skipped day
        /// (Apia, 2011-12-30), midnight DST changes, and none.
        const ZONES: [&str; 9] = [
            "Asia/Shanghai",
            "UTC",
            "America/New_York",
            "Europe/London",
            "Australia/Lord_Howe",
            "Pacific/Apia",
            "America/Santiago",
            "Asia/Kathmandu",
            "America/Havana",
        ];

        /// Tencent's Service Months, or calendar months whose claim window
        /// opens when the month ends.
        fn terms(start: NaiveDate, zone: &str, period: Period) -> SlaTerms {
            let contract = match period {
                Period::ServiceMonth => Contract::tencent_im(),
                Period::CalendarMonth => Contract {
                    name: "calendar".into(),
                    period,
                    claim_opens: contract::ClaimOpens::PeriodEnd,
                    claim_days: 30,
                    ..Contract::tencent_im()
                },
            };
            SlaTerms {
                calendar: ServiceCalendar::new(start, zone.parse().unwrap())
                    .with_period(contract.period),
                business_days: BusinessCalendar::default(),
                monthly_fee: "1200.00".parse().unwrap(),
                contract: std::sync::Arc::new(contract),
                currency: "USD".into(),
            }
        }

        fn any_period() -> impl Strategy<Value = Period> {
            prop_oneof![Just(Period::ServiceMonth), Just(Period::CalendarMonth)]
        }

        /// Any purchase date chrono can represent.
        fn any_date() -> impl Strategy<Value = NaiveDate> {
            let min = NaiveDate::MIN.num_days_from_ce();
            let max = NaiveDate::MAX.num_days_from_ce();
            (min..=max).prop_map(|d| NaiveDate::from_num_days_from_ce_opt(d).unwrap())
        }

        /// Any date, or one within a few years of either end of the range,
        /// where the months run out.
        fn edge_or_any_date() -> impl Strategy<Value = NaiveDate> {
            let near_min =
                (0u64..2_000).prop_map(|d| NaiveDate::MIN.checked_add_days(Days::new(d)).unwrap());
            let near_max =
                (0u64..2_000).prop_map(|d| NaiveDate::MAX.checked_sub_days(Days::new(d)).unwrap());
            prop_oneof![any_date(), near_min, near_max]
        }

        /// A purchase date of the last 50 years and the next 200.
        fn plausible_date() -> impl Strategy<Value = NaiveDate> {
            let start = NaiveDate::from_ymd_opt(1976, 1, 1).unwrap();
            (0u64..250 * 366).prop_map(move |d| start.checked_add_days(Days::new(d)).unwrap())
        }

        fn check_month(terms: &SlaTerms, index: u32) -> Result<(), TestCaseError> {
            let calendar = &terms.calendar;
            let Some(month) = calendar.month(index) else {
                return Ok(());
            };
            prop_assert!(month.start < month.end);
            prop_assert_eq!(month.index, index);
            prop_assert_eq!(
                month.total_minutes(),
                (month.end - month.start).num_minutes(),
                "total minutes are the elapsed minutes"
            );
            prop_assert!(month.first_day <= month.last_day);
            if index == 1 {
                prop_assert!(
                    month.first_day <= calendar.service_start
                        && calendar.service_start <= month.last_day,
                    "period 1 contains the service start"
                );
            }
            if calendar.period == Period::CalendarMonth {
                prop_assert_eq!(month.first_day.day(), 1, "calendar months start on the 1st");
            }
            if let Some(next) = calendar.month(index + 1) {
                prop_assert_eq!(next.start, month.end, "months tile time");
                prop_assert_eq!(next.first_day, month.last_day.succ_opt().unwrap());
            }
            if index > 1 {
                let previous = calendar.month(index - 1).unwrap();
                prop_assert_eq!(previous.end, month.start, "months tile time");
            }
            let start_utc = month.start.with_timezone(&Utc);
            let last_minute = month.end.with_timezone(&Utc) - chrono::Duration::minutes(1);
            prop_assert_eq!(
                calendar.month_containing(start_utc).map(|m| m.index),
                Some(index)
            );
            prop_assert_eq!(
                calendar.month_containing(last_minute).map(|m| m.index),
                Some(index)
            );
            let statement = MonthStatement::compute(
                "t",
                terms,
                month.clone(),
                ObservedMinutes::default(),
                &ExcludedMinutes::default(),
                start_utc,
            );
            prop_assert!(
                statement.claim.opens >= month.end,
                "opens after the month ends"
            );
            prop_assert!(statement.claim.deadline > statement.claim.opens);
            prop_assert_eq!(statement.total_minutes, month.total_minutes());
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn months_tile_and_their_figures_hold_for_plausible_contracts(
                start in plausible_date(),
                zone in 0..ZONES.len(),
                index in 1u32..400,
                period in any_period(),
            ) {
                check_month(&terms(start, ZONES[zone], period), index)?;
            }

            /// Nothing panics anywhere in the representable range: a month
            /// too far out is `None`, which commands report as an error.
            #[test]
            fn no_purchase_date_or_month_index_panics(
                start in edge_or_any_date(),
                zone in 0..ZONES.len(),
                index in prop_oneof![1u32..100, any::<u32>()],
                period in any_period(),
            ) {
                check_month(&terms(start, ZONES[zone], period), index)?;
            }
        }

        #[test]
        fn the_last_months_of_the_calendar_are_refused_not_panicked_on() {
            // Once `improbe sla --month 3121400` on a 2026-03-17 purchase.
            let terms = terms(
                NaiveDate::from_ymd_opt(2026, 3, 17).unwrap(),
                "Asia/Shanghai",
                Period::ServiceMonth,
            );
            assert!(terms.calendar.month(3_121_400).is_none());
            let last = (3_121_000..3_121_400)
                .rev()
                .find(|k| terms.calendar.month(*k).is_some())
                .expect("a representable month near the end");
            check_month(&terms, last).unwrap();
        }
    }
}
