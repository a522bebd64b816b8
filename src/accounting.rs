//! Service Month statements from stored verdicts: the one place that feeds the
//! pure SLA engine from the database, for `improbe sla`, reports and the daemon.
//!
//! `service_months` is written by what changes minutes (the daemon, `import`,
//! `exclusions add|remove`) through [`refresh_service_months`]; the commands
//! that only read (`sla`, `report`) compute and print, and write nothing.

use chrono::{DateTime, NaiveDate, Utc};

use crate::config::Target;
use crate::minute::MinuteRange;
use crate::sla::MinuteBook;
use crate::sla::contract::IntervalCounts;
use crate::sla::{ExcludedMinutes, MonthStatement, ServiceMonth};
use crate::store::{Store, StoredExclusion};

/// Which Service Months to account for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonthSelection {
    /// Every month from the service start to the one containing `now`.
    ToDate,
    /// Only the month containing `now` (none before the service starts).
    Current,
    /// One month by its 1-based index.
    Index(u32),
    /// The month containing a local date.
    Containing(NaiveDate),
}

impl MonthSelection {
    /// `--month K` or `--date D` as given on the command line, else `default`.
    pub fn from_flags(
        month: Option<u32>,
        date: Option<NaiveDate>,
        default: MonthSelection,
    ) -> Self {
        match (month, date) {
            (Some(k), _) => MonthSelection::Index(k),
            (None, Some(date)) => MonthSelection::Containing(date),
            (None, None) => default,
        }
    }
}

/// The months a selection names for one target, oldest first.
pub fn select_months(
    target: &Target,
    selection: MonthSelection,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<ServiceMonth>> {
    let calendar = &target.sla.calendar;
    match selection {
        MonthSelection::ToDate => {
            let current = calendar.month_containing(now).map_or(0, |m| m.index);
            Ok((1..=current).filter_map(|k| calendar.month(k)).collect())
        }
        MonthSelection::Current => Ok(calendar.month_containing(now).into_iter().collect()),
        MonthSelection::Index(0) => {
            anyhow::bail!("--month must be 1 or more (month 1 starts on the service start)")
        }
        MonthSelection::Index(k) => calendar.month(k).map(|m| vec![m]).ok_or_else(|| {
            anyhow::anyhow!(
                "Service Month {k} of target `{}` lies beyond the dates improbe can represent; pick a smaller --month",
                target.name
            )
        }),
        MonthSelection::Containing(date) => calendar
            .month_containing_date(date)
            .map(|m| vec![m])
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{date} is before target `{}` started on {}; pick a later --date",
                    target.name,
                    calendar.service_start
                )
            }),
    }
}

/// The statements of one target for the given months.
pub async fn statements(
    store: &dyn Store,
    target: &Target,
    months: Vec<ServiceMonth>,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<MonthStatement>> {
    let windows = store.exclusions(Some(&target.name)).await?;
    let excluded = ExcludedMinutes::new(windows.iter().map(|e| e.window));
    let mut statements = Vec::with_capacity(months.len());
    let contract = &target.sla.contract;
    for month in months {
        let observed = if contract.decides_per_minute() {
            // The stored minute verdicts are the contract's: summed in SQL.
            store
                .observed_minutes(&target.name, month.minutes())
                .await?
        } else {
            let minutes = store.minute_verdicts(&target.name, month.minutes()).await?;
            contract.observe(
                month.minutes(),
                minutes
                    .into_iter()
                    .map(|m| (m.minute, IntervalCounts::from(m.counts))),
                &excluded,
            )
        };
        statements.push(MonthStatement::compute(
            &target.name,
            &target.sla,
            month,
            observed,
            &excluded,
            now,
        ));
    }
    Ok(statements)
}

/// Every minute of `range` for one target, as the report, `/metrics` and the
/// demo read them (the stored counts and the target's exclusion windows),
/// with the windows themselves.
pub async fn minute_book(
    store: &dyn Store,
    target: &str,
    range: MinuteRange,
) -> anyhow::Result<(MinuteBook, Vec<StoredExclusion>)> {
    let stored = store.minute_verdicts(target, range).await?;
    let windows = store.exclusions(Some(target)).await?;
    let excluded = ExcludedMinutes::new(windows.iter().map(|e| e.window));
    let book = MinuteBook::new(stored.into_iter().map(|v| (v.minute, v.counts)), excluded);
    Ok((book, windows))
}

/// Computes the statements of the given months and stores them in
/// `service_months`, for dashboards.
pub async fn refresh_service_months(
    store: &dyn Store,
    target: &Target,
    months: Vec<ServiceMonth>,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<MonthStatement>> {
    let statements = statements(store, target, months, now).await?;
    store.save_service_months(&statements, now).await?;
    Ok(statements)
}

/// The Service Months of a target that the instants `from ..= to` fall in
/// (none before the service starts), oldest first, and none after the month
/// following the one containing `now`: an imported date far in the future
/// keeps its attempts but does not make a `service_months` row per month up
/// to it.
pub fn months_touched(
    target: &Target,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<ServiceMonth> {
    let calendar = &target.sla.calendar;
    let Some(last) = calendar.month_containing(to) else {
        return Vec::new();
    };
    let horizon = calendar
        .month_containing(now)
        .map_or(1, |current| current.index.saturating_add(1));
    let first = calendar.month_containing(from).map_or(1, |m| m.index);
    (first..=last.index.min(horizon))
        .filter_map(|k| calendar.month(k))
        .collect()
}
