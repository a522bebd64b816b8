//! Service Month statements from stored verdicts: the one place that feeds the
//! pure SLA engine from the database, for `improbe sla`, reports and the daemon.
//!
//! `service_months` is written by what changes minutes (the daemon, `import`,
//! `exclusions add|remove`) through [`refresh_service_months`]; the commands
//! that only read (`sla`, `report`) compute and print, and write nothing.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};

use crate::config::Target;
use crate::minute::{Minute, MinuteRange};
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

/// Whether a month's figures can still matter at `now`: it has not ended, or
/// its claim window has not closed.
pub fn is_open(target: &Target, month: &ServiceMonth, now: DateTime<Utc>) -> bool {
    !month.is_complete(now) || target.sla.claim_window(month.last_day).deadline >= now
}

/// The open months of a target at `now` ([`is_open`]): the current one and
/// the completed ones whose claim can still be filed, oldest first.
pub fn open_months(target: &Target, now: DateTime<Utc>) -> Vec<ServiceMonth> {
    let calendar = &target.sla.calendar;
    let Some(current) = calendar.month_containing(now) else {
        return Vec::new();
    };
    // Claim deadlines grow with the month, so the open months are the most
    // recent ones.
    let mut open: Vec<ServiceMonth> = (1..current.index)
        .rev()
        .filter_map(|k| calendar.month(k))
        .take_while(|month| is_open(target, month, now))
        .collect();
    open.reverse();
    open.push(current);
    open
}

/// How long after its end a completed month stays in [`Figures`] whatever it
/// owes: the notifications read this far back when a prober starts, and an
/// event about such a minute states that month's figures.
pub const RECENT_MINUTES: i64 = 2 * 24 * 60;

/// Every target's figures at one instant: the statements of its open months
/// ([`open_months`]) that a reader can ask for, each computed by
/// [`statements`]: the current month, a completed one for
/// [`RECENT_MINUTES`] after its end, and a completed one that owes a credit
/// while its claim window is open. The daemon computes
/// them once per settled minute (`daemon/settled.rs`) and every figure it
/// shows or sends is read from them: `/metrics`, the status page,
/// `/report`, the notifications and `service_months`.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// The instant the statements were computed for; `None`: never.
    pub computed_at: Option<DateTime<Utc>>,
    /// Per target in the config's order, its open months oldest first.
    targets: Vec<(String, Vec<MonthStatement>)>,
    by_name: HashMap<String, usize>,
}

impl Figures {
    /// The figures of `targets` at `now`.
    pub async fn compute(
        store: &dyn Store,
        targets: &[Target],
        now: DateTime<Utc>,
    ) -> anyhow::Result<Figures> {
        let mut figures = Figures::empty(now);
        for target in targets {
            let months = open_months(target, now);
            figures.insert(target, statements(store, target, months, now).await?, now);
        }
        Ok(figures)
    }

    /// No target yet, computed at `now`.
    pub fn empty(now: DateTime<Utc>) -> Figures {
        Figures {
            computed_at: Some(now),
            ..Figures::default()
        }
    }

    /// Keeps those of a target's statements a reader can ask for.
    pub fn insert(&mut self, target: &Target, statements: Vec<MonthStatement>, now: DateTime<Utc>) {
        let recent = Minute(Minute::containing(&now).0 - RECENT_MINUTES);
        let mut open: Vec<MonthStatement> = statements
            .into_iter()
            .filter(|s| {
                is_open(target, &s.month, now)
                    && (!s.complete || s.credit_percent > 0 || s.month.minutes().end > recent)
            })
            .collect();
        // Collecting in place keeps the buffer of every month computed (a
        // year's worth in the first round), for each target, for the run.
        open.shrink_to_fit();
        match self.by_name.get(&target.name) {
            Some(&i) => self.targets[i].1 = open,
            None => {
                self.by_name.insert(target.name.clone(), self.targets.len());
                self.targets.push((target.name.clone(), open));
            }
        }
    }

    /// A target's months kept, oldest first.
    pub fn open(&self, target: &str) -> &[MonthStatement] {
        self.by_name
            .get(target)
            .map_or(&[], |&i| self.targets[i].1.as_slice())
    }

    /// The statement of the month containing `minute`, if it is kept.
    pub fn containing(&self, target: &str, minute: Minute) -> Option<&MonthStatement> {
        self.open(target)
            .iter()
            .find(|s| s.month.minutes().contains(minute))
    }

    /// A target's statement of the month the figures were computed in.
    pub fn current(&self, target: &str) -> Option<&MonthStatement> {
        let at = self.computed_at?;
        self.containing(target, Minute::containing(&at))
    }

    /// Every target's current statement, in the config's order.
    pub fn currents(&self) -> Vec<&MonthStatement> {
        self.targets
            .iter()
            .filter_map(|(name, _)| self.current(name))
            .collect()
    }
}
