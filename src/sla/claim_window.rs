//! The claim window: after the fifth business day of the following calendar
//! month, and no later than 60 calendar days after the Service Month's last day.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, Utc, Weekday};
use chrono_tz::Tz;

use super::contract::ClaimOpens;
use super::months::{local_end_of_day, local_midnight};

/// Calendar days until the claim deadline, counted from the Service Month's last day.
pub const CLAIM_DEADLINE_DAYS: u64 = 60;

/// The business day whose end opens the claim window.
pub const CLAIM_OPENS_AFTER_BUSINESS_DAY: usize = 5;

/// Monday to Friday, minus holidays, plus make-up working days.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BusinessCalendar {
    pub holidays: BTreeSet<NaiveDate>,
    pub workdays: BTreeSet<NaiveDate>,
}

impl BusinessCalendar {
    pub fn is_business_day(&self, day: NaiveDate) -> bool {
        if self.workdays.contains(&day) {
            return true;
        }
        if self.holidays.contains(&day) {
            return false;
        }
        !matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
    }
}

/// When a claim for one Service Month may be filed, in the target's zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimWindow {
    /// 00:00 on the day after the fifth business day of the following month.
    pub opens: DateTime<Tz>,
    /// 23:59:59 on the 60th calendar day after the month's last day.
    pub deadline: DateTime<Tz>,
}

/// Where `now` stands relative to a claim window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimStatus {
    NotYetOpen,
    Open,
    Closed,
}

impl ClaimWindow {
    /// The window for a Service Month ending on `last_day`, which
    /// `ServiceCalendar::month` keeps months away from the calendar's end
    /// for (the `expect`s below cannot fire for any month it returns).
    pub fn for_month(last_day: NaiveDate, timezone: Tz, calendar: &BusinessCalendar) -> Self {
        Self::for_period(
            last_day,
            timezone,
            calendar,
            ClaimOpens::FifthBusinessDay,
            CLAIM_DEADLINE_DAYS,
        )
    }

    /// The window for a period ending on `last_day` under a contract's
    /// claim rules: opening at the period's end or after the fifth business
    /// day of the following month, closing `deadline_days` after `last_day`.
    pub fn for_period(
        last_day: NaiveDate,
        timezone: Tz,
        calendar: &BusinessCalendar,
        opens: ClaimOpens,
        deadline_days: u64,
    ) -> Self {
        let opens_on = match opens {
            ClaimOpens::PeriodEnd => last_day.checked_add_days(Days::new(1)).expect("in range"),
            ClaimOpens::FifthBusinessDay => {
                let following_month = last_day
                    .with_day(1)
                    .and_then(|d| d.checked_add_months(Months::new(1)))
                    .expect("date in range");
                // Counting runs on past the month's end if holidays leave fewer than five.
                let fifth_business_day = following_month
                    .iter_days()
                    .filter(|day| calendar.is_business_day(*day))
                    .nth(CLAIM_OPENS_AFTER_BUSINESS_DAY - 1)
                    .expect("business days never run out");
                fifth_business_day
                    .checked_add_days(Days::new(1))
                    .expect("in range")
            }
        };
        let deadline_day = last_day
            .checked_add_days(Days::new(deadline_days))
            .expect("in range");
        Self {
            opens: local_midnight(timezone, opens_on),
            deadline: local_end_of_day(timezone, deadline_day),
        }
    }

    pub fn status(&self, now: DateTime<Utc>) -> ClaimStatus {
        // The deadline is the last whole second of its day: the window is
        // closed from the next second on.
        if now < self.opens {
            ClaimStatus::NotYetOpen
        } else if now < self.deadline + chrono::Duration::seconds(1) {
            ClaimStatus::Open
        } else {
            ClaimStatus::Closed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn shanghai() -> Tz {
        "Asia/Shanghai".parse().unwrap()
    }

    fn days(list: &[&str]) -> BTreeSet<NaiveDate> {
        list.iter().map(|d| date(d)).collect()
    }

    #[test]
    fn worked_example_claim_window() {
        let calendar = BusinessCalendar {
            holidays: days(&["2026-05-01"]),
            workdays: days(&["2026-05-09"]),
        };
        let window = ClaimWindow::for_month(date("2026-04-16"), shanghai(), &calendar);
        // May 2026: 1 Fri holiday; 4,5,6,7,8 are business days 1..5.
        assert_eq!(window.opens.to_rfc3339(), "2026-05-09T00:00:00+08:00");
        assert_eq!(window.deadline.to_rfc3339(), "2026-06-15T23:59:59+08:00");
    }

    #[test]
    fn holidays_and_make_up_days_move_the_opening() {
        // (last day, holidays, workdays, expected opening day)
        let cases: [(&str, &[&str], &[&str], &str); 5] = [
            // No holidays: June 2026 starts on Monday; 5th business day Fri 5th.
            ("2026-05-16", &[], &[], "2026-06-06"),
            // Golden Week: 1-7 October holidays, make-up Sat 26 Sep and Sat 10 Oct.
            (
                "2026-09-16",
                &[
                    "2026-10-01",
                    "2026-10-02",
                    "2026-10-05",
                    "2026-10-06",
                    "2026-10-07",
                ],
                &["2026-10-10"],
                // Business days: 8, 9, 10 (Sat, make-up), 12, 13.
                "2026-10-14",
            ),
            // A make-up Saturday early in the month pulls the opening forward.
            ("2026-07-16", &[], &["2026-08-01"], "2026-08-07"),
            // The last day in December: the following month is January of the next year.
            ("2026-12-31", &["2027-01-01"], &[], "2027-01-09"),
            // A last day on the 31st: following month is the next calendar month, not +31 days.
            ("2026-01-31", &[], &[], "2026-02-07"),
        ];
        for (last_day, holidays, workdays, opens) in cases {
            let calendar = BusinessCalendar {
                holidays: days(holidays),
                workdays: days(workdays),
            };
            let window = ClaimWindow::for_month(date(last_day), shanghai(), &calendar);
            assert_eq!(
                window.opens.date_naive(),
                date(opens),
                "last day {last_day}"
            );
        }
    }

    #[test]
    fn status_at_the_edges() {
        let window =
            ClaimWindow::for_month(date("2026-04-16"), shanghai(), &BusinessCalendar::default());
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(window.opens.to_rfc3339(), "2026-05-08T00:00:00+08:00");
        assert_eq!(
            window.status(at("2026-05-07T15:59:59Z")),
            ClaimStatus::NotYetOpen
        );
        assert_eq!(window.status(at("2026-05-07T16:00:00Z")), ClaimStatus::Open);
        assert_eq!(window.status(at("2026-06-15T15:59:59Z")), ClaimStatus::Open);
        assert_eq!(
            window.status(at("2026-06-15T16:00:00Z")),
            ClaimStatus::Closed
        );
    }
}
