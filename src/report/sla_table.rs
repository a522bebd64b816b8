//! `improbe sla` output: a table for people, JSON and CSV for scripts (docs/commands.md "`improbe sla --format json`").

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::sla::{ClaimStatus, MonthStatement, tiers};

/// One element of `improbe sla --format json`, field for field as docs/commands.md lists them.
#[derive(Debug, Clone, Serialize)]
pub struct SlaRecord {
    pub target: String,
    pub month: u32,
    pub first_day: String,
    pub last_day: String,
    pub start: String,
    pub end: String,
    pub total_minutes: i64,
    pub failure_minutes: i64,
    pub excluded_minutes: i64,
    pub no_data_minutes: i64,
    pub available_minutes: i64,
    pub availability_percent: String,
    pub meets_commitment: bool,
    pub credit_percent: u32,
    pub credit_amount: String,
    pub currency: String,
    pub claim_opens: String,
    pub claim_deadline: String,
    pub complete: bool,
    /// The contract the figures follow (docs/contracts.md).
    pub contract: String,
    /// The contract's measured interval and the figures counted in it
    /// (equal to the minute figures under `tencent-im`).
    pub unit_minutes: i64,
    pub total_units: i64,
    pub down_units: i64,
    pub excluded_units: i64,
    pub no_data_units: i64,
    pub available_units: i64,
    /// The statement's error budget, for pages; not one of the documented JSON fields.
    #[serde(skip)]
    pub tolerated_failure_minutes: i64,
    /// The contract's commitment in percent, for the report's words.
    #[serde(skip)]
    pub commitment: String,
}

impl From<&MonthStatement> for SlaRecord {
    fn from(s: &MonthStatement) -> Self {
        Self {
            target: s.target.clone(),
            contract: s.contract.clone(),
            month: s.month.index,
            first_day: s.month.first_day.to_string(),
            last_day: s.month.last_day.to_string(),
            start: s.month.start.to_rfc3339(),
            end: s.month.end.to_rfc3339(),
            total_minutes: s.total_minutes,
            failure_minutes: s.failure_minutes,
            excluded_minutes: s.excluded_minutes,
            no_data_minutes: s.no_data_minutes,
            available_minutes: s.available_minutes,
            availability_percent: s.availability_percent.clone(),
            meets_commitment: s.meets_commitment,
            credit_percent: s.credit_percent,
            credit_amount: tiers::format_money(s.credit_amount),
            currency: s.currency.clone(),
            claim_opens: s.claim.opens.to_rfc3339(),
            claim_deadline: s.claim.deadline.to_rfc3339(),
            tolerated_failure_minutes: s.tolerated_failure_minutes,
            commitment: s.commitment.to_string(),
            unit_minutes: s.unit_minutes,
            total_units: s.total_units(),
            down_units: s.down_units(),
            excluded_units: s.excluded_units(),
            no_data_units: s.no_data_units(),
            available_units: s.available_units(),
            complete: s.complete,
        }
    }
}

pub fn json(statements: &[MonthStatement]) -> String {
    let records: Vec<SlaRecord> = statements.iter().map(SlaRecord::from).collect();
    serde_json::to_string_pretty(&records).expect("records serialise") + "\n"
}

const CSV_HEADER: &str = "target,month,first_day,last_day,start,end,total_minutes,failure_minutes,excluded_minutes,\
no_data_minutes,available_minutes,availability_percent,meets_commitment,credit_percent,credit_amount,currency,\
claim_opens,claim_deadline,complete,contract,unit_minutes,total_units,down_units,excluded_units,no_data_units,\
available_units";

pub fn csv(statements: &[MonthStatement]) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for r in statements.iter().map(SlaRecord::from) {
        let fields = [
            csv_field(&r.target),
            r.month.to_string(),
            r.first_day,
            r.last_day,
            r.start,
            r.end,
            r.total_minutes.to_string(),
            r.failure_minutes.to_string(),
            r.excluded_minutes.to_string(),
            r.no_data_minutes.to_string(),
            r.available_minutes.to_string(),
            r.availability_percent,
            r.meets_commitment.to_string(),
            r.credit_percent.to_string(),
            r.credit_amount,
            csv_field(&r.currency),
            r.claim_opens,
            r.claim_deadline,
            r.complete.to_string(),
            csv_field(&r.contract),
            r.unit_minutes.to_string(),
            r.total_units.to_string(),
            r.down_units.to_string(),
            r.excluded_units.to_string(),
            r.no_data_units.to_string(),
            r.available_units.to_string(),
        ];
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// An aligned table for a terminal.
pub fn table(statements: &[MonthStatement], now: DateTime<Utc>) -> String {
    if statements.is_empty() {
        return "No Service Month has started yet.\n".to_owned();
    }
    let header = [
        "TARGET",
        "MONTH",
        "PERIOD (LOCAL)",
        "AVAILABILITY",
        "FAILURE MIN",
        "NO-DATA MIN",
        "EXCLUDED MIN",
        "COVERAGE",
        "CREDIT",
        "CLAIM WINDOW",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    for s in statements {
        let period = format!(
            "{} .. {}{}",
            s.month.first_day,
            s.month.last_day,
            if s.complete { "" } else { " (running)" }
        );
        let verdict = if s.meets_commitment {
            String::new()
        } else {
            format!(" below {}%", s.commitment)
        };
        let coverage = s.coverage_basis_points.map_or_else(
            || "-".to_owned(),
            |bp| format!("{}.{:02}%", bp / 100, bp % 100),
        );
        let claim = match s.claim.status(now) {
            ClaimStatus::NotYetOpen => format!("opens {}", s.claim.opens.date_naive()),
            ClaimStatus::Open => format!("OPEN until {}", s.claim.deadline.date_naive()),
            ClaimStatus::Closed => format!("closed {}", s.claim.deadline.date_naive()),
        };
        rows.push(vec![
            s.target.clone(),
            s.month.index.to_string(),
            period,
            format!("{}%{verdict}", s.availability_percent),
            minutes_cell(s, s.failure_minutes),
            minutes_cell(s, s.no_data_minutes),
            minutes_cell(s, s.excluded_minutes),
            coverage,
            format!(
                "{}% = {} {}",
                s.credit_percent,
                tiers::format_money(s.credit_amount),
                s.currency
            ),
            claim,
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| pad_right(cell, *w))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Minutes, and under an interval contract the intervals they are:
/// "25 (5×5m)".
fn minutes_cell(s: &MonthStatement, minutes: i64) -> String {
    if s.unit_minutes == 1 {
        minutes.to_string()
    } else {
        format!(
            "{minutes} ({}×{}m)",
            minutes / s.unit_minutes,
            s.unit_minutes
        )
    }
}

/// `cell` padded with spaces to `width` characters. Not `format!("{:<w$}")`,
/// whose width must fit in 16 bits: a column that wide would panic.
fn pad_right(cell: &str, width: usize) -> String {
    let missing = width.saturating_sub(cell.chars().count());
    let mut padded = String::with_capacity(cell.len() + missing);
    padded.push_str(cell);
    padded.extend(std::iter::repeat_n(' ', missing));
    padded
}
