//! Availability and money, decided without floating point. The commitment
//! and credit tiers are the contract's (`contract.rs`).

use rust_decimal::{Decimal, RoundingStrategy};

// The fixed rules improbe applied before contracts were data. `tencent-im`
// (`contract.rs`) restates them; they stay, for tests only, as the reference
// that proves it gives the same figures.

/// `Av >= 99%`, i.e. `failure * 100 <= total`. No floating point near a tier.
#[cfg(test)]
pub fn meets_commitment(failure_minutes: i64, total_minutes: i64) -> bool {
    failure_minutes * 100 <= total_minutes
}

/// The most failure minutes a month of `total_minutes` can have and still
/// meet the commitment (a 30-day month tolerates 432): the error budget.
#[cfg(test)]
pub fn tolerated_failure_minutes(total_minutes: i64) -> i64 {
    total_minutes.max(0) / 100
}

/// The credit tier, as a percentage of the month's fee.
///
/// `Av >= p%` is `(total - failure) * 100 >= p * total`, which for the tier
/// boundaries 99, 95 and 90 reduces to `failure * 100 <= (100 - p) * total`.
#[cfg(test)]
pub fn credit_percent(failure_minutes: i64, total_minutes: i64) -> u32 {
    let failed = failure_minutes * 100;
    if failed <= total_minutes {
        0
    } else if failed <= 5 * total_minutes {
        10
    } else if failed <= 10 * total_minutes {
        20
    } else {
        30
    }
}

/// Availability in percent, four decimals, rounded down (never flatters the provider's figure upwards).
pub fn availability_percent(failure_minutes: i64, total_minutes: i64) -> String {
    if total_minutes <= 0 {
        return "100.0000".to_owned();
    }
    let available = (total_minutes - failure_minutes).max(0);
    // In units of 0.0001 %.
    let units = i128::from(available) * 1_000_000 / i128::from(total_minutes);
    format!("{}.{:04}", units / 10_000, units % 10_000)
}

/// The credit owed: `fee * percent / 100`, never more than the fee itself.
///
/// The config caps the fee (`MAX_MONTHLY_FEE`), so the product cannot
/// overflow; should a fee that large ever arrive, dividing first still gives
/// the credit (to `Decimal`'s 28 digits) instead of a panic.
pub fn credit_amount(monthly_fee: Decimal, percent: u32) -> Decimal {
    let percent = Decimal::from(percent.min(100));
    let credit = monthly_fee
        .checked_mul(percent)
        .map(|product| product / Decimal::ONE_HUNDRED)
        .unwrap_or_else(|| monthly_fee / Decimal::ONE_HUNDRED * percent);
    credit.min(monthly_fee)
}

/// Money as printed: two places, rounded half away from zero.
pub fn format_money(amount: Decimal) -> String {
    let rounded = amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    format!("{rounded:.2}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_decimal_fee_gives_a_credit_instead_of_a_panic() {
        assert_eq!(credit_amount(Decimal::MAX, 100), Decimal::MAX);
        let tenth = credit_amount(Decimal::MAX, 10);
        assert!(
            tenth > Decimal::MAX / Decimal::from(11) && tenth < Decimal::MAX / Decimal::from(9)
        );
        assert_eq!(
            credit_amount("1200.00".parse().unwrap(), 30),
            "360".parse().unwrap()
        );
    }

    #[test]
    fn the_error_budget_is_the_last_minute_that_still_meets_the_commitment() {
        for total in [43_200, 44_640, 40_320, 41_760, 1, 0, 99, 100, 101] {
            let budget = tolerated_failure_minutes(total);
            assert!(meets_commitment(budget, total), "{total}");
            assert!(!meets_commitment(budget + 1, total), "{total}");
        }
        assert_eq!(tolerated_failure_minutes(43_200), 432);
        assert_eq!(tolerated_failure_minutes(44_640), 446);
    }

    #[test]
    fn tier_boundaries_are_exact() {
        // (failure minutes, total minutes, meets commitment, credit %, availability)
        let cases = [
            (0, 43_200, true, 0, "100.0000"),
            (432, 43_200, true, 0, "99.0000"),
            (433, 43_200, false, 10, "98.9976"),
            (446, 44_640, true, 0, "99.0008"),
            (447, 44_640, false, 10, "98.9986"),
            (2_160, 43_200, false, 10, "95.0000"),
            (2_161, 43_200, false, 20, "94.9976"),
            (4_320, 43_200, false, 20, "90.0000"),
            (4_321, 43_200, false, 30, "89.9976"),
            (43_200, 43_200, false, 30, "0.0000"),
            (1, 3, false, 30, "66.6666"),
        ];
        for (failure, total, meets, credit, availability) in cases {
            assert_eq!(meets_commitment(failure, total), meets, "{failure}/{total}");
            assert_eq!(credit_percent(failure, total), credit, "{failure}/{total}");
            let tencent = crate::sla::Contract::tencent_im();
            assert_eq!(
                tencent.credit_percent(failure, total),
                credit,
                "{failure}/{total}"
            );
            assert_eq!(
                tencent.meets_commitment(failure, total),
                meets,
                "{failure}/{total}"
            );
            assert_eq!(
                availability_percent(failure, total),
                availability,
                "{failure}/{total}"
            );
        }
    }

    #[test]
    fn money_rounds_half_away_from_zero_only_when_printed() {
        let fee: Decimal = "1200.00".parse().unwrap();
        assert_eq!(format_money(credit_amount(fee, 10)), "120.00");
        let odd: Decimal = "0.05".parse().unwrap();
        // 0.05 * 10% = 0.005, which rounds away from zero to 0.01.
        assert_eq!(format_money(credit_amount(odd, 10)), "0.01");
        let odd: Decimal = "333.35".parse().unwrap();
        assert_eq!(format_money(credit_amount(odd, 30)), "100.01");
        assert_eq!(format_money(credit_amount(fee, 0)), "0.00");
    }
}
