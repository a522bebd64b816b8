//! The live status page served at `/` by `improbe run`: per target, the
//! current period's availability with its coverage, down intervals (failure
//! minutes under `tencent-im`) against the error budget, the credit owed so far, any open incident, the
//! last hour minute by minute and the month as the report's calendar.
//! Self-contained like the report (no scripts, nothing fetched).

use std::fmt::Write as _;

use super::evidence::Evidence;
use super::html::{STYLE, calendar, esc, legend, minute_strip};
use crate::minute::Minute;
use crate::verdict::Verdict;

/// How often the page reloads itself.
pub const REFRESH_SECONDS: u32 = 30;

/// What the page shows for one target.
pub struct TargetStatus {
    pub evidence: Evidence,
    /// The last hour's closed minutes, oldest first.
    pub last_hour: Vec<(Minute, Verdict)>,
    /// Failure minutes the month can hold and still meet the commitment.
    pub tolerated_minutes: i64,
}

impl TargetStatus {
    /// The incident still running: one that reaches the last closed minute.
    fn open_incident(&self) -> Option<&super::evidence::Incident> {
        let last = self.last_hour.last()?.0;
        self.evidence
            .incidents
            .last()
            .filter(|i| i.range.end == last.next())
    }

    /// "120 of 432 tolerated failure minutes used (27%)", in the
    /// contract's intervals.
    pub fn budget_line(&self) -> String {
        let f = &self.evidence.figures;
        let tolerated = self.tolerated_minutes / f.unit_minutes.max(1);
        let share = if tolerated > 0 {
            format!(" ({}%)", f.down_units * 100 / tolerated)
        } else {
            String::new()
        };
        let used = crate::sla::contract::budget_used(&self.evidence.words, f.down_units, tolerated);
        format!("{used}{share}")
    }
}

pub fn render(statuses: &[TargetStatus], generated_at: &str) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = write!(
        w,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\n<title>improbe status</title>\n\
         <style>{STYLE}{PAGE_STYLE}</style>\n</head>\n<body>\n<h1>improbe status</h1>\n\
         <p>As of {} (refreshed every {REFRESH_SECONDS} s). Each figure covers the target's current period so far.</p>\n",
        esc(generated_at)
    );
    for status in statuses {
        card(w, status);
    }
    legend(w);
    let _ = writeln!(w, "</body>\n</html>");
    out
}

fn card(w: &mut String, status: &TargetStatus) {
    let e = &status.evidence;
    let f = &e.figures;
    let verdict_class = match (e.coverage.is_low(), f.meets_commitment) {
        (true, _) => "low",
        (false, true) => "ok",
        (false, false) => "bad",
    };
    let link = format!("/report/{}", esc(&e.target));
    let _ = writeln!(
        w,
        "<section class=\"card\"><h2><a href=\"{link}\">{}</a></h2>\n<p>{} {}: {} to {} ({})</p>",
        esc(&e.target),
        crate::sla::contract::Words::capitalised(e.words.period),
        f.month,
        f.first_day,
        f.last_day,
        esc(&e.timezone)
    );
    let _ = writeln!(
        w,
        "<div class=\"figures\"><div><div class=\"big {verdict_class}\">{}%</div><div class=\"cov{}\">{}</div></div><table>",
        f.availability_percent,
        if e.coverage.is_low() { " lowcov" } else { "" },
        esc(&e.coverage.beside_availability())
    );
    let open = match status.open_incident() {
        Some(i) => format!("since {} ({} minutes so far)", i.start, i.minutes),
        None => "none".to_owned(),
    };
    for (name, value, flagged) in [
        (
            "Error budget",
            status.budget_line(),
            f.failure_minutes > status.tolerated_minutes,
        ),
        (
            "Credit owed so far",
            format!("{}% = {} {}", f.credit_percent, f.credit_amount, f.currency),
            f.credit_percent > 0,
        ),
        ("Open incident", open, status.open_incident().is_some()),
        (
            "Incidents this period",
            e.incidents.len().to_string(),
            false,
        ),
        (
            "Claim window",
            format!("{} to {}", f.claim_opens, f.claim_deadline),
            false,
        ),
    ] {
        let class = if flagged { " class=\"flag\"" } else { "" };
        let _ = writeln!(w, "<tr><th>{name}</th><td{class}>{}</td></tr>", esc(&value));
    }
    let _ = writeln!(w, "</table></div>");
    let _ = writeln!(w, "<h3>Last hour</h3>");
    let strip = if e.figures.unit_minutes == 1 {
        "the last hour's minute verdicts".to_owned()
    } else {
        format!(
            "the last hour, each minute showing its {}'s verdict",
            e.words.unit
        )
    };
    minute_strip(w, &status.last_hour, &strip);
    let _ = writeln!(w, "<h3>This {}</h3>", esc(e.words.period));
    calendar(w, &e.days);
    let _ = writeln!(
        w,
        "<p><a href=\"{link}\">The {}'s full evidence report</a></p></section>",
        esc(e.words.period)
    );
}

const PAGE_STYLE: &str = ".card{border:1px solid #ddd;border-radius:6px;padding:8px 16px;margin:16px 0}\
.card h2{border:none;margin-top:4px}.flag{color:#b00020;font-weight:bold}\
svg{max-width:100%;height:auto}.figures{flex-wrap:wrap}\
@media (max-width:600px){body{margin:8px}.big{font-size:32px}}";
