//! `improbe report --format markdown`: the evidence as a document to paste
//! into a support ticket.

use std::fmt::Write as _;

use super::evidence::{Evidence, GAP_MINUTES, NO_INCIDENT, NO_PRIOR_NOTICE};

pub fn render(e: &Evidence) -> String {
    let f = &e.figures;
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        "# Availability evidence: `{}`, Service Month {}\n",
        e.target, f.month
    );
    let _ = writeln!(w, "{}\n", e.period());

    let _ = writeln!(w, "## Figures\n");
    let _ = writeln!(w, "| | |\n|---|---|");
    for (name, value) in e.figure_rows() {
        let _ = writeln!(w, "| {name} | {value} |");
    }

    let _ = writeln!(w, "\n## Incidents ({})\n", e.incidents.len());
    if e.incidents.is_empty() {
        let _ = writeln!(w, "{NO_INCIDENT}");
    }
    for (n, incident) in e.incidents.iter().enumerate() {
        let _ = writeln!(w, "### {}\n", incident.title(n + 1));
        let _ = writeln!(w, "Seen by: {}\n", cell(&incident.seen_by()));
        let _ = writeln!(
            w,
            "| operation | ok | fail | inconclusive |\n|---|---:|---:|---:|"
        );
        for (kind, t) in &incident.attempts {
            let _ = writeln!(w, "| {kind} | {} | {} | {} |", t.ok, t.fail, t.inconclusive);
        }
        if !incident.errors.is_empty() {
            let _ = writeln!(
                w,
                "\n| HTTP status | error code | outcome | count | samples |\n|---|---|---|---:|---|"
            );
            for group in &incident.errors {
                let samples: Vec<String> = group
                    .samples
                    .iter()
                    .map(|s| {
                        format!(
                            "{} {} {}: {}",
                            s.started_at,
                            s.prober,
                            s.kind,
                            cell(s.error.as_deref().unwrap_or("-"))
                        )
                    })
                    .collect();
                let _ = writeln!(
                    w,
                    "| {} | {} | {} | {} | {} |",
                    group
                        .http_status
                        .map_or_else(|| "-".to_owned(), |s| s.to_string()),
                    cell(group.error_code.as_deref().unwrap_or("-")),
                    group.outcome,
                    group.count,
                    samples.join("<br>")
                );
            }
        }
        let _ = writeln!(w);
    }

    let c = &e.coverage;
    let _ = writeln!(w, "## Coverage\n");
    let _ = writeln!(w, "{}\n", c.summary());
    if c.gaps.is_empty() {
        let _ = writeln!(w, "No gap longer than {GAP_MINUTES} minutes.");
    } else {
        let _ = writeln!(
            w,
            "Gaps longer than {GAP_MINUTES} minutes:\n\n| start | end | minutes | prober heartbeat |\n|---|---|---:|---|"
        );
        for gap in &c.gaps {
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} |",
                gap.start,
                gap.end,
                gap.minutes,
                cell(&gap.heartbeat)
            );
        }
    }

    let _ = writeln!(w, "\n## Exclusions\n");
    if e.exclusions.is_empty() {
        let _ = writeln!(w, "None applied.");
    } else {
        let _ = writeln!(
            w,
            "| id | start | end | minutes in month | reason | notice | recorded |\n|---:|---|---|---:|---|---|---|"
        );
        for x in &e.exclusions {
            let notice = match x.notice() {
                (text, false) => text,
                (text, true) => format!("**{NO_PRIOR_NOTICE}** {text}"),
            };
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} | {} | {} by {} ({}) |",
                x.id,
                x.start,
                x.end,
                x.minutes_in_month,
                cell(&x.reason),
                notice,
                x.recorded_at,
                cell(&x.recorded_by),
                x.source
            );
        }
    }

    let _ = writeln!(w, "\n## Days\n");
    let _ = writeln!(
        w,
        "| date | failure | no data | excluded | available |\n|---|---:|---:|---:|---:|"
    );
    for d in &e.days {
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} |",
            d.date, d.failure_minutes, d.no_data_minutes, d.excluded_minutes, d.available_minutes
        );
    }

    let _ = writeln!(w, "\n## Digest\n");
    let _ = writeln!(w, "{}", e.digest_line());
    out
}

/// Text safe inside a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace(['\n', '\r'], " ")
}
