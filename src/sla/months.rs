//! Service Months: anchored on the purchase day, in the target's time zone.

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use super::contract::Period;
use crate::minute::{Minute, MinuteRange};

/// Calendar months a Service Month must end before the last representable
/// date: its claim window closes up to 60 days after it ends.
const CALENDAR_HEADROOM_MONTHS: u32 = 3;

/// One Service Month of one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceMonth {
    /// 1-based: the month that starts on the purchase day is month 1.
    pub index: u32,
    pub first_day: NaiveDate,
    /// Inclusive: the day before the next Service Month starts.
    pub last_day: NaiveDate,
    pub start: DateTime<Tz>,
    /// Exclusive: where the next Service Month starts.
    pub end: DateTime<Tz>,
}

impl ServiceMonth {
    /// Every minute of the month, observed or not: the SLA's denominator.
    pub fn minutes(&self) -> MinuteRange {
        MinuteRange::new(
            Minute::containing(&self.start),
            Minute::containing(&self.end),
        )
    }

    /// Real elapsed minutes, so a month that crosses a DST change has 60 more or fewer.
    pub fn total_minutes(&self) -> i64 {
        self.minutes().len()
    }

    pub fn is_complete(&self, now: DateTime<Utc>) -> bool {
        now >= self.end
    }
}

/// The purchase day, zone and kind of period that define a target's
/// periods: Service Months anchored on the purchase day, or calendar months
/// (the contract's `period`). Month 1 is the one containing the service start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceCalendar {
    pub service_start: NaiveDate,
    pub timezone: Tz,
    pub period: Period,
}

impl ServiceCalendar {
    /// Service Months (Tencent's periods).
    pub fn new(service_start: NaiveDate, timezone: Tz) -> Self {
        Self {
            service_start,
            timezone,
            period: Period::ServiceMonth,
        }
    }

    pub fn with_period(self, period: Period) -> Self {
        Self { period, ..self }
    }

    /// The day of the month periods start on.
    fn anchor_day(&self) -> u32 {
        match self.period {
            Period::ServiceMonth => self.service_start.day(),
            Period::CalendarMonth => 1,
        }
    }

    /// Service Month `index` (1-based), or `None` for 0 or a month too close
    /// to the edge of the calendar's range to have all its figures: its
    /// claim window (up to 60 days after its end) and the instants around it
    /// must be representable too.
    pub fn month(&self, index: u32) -> Option<ServiceMonth> {
        let first_day = self.first_day_of(index)?;
        let next_first_day = self.first_day_of(index.checked_add(1)?)?;
        next_first_day.checked_add_months(Months::new(CALENDAR_HEADROOM_MONTHS))?;
        first_day.checked_sub_days(Days::new(1))?;
        Some(ServiceMonth {
            index,
            first_day,
            last_day: next_first_day.pred_opt()?,
            start: local_midnight(self.timezone, first_day),
            end: local_midnight(self.timezone, next_first_day),
        })
    }

    /// The Service Month containing a local calendar date.
    pub fn month_containing_date(&self, date: NaiveDate) -> Option<ServiceMonth> {
        if date < self.first_day_of(1)? {
            return None;
        }
        let months_apart = (date.year() - self.service_start.year()) * 12 + date.month() as i32
            - self.service_start.month() as i32;
        let index = u32::try_from(months_apart + 1).ok()?;
        // Month `index` starts in the date's calendar month; the date may still
        // fall before that start, i.e. in the previous Service Month.
        if date < self.first_day_of(index)? {
            self.month(index - 1)
        } else {
            self.month(index)
        }
    }

    /// The Service Month containing an instant.
    pub fn month_containing(&self, instant: DateTime<Utc>) -> Option<ServiceMonth> {
        let local_date = instant.with_timezone(&self.timezone).date_naive();
        let month = self.month_containing_date(local_date)?;
        // A zone whose midnight falls in a DST gap starts the day late; an
        // instant in that gap still belongs to the previous day's month.
        if instant < month.start {
            self.month(month.index - 1)
        } else {
            Some(month)
        }
    }

    /// The first day of month `index`: the anchor day of the (index-1)-th
    /// calendar month after the purchase, clamped to that month's last day.
    fn first_day_of(&self, index: u32) -> Option<NaiveDate> {
        let offset = index.checked_sub(1)?;
        let first_of_purchase_month = self.service_start.with_day(1)?;
        let first_of_month = first_of_purchase_month.checked_add_months(Months::new(offset))?;
        let last_day = first_of_month
            .checked_add_months(Months::new(1))?
            .pred_opt()?
            .day();
        first_of_month.with_day(self.anchor_day().min(last_day))
    }
}

/// 00:00 local on `date`, or the first instant of that day where a DST change
/// skips midnight (some zones move their clocks at 00:00).
pub fn local_midnight(tz: Tz, date: NaiveDate) -> DateTime<Tz> {
    let midnight = date.and_hms_opt(0, 0, 0).expect("midnight exists");
    for minutes in 0..=24 * 60 {
        let local = midnight + chrono::Duration::minutes(minutes);
        if let Some(instant) = tz.from_local_datetime(&local).earliest() {
            return instant;
        }
    }
    unreachable!("a day with no valid local time in {tz}")
}

/// 23:59:59 local at the end of `date`: one second before the next day starts.
pub fn local_end_of_day(tz: Tz, date: NaiveDate) -> DateTime<Tz> {
    let next = date.checked_add_days(Days::new(1)).expect("date in range");
    local_midnight(tz, next) - chrono::Duration::seconds(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn calendar(start: &str, tz: &str) -> ServiceCalendar {
        ServiceCalendar::new(date(start), tz.parse().unwrap())
    }

    #[test]
    fn worked_example_purchase_on_17_march_in_shanghai() {
        let m1 = calendar("2026-03-17", "Asia/Shanghai").month(1).unwrap();
        assert_eq!(m1.start.to_rfc3339(), "2026-03-17T00:00:00+08:00");
        assert_eq!(m1.end.to_rfc3339(), "2026-04-17T00:00:00+08:00");
        assert_eq!(m1.last_day, date("2026-04-16"));
        assert_eq!(m1.total_minutes(), 44_640);
    }

    #[test]
    fn anchor_days_29_to_31_clamp_to_short_months() {
        // (purchase day, month index, expected first day, expected last day)
        let cases = [
            ("2026-01-31", 1, "2026-01-31", "2026-02-27"),
            ("2026-01-31", 2, "2026-02-28", "2026-03-30"),
            ("2026-01-31", 3, "2026-03-31", "2026-04-29"),
            ("2026-01-31", 4, "2026-04-30", "2026-05-30"),
            ("2028-01-31", 2, "2028-02-29", "2028-03-30"),
            ("2026-01-30", 2, "2026-02-28", "2026-03-29"),
            ("2026-01-29", 2, "2026-02-28", "2026-03-28"),
            ("2028-01-29", 2, "2028-02-29", "2028-03-28"),
            ("2026-03-31", 2, "2026-04-30", "2026-05-30"),
            ("2026-08-31", 2, "2026-09-30", "2026-10-30"),
        ];
        for (start, index, first, last) in cases {
            let month = calendar(start, "UTC").month(index).unwrap();
            assert_eq!(
                (month.first_day, month.last_day),
                (date(first), date(last)),
                "{start} #{index}"
            );
        }
    }

    #[test]
    fn a_month_straddling_new_year() {
        let cal = calendar("2026-03-17", "Asia/Shanghai");
        let december = cal.month(10).unwrap();
        assert_eq!(december.first_day, date("2026-12-17"));
        assert_eq!(december.last_day, date("2027-01-16"));
        assert_eq!(december.total_minutes(), 31 * 1440);
        assert_eq!(
            cal.month_containing_date(date("2027-01-01")).unwrap().index,
            10
        );
        assert_eq!(
            cal.month_containing_date(date("2027-01-17")).unwrap().index,
            11
        );
    }

    #[test]
    fn dst_changes_the_minute_count() {
        // Berlin springs forward on 29 March 2026 and falls back on 25 October.
        let spring = calendar("2026-03-10", "Europe/Berlin").month(1).unwrap();
        assert_eq!(spring.total_minutes(), 31 * 1440 - 60);
        let autumn = calendar("2026-10-10", "Europe/Berlin").month(1).unwrap();
        assert_eq!(autumn.total_minutes(), 31 * 1440 + 60);
        assert_eq!(autumn.start.to_rfc3339(), "2026-10-10T00:00:00+02:00");
        assert_eq!(autumn.end.to_rfc3339(), "2026-11-10T00:00:00+01:00");
    }

    #[test]
    fn month_containing_respects_local_boundaries() {
        let cal = calendar("2026-03-17", "Asia/Shanghai");
        // 16:00 UTC on 16 April is already 17 April 00:00 in Shanghai: month 2.
        let instant: DateTime<Utc> = "2026-04-16T16:00:00Z".parse().unwrap();
        assert_eq!(cal.month_containing(instant).unwrap().index, 2);
        let before: DateTime<Utc> = "2026-04-16T15:59:59Z".parse().unwrap();
        assert_eq!(cal.month_containing(before).unwrap().index, 1);
        let too_early: DateTime<Utc> = "2026-03-16T15:59:59Z".parse().unwrap();
        assert!(cal.month_containing(too_early).is_none());
        assert!(cal.month(0).is_none());
    }

    #[test]
    fn midnight_in_a_dst_gap_starts_at_the_first_valid_instant() {
        // Santiago springs forward at 24:00 on 5 September 2026: 6 September starts at 01:00.
        let start = local_midnight("America/Santiago".parse().unwrap(), date("2026-09-06"));
        assert_eq!(start.to_rfc3339(), "2026-09-06T01:00:00-03:00");
    }

    #[test]
    fn end_of_day_is_one_second_before_midnight() {
        let end = local_end_of_day("Asia/Shanghai".parse().unwrap(), date("2026-06-15"));
        assert_eq!(end.to_rfc3339(), "2026-06-15T23:59:59+08:00");
    }
}
