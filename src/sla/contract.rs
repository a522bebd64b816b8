//! A contract as data (docs/contracts.md): the period figures are kept per,
//! the measured interval, when an interval is down, the commitment, the
//! credit tiers and the claim window. The built-in `tencent-im` is one
//! contract among others; every figure of every target is decided here.
//!
//! Thresholds are compared exactly: percentages are `Decimal`s and every
//! comparison is a product of integers and decimals, never a division in
//! floating point.

use rust_decimal::Decimal;
use std::fmt::Write as _;

use std::collections::BTreeMap;

use super::{ExcludedMinutes, ObservedMinutes};
use crate::minute::{Minute, MinuteRange};
use crate::verdict::Verdict;

/// The name of the contract a target follows when it names none.
pub const DEFAULT_CONTRACT: &str = "tencent-im";

/// What the figures are kept per.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// From the purchase day to the same day of the next month (Tencent).
    ServiceMonth,
    /// From the 1st to the last day of a calendar month.
    CalendarMonth,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::ServiceMonth => "service_month",
            Period::CalendarMonth => "calendar_month",
        }
    }
}

/// When a measured interval is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownRule {
    /// Every conclusive attempt failed (Tencent's Apparent Failure).
    AllFailed,
    /// More than this percentage of the conclusive attempts failed.
    ErrorRate { above_percent: Decimal },
}

/// When the claim window opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimOpens {
    /// At 00:00 local on the day after the period's last day.
    PeriodEnd,
    /// At 00:00 local on the day after the fifth business day of the
    /// following calendar month (Tencent).
    FifthBusinessDay,
}

impl ClaimOpens {
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimOpens::PeriodEnd => "period_end",
            ClaimOpens::FifthBusinessDay => "fifth_business_day",
        }
    }
}

/// A credit owed when availability is below `below` percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreditTier {
    pub below: Decimal,
    pub percent: u32,
}

/// One contract's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contract {
    pub name: String,
    pub period: Period,
    /// The measured interval, in minutes: 1 to 60, dividing the hour, so
    /// intervals align on UTC hours.
    pub interval_minutes: u32,
    pub down_when: DownRule,
    /// An `ok` slower than this counts as failed (latency contracts).
    pub slow_after_ms: Option<u64>,
    /// Percent of the period's intervals that must be up.
    pub commitment: Decimal,
    /// Sorted by `below`, descending; percents ascending, at most 100. Empty:
    /// an internal objective, which owes no credit.
    pub credits: Vec<CreditTier>,
    pub claim_opens: ClaimOpens,
    /// The deadline is the period's last day plus this many days, 23:59:59 local.
    pub claim_days: u32,
}

/// What one measured interval held, over every prober and minute in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IntervalCounts {
    pub ok: i64,
    pub fail: i64,
    /// Of `ok`, how many were slower than the contract's `slow_after`.
    pub slow_ok: i64,
}

impl IntervalCounts {
    pub fn add(&mut self, other: IntervalCounts) {
        self.ok += other.ok;
        self.fail += other.fail;
        self.slow_ok += other.slow_ok;
    }
}

impl From<crate::verdict::OutcomeCounts> for IntervalCounts {
    fn from(counts: crate::verdict::OutcomeCounts) -> Self {
        IntervalCounts {
            ok: counts.ok,
            fail: counts.fail,
            slow_ok: counts.slow_ok,
        }
    }
}

impl Contract {
    /// The measured interval containing `minute` (aligned on UTC hours).
    pub fn interval_of(&self, minute: Minute) -> MinuteRange {
        let unit = i64::from(self.interval_minutes);
        let start = minute.0.div_euclid(unit) * unit;
        MinuteRange::new(Minute(start), Minute(start + unit))
    }

    /// Tencent Cloud IM's SLA, as improbe has always applied it.
    pub fn tencent_im() -> Contract {
        Contract {
            name: DEFAULT_CONTRACT.to_owned(),
            period: Period::ServiceMonth,
            interval_minutes: 1,
            down_when: DownRule::AllFailed,
            slow_after_ms: None,
            commitment: Decimal::from(99),
            credits: vec![
                CreditTier {
                    below: Decimal::from(99),
                    percent: 10,
                },
                CreditTier {
                    below: Decimal::from(95),
                    percent: 20,
                },
                CreditTier {
                    below: Decimal::from(90),
                    percent: 30,
                },
            ],
            claim_opens: ClaimOpens::FifthBusinessDay,
            claim_days: 60,
        }
    }

    /// The verdict of one measured interval. Exclusion wins; inconclusive
    /// attempts are not counted at all; a slow `ok` is a failure.
    pub fn interval_verdict(&self, counts: IntervalCounts, excluded: bool) -> Verdict {
        if excluded {
            return Verdict::Excluded;
        }
        let slow = if self.slow_after_ms.is_some() {
            counts.slow_ok
        } else {
            0
        };
        let successes = counts.ok - slow;
        let failures = counts.fail + slow;
        if successes + failures == 0 {
            return Verdict::NoData;
        }
        let down = match self.down_when {
            DownRule::AllFailed => successes == 0,
            DownRule::ErrorRate { above_percent } => {
                Decimal::from(failures) * Decimal::ONE_HUNDRED
                    > above_percent * Decimal::from(successes + failures)
            }
        };
        if down {
            Verdict::Failure
        } else {
            Verdict::Available
        }
    }

    /// Whether the stored minute verdicts already are this contract's
    /// interval verdicts (one minute, down when every conclusive attempt
    /// failed, no latency rule), so figures can be summed from them.
    pub fn decides_per_minute(&self) -> bool {
        self.interval_minutes == 1
            && self.down_when == DownRule::AllFailed
            && self.slow_after_ms.is_none()
    }

    /// The available and down intervals of `range` from per-minute counts:
    /// minutes summed into their interval (aligned on UTC hours), each
    /// interval decided by [`Contract::interval_verdict`], those overlapping
    /// an exclusion window excluded. Each minute's `slow_ok` counts for
    /// latency rules.
    pub fn observe(
        &self,
        range: MinuteRange,
        minutes: impl IntoIterator<Item = (Minute, IntervalCounts)>,
        excluded: &ExcludedMinutes,
    ) -> ObservedMinutes {
        let unit = i64::from(self.interval_minutes);
        let mut intervals: BTreeMap<i64, IntervalCounts> = BTreeMap::new();
        for (minute, counts) in minutes {
            if !range.contains(minute) {
                continue;
            }
            intervals
                .entry(minute.0.div_euclid(unit))
                .or_default()
                .add(counts);
        }
        let mut observed = ObservedMinutes::default();
        for (index, counts) in intervals {
            let interval = MinuteRange::new(Minute(index * unit), Minute((index + 1) * unit));
            observed.add(
                self.interval_verdict(counts, excluded.overlaps(interval)),
                1,
            );
        }
        observed
    }

    /// `100 * (total - down) >= commitment * total`.
    pub fn meets_commitment(&self, down_units: i64, total_units: i64) -> bool {
        availability_at_least(self.commitment, down_units, total_units)
    }

    /// The most down intervals a period of `total_units` can have and still
    /// meet the commitment: the error budget.
    pub fn tolerated_down_units(&self, total_units: i64) -> i64 {
        if total_units <= 0 {
            return 0;
        }
        // down <= total * (100 - commitment) / 100, rounded down.
        let allowed = Decimal::from(total_units) * (Decimal::ONE_HUNDRED - self.commitment)
            / Decimal::ONE_HUNDRED;
        let mut down = rust_decimal::prelude::ToPrimitive::to_i64(&allowed.floor())
            .unwrap_or(0)
            .max(0);
        // The division may round; settle on the exact boundary.
        while down > 0 && !self.meets_commitment(down, total_units) {
            down -= 1;
        }
        while down < total_units && self.meets_commitment(down + 1, total_units) {
            down += 1;
        }
        down
    }

    /// The credit owed, in percent of the fee: the largest tier whose
    /// `below` the availability is under, `100 * (total - down) < below * total`.
    pub fn credit_percent(&self, down_units: i64, total_units: i64) -> u32 {
        self.credits
            .iter()
            .filter(|tier| !availability_at_least(tier.below, down_units, total_units))
            .map(|tier| tier.percent.min(100))
            .max()
            .unwrap_or(0)
    }

    /// Whether this contract owes credits at all (one without is an
    /// internal objective).
    pub fn has_credits(&self) -> bool {
        !self.credits.is_empty()
    }

    /// The rules in words, as `improbe contracts show` prints them and the
    /// report states them.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        let w = &mut out;
        let _ = writeln!(w, "Contract `{}`", self.name);
        let _ = writeln!(
            w,
            "- Period: {}.",
            match self.period {
                Period::ServiceMonth =>
                    "the Service Month, from the service start day to the same day of the next month, in the target's time zone",
                Period::CalendarMonth =>
                    "the calendar month, from the 1st to its last day, in the target's time zone",
            }
        );
        let unit = self.words().unit;
        let _ = writeln!(
            w,
            "- Measured per {unit}, aligned on UTC hours, over the attempts of every prober; inconclusive attempts count neither way."
        );
        if let Some(ms) = self.slow_after_ms {
            let _ = writeln!(w, "- A success slower than {ms} ms counts as a failure.");
        }
        let _ = writeln!(
            w,
            "- A {unit} is down when {}; one without a conclusive attempt has no data and is not down; one overlapping an exclusion window is excluded.",
            match self.down_when {
                DownRule::AllFailed => "it has failures and no success".to_owned(),
                DownRule::ErrorRate { above_percent } =>
                    format!("more than {above_percent} % of its conclusive attempts failed"),
            }
        );
        let _ = writeln!(
            w,
            "- Availability = (intervals in the period - down intervals) / intervals in the period; the commitment is {} %.",
            self.commitment
        );
        if self.credits.is_empty() {
            let _ = writeln!(w, "- No service credit: an internal objective.");
        } else {
            for tier in &self.credits {
                let _ = writeln!(
                    w,
                    "- Availability below {} %: a credit of {} % of the period's fee.",
                    tier.below, tier.percent
                );
            }
        }
        let _ = writeln!(
            w,
            "- Claims open {} and close {} days after the period's last day, at 23:59:59 local.",
            match self.claim_opens {
                ClaimOpens::PeriodEnd => "when the period ends",
                ClaimOpens::FifthBusinessDay =>
                    "after the fifth business day of the following calendar month",
            },
            self.claim_days
        );
        out
    }

    /// The nouns every reader (report, claim, status page, `sla` table,
    /// notifications) uses for this contract's figures.
    pub fn words(&self) -> Words {
        let unit = if self.interval_minutes == 1 {
            "minute".to_owned()
        } else {
            format!("{}-minute interval", self.interval_minutes)
        };
        Words {
            period: match self.period {
                Period::ServiceMonth => "Service Month",
                Period::CalendarMonth => "month",
            },
            down: if self.decides_per_minute() {
                "failure minute".to_owned()
            } else {
                format!("down {unit}")
            },
            // Tencent's word for a down minute, only where its rule applies.
            down_title: if self.decides_per_minute() {
                "Apparent Failure minute".to_owned()
            } else {
                format!("down {unit}")
            },
            down_short: if self.decides_per_minute() {
                "failure"
            } else {
                "down"
            },
            unit,
        }
    }
}

/// "120 of 432 tolerated failure minutes used": the error budget in the
/// contract's intervals, as the status page and the notifications state it.
pub fn budget_used(words: &Words, down_units: i64, tolerated_units: i64) -> String {
    format!(
        "{down_units} of {tolerated_units} tolerated {}s used",
        words.down
    )
}

/// How a contract's figures are named, decided once ([`Contract::words`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Words {
    /// What a period is called: "Service Month" or "month".
    pub period: &'static str,
    /// The measured interval: "minute" or "5-minute interval".
    pub unit: String,
    /// A down interval in running text: "failure minute", "down minute" or
    /// "down 5-minute interval".
    pub down: String,
    /// The same as the contract names it, for figures and headings:
    /// "Apparent Failure minute" under `tencent-im`.
    pub down_title: String,
    /// The same as a column heading: "failure" or "down".
    pub down_short: &'static str,
}

impl Words {
    /// `n` and the noun, plural unless `n` is 1: "3 down 5-minute intervals".
    pub fn count(n: i64, noun: &str) -> String {
        if n == 1 {
            format!("{n} {noun}")
        } else {
            format!("{n} {noun}s")
        }
    }

    /// The noun with a capital first letter, for a heading or label.
    pub fn capitalised(noun: &str) -> String {
        let mut chars = noun.chars();
        chars.next().map_or_else(String::new, |first| {
            first.to_uppercase().chain(chars).collect()
        })
    }
}

/// `100 * (total - down) >= percent * total`: availability at or above `percent`.
fn availability_at_least(percent: Decimal, down_units: i64, total_units: i64) -> bool {
    let up = (total_units - down_units).max(0);
    Decimal::from(up) * Decimal::ONE_HUNDRED >= percent * Decimal::from(total_units.max(0))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::sla::tiers;

    fn percent(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    proptest! {
        /// The built-in contract gives the figures the fixed rules gave.
        #[test]
        fn tencent_im_as_data_matches_the_fixed_rules(total in 0i64..200_000, down in 0i64..200_000) {
            let down = down.min(total);
            let tencent = Contract::tencent_im();
            prop_assert_eq!(tencent.credit_percent(down, total), tiers::credit_percent(down, total));
            prop_assert_eq!(tencent.meets_commitment(down, total), tiers::meets_commitment(down, total));
            prop_assert_eq!(tencent.tolerated_down_units(total), tiers::tolerated_failure_minutes(total));
        }

        /// Tiers and commitment agree with a direct rational comparison:
        /// availability = up / total against below / 100, cross-multiplied
        /// in 128-bit integers over hundredths of a percent.
        #[test]
        fn tiers_agree_with_rational_comparison(
            total in 1i64..100_000,
            down in 0i64..100_000,
            below in 1u32..=10_000,
            commitment in 1u32..=10_000,
        ) {
            let down = down.min(total);
            let contract = Contract {
                commitment: Decimal::new(i64::from(commitment), 2),
                credits: vec![CreditTier { below: Decimal::new(i64::from(below), 2), percent: 25 }],
                ..Contract::tencent_im()
            };
            let up = i128::from(total - down);
            // up / total < below / 10_000  <=>  up * 10_000 < below * total
            let under = up * 10_000 < i128::from(below) * i128::from(total);
            prop_assert_eq!(contract.credit_percent(down, total), if under { 25 } else { 0 });
            let meets = up * 10_000 >= i128::from(commitment) * i128::from(total);
            prop_assert_eq!(contract.meets_commitment(down, total), meets);
            let budget = contract.tolerated_down_units(total);
            prop_assert!(contract.meets_commitment(budget, total));
            prop_assert!(budget == total || !contract.meets_commitment(budget + 1, total));
        }
    }

    proptest! {
        /// Interval verdicts summed from per-minute buckets equal those
        /// decided from the raw attempts of each interval directly.
        #[test]
        fn interval_verdicts_from_buckets_equal_those_from_attempts(
            attempts in proptest::collection::vec((0i64..120, 0u8..3, proptest::bool::ANY), 0..300),
            unit in prop_oneof![Just(1u32), Just(5), Just(15), Just(60)],
            rate in 0u32..=100,
            excluded_at in proptest::option::of(0i64..120),
        ) {
            let contract = Contract {
                interval_minutes: unit,
                down_when: DownRule::ErrorRate { above_percent: Decimal::from(rate) },
                slow_after_ms: Some(200),
                ..Contract::tencent_im()
            };
            let base = 28_000_020i64; // a whole hour, in minutes since the epoch
            let range = MinuteRange::new(Minute(base), Minute(base + 120));
            let excluded = ExcludedMinutes::new(excluded_at.map(|m| crate::sla::ExclusionWindow {
                start: Minute(base + m).start(),
                end: Minute(base + m + 1).start(),
            }));
            // Per-minute buckets, as the store keeps them.
            let mut buckets: BTreeMap<Minute, IntervalCounts> = BTreeMap::new();
            for (minute, outcome, slow) in &attempts {
                let b = buckets.entry(Minute(base + minute)).or_default();
                match outcome {
                    0 => { b.ok += 1; if *slow { b.slow_ok += 1 } }
                    1 => b.fail += 1,
                    _ => {}
                }
            }
            let from_buckets = contract.observe(range, buckets, &excluded);
            // Directly: each interval's attempts counted afresh.
            let mut direct = ObservedMinutes::default();
            let u = i64::from(unit);
            for k in 0..(120 / u) {
                let (from, to) = (k * u, (k + 1) * u);
                let mut counts = IntervalCounts::default();
                for (minute, outcome, slow) in &attempts {
                    if (from..to).contains(minute) {
                        match outcome {
                            0 => { counts.ok += 1; if *slow { counts.slow_ok += 1 } }
                            1 => counts.fail += 1,
                            _ => {}
                        }
                    }
                }
                let is_excluded = excluded_at.is_some_and(|m| (from..to).contains(&m));
                direct.add(contract.interval_verdict(counts, is_excluded), 1);
            }
            prop_assert_eq!(from_buckets, direct);
        }
    }

    #[test]
    fn an_error_rate_interval_is_down_only_above_the_rate() {
        let contract = Contract {
            down_when: DownRule::ErrorRate {
                above_percent: percent("5"),
            },
            interval_minutes: 5,
            ..Contract::tencent_im()
        };
        let counts = |ok, fail| IntervalCounts {
            ok,
            fail,
            slow_ok: 0,
        };
        assert_eq!(
            contract.interval_verdict(counts(95, 5), false),
            Verdict::Available
        );
        assert_eq!(
            contract.interval_verdict(counts(94, 6), false),
            Verdict::Failure
        );
        assert_eq!(
            contract.interval_verdict(counts(0, 0), false),
            Verdict::NoData
        );
        assert_eq!(
            contract.interval_verdict(counts(0, 9), true),
            Verdict::Excluded
        );
    }

    #[test]
    fn a_slow_success_is_a_failure_only_under_a_latency_rule() {
        let slow = IntervalCounts {
            ok: 3,
            fail: 0,
            slow_ok: 3,
        };
        assert_eq!(
            Contract::tencent_im().interval_verdict(slow, false),
            Verdict::Available
        );
        let latency = Contract {
            slow_after_ms: Some(200),
            ..Contract::tencent_im()
        };
        assert_eq!(latency.interval_verdict(slow, false), Verdict::Failure);
        let one_fast = IntervalCounts {
            ok: 3,
            fail: 0,
            slow_ok: 2,
        };
        assert_eq!(
            latency.interval_verdict(one_fast, false),
            Verdict::Available
        );
    }

    #[test]
    fn an_objective_without_credits_owes_nothing() {
        let objective = Contract {
            credits: Vec::new(),
            ..Contract::tencent_im()
        };
        assert_eq!(objective.credit_percent(1_000, 1_000), 0);
        assert!(!objective.has_credits());
        assert!(objective.describe().contains("internal objective"));
    }

    #[test]
    fn each_contract_names_its_figures_in_its_own_words() {
        let tencent = Contract::tencent_im().words();
        assert_eq!(tencent.period, "Service Month");
        assert_eq!(tencent.down_title, "Apparent Failure minute");
        assert_eq!(
            budget_used(&tencent, 17, 432),
            "17 of 432 tolerated failure minutes used"
        );
        let five = Contract {
            period: Period::CalendarMonth,
            interval_minutes: 5,
            ..Contract::tencent_im()
        }
        .words();
        assert_eq!(
            (five.period, five.unit.as_str()),
            ("month", "5-minute interval")
        );
        assert_eq!(
            budget_used(&five, 1, 8),
            "1 of 8 tolerated down 5-minute intervals used"
        );
        assert_eq!(
            five.down_title, "down 5-minute interval",
            "no Tencent term for another rule"
        );
        let latency = Contract {
            slow_after_ms: Some(200),
            ..Contract::tencent_im()
        }
        .words();
        assert_eq!(
            (latency.down.as_str(), latency.down_short),
            ("down minute", "down")
        );
        assert_eq!(Words::capitalised("month"), "Month");
    }
}
