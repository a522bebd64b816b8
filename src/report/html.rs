//! `improbe report --format html`: one self-contained file (inline CSS and
//! SVG, no scripts, nothing fetched) with a calendar of the Service Month
//! and a minute strip per incident.

use std::fmt::Write as _;

use chrono::Datelike;

use super::evidence::{Cell, Day, Evidence, GAP_MINUTES, Incident, Table, no_incident};
use crate::minute::Minute;
use crate::sla::contract::Words;
use crate::verdict::Verdict;

pub const COLOR_AVAILABLE: &str = "#2e7d32";
pub const COLOR_FAILURE_FEW: &str = "#f28b82";
pub const COLOR_FAILURE_SOME: &str = "#d93025";
pub const COLOR_FAILURE_MANY: &str = "#8b0000";
pub const COLOR_NO_DATA: &str = "#bdbdbd";
pub const COLOR_EXCLUDED: &str = "#5c6bc0";
pub const COLOR_FUTURE: &str = "#ffffff";

const CELL_W: u32 = 96;
const CELL_H: u32 = 58;
const STRIP_MINUTE_W: u32 = 10;

pub fn render(e: &Evidence) -> String {
    let f = &e.figures;
    let mut out = String::new();
    let w = &mut out;
    let title = format!(
        "Availability evidence: {}, {} {}",
        e.target,
        Words::capitalised(e.words.period),
        f.month
    );
    let _ = write!(
        w,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        esc(&title),
        esc(&title)
    );
    let _ = writeln!(w, "<p>{}</p>", esc(&e.period()));

    let verdict_class = match (e.coverage.is_low(), f.meets_commitment) {
        (true, _) => "low",
        (false, true) => "ok",
        (false, false) => "bad",
    };
    let _ = write!(
        w,
        "<section class=\"figures\"><div><div class=\"big {verdict_class}\">{}%</div><div class=\"cov{}\">{}</div></div><table>",
        f.availability_percent,
        if e.coverage.is_low() { " lowcov" } else { "" },
        esc(&e.coverage.beside_availability())
    );
    for (name, value) in e.figure_rows() {
        let _ = write!(w, "<tr><th>{name}</th><td>{}</td></tr>", esc(&value));
    }
    let _ = writeln!(w, "</table></section>");

    let _ = writeln!(w, "<h2>Calendar</h2>");
    calendar(w, &e.days);
    legend(w);

    let _ = writeln!(w, "<h2>Incidents ({})</h2>", e.incidents.len());
    if e.incidents.is_empty() {
        let _ = writeln!(w, "<p>{}</p>", esc(&no_incident(&e.words)));
    }
    for (n, incident) in e.incidents.iter().enumerate() {
        incident_section(w, n + 1, incident);
    }

    let c = &e.coverage;
    let _ = writeln!(w, "<h2>Coverage</h2>\n<p>{}</p>", esc(&c.summary()));
    if c.gaps.is_empty() {
        let _ = writeln!(w, "<p>No gap longer than {GAP_MINUTES} minutes.</p>");
    } else {
        table(w, &c.gaps_table());
    }

    if e.days.iter().any(|d| d.delivery.is_some()) {
        let _ = writeln!(w, "<h2>Delivery</h2>");
        table(w, &e.delivery_table());
        if e.undelivered_total > 0 {
            let _ = writeln!(w, "<h3>{}</h3>", esc(&e.undelivered_heading()));
            table(w, &e.undelivered_table());
        }
    }

    let _ = writeln!(w, "<h2>Exclusions</h2>");
    if e.exclusions.is_empty() {
        let _ = writeln!(w, "<p>None applied.</p>");
    } else {
        table(w, &e.exclusions_table());
    }

    let _ = writeln!(
        w,
        "<h2>Digest</h2>\n<p><code>{}</code></p>\n</body>\n</html>",
        esc(&e.digest_line())
    );
    out
}

/// The colour a day is shaded with: by its failure minutes, else by what
/// kind of minutes it had.
pub fn day_color(day: &Day) -> &'static str {
    match day.failure_minutes {
        0 => {}
        1..=9 => return COLOR_FAILURE_FEW,
        10..=59 => return COLOR_FAILURE_SOME,
        _ => return COLOR_FAILURE_MANY,
    }
    if day.available_minutes > 0 {
        COLOR_AVAILABLE
    } else if day.excluded_minutes > 0 {
        COLOR_EXCLUDED
    } else if day.no_data_minutes > 0 {
        COLOR_NO_DATA
    } else {
        COLOR_FUTURE
    }
}

fn verdict_color(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Available => COLOR_AVAILABLE,
        Verdict::Failure => COLOR_FAILURE_SOME,
        Verdict::NoData => COLOR_NO_DATA,
        Verdict::Excluded => COLOR_EXCLUDED,
    }
}

pub(super) fn calendar(w: &mut String, days: &[Day]) {
    let Some(first) = days.first() else { return };
    let offset = first.date.weekday().num_days_from_monday();
    let weeks = (offset + days.len() as u32).div_ceil(7);
    let (width, height) = (7 * CELL_W + 2, 20 + weeks * CELL_H + 2);
    let _ = writeln!(
        w,
        "<svg class=\"calendar\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"failure minutes per day\">"
    );
    for (i, name) in ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        .iter()
        .enumerate()
    {
        let _ = writeln!(
            w,
            "<text x=\"{}\" y=\"14\" class=\"wd\">{name}</text>",
            i as u32 * CELL_W + 6
        );
    }
    for (i, day) in days.iter().enumerate() {
        let slot = offset + i as u32;
        let (x, y) = ((slot % 7) * CELL_W + 1, 20 + (slot / 7) * CELL_H + 1);
        let color = day_color(day);
        let ink = if matches!(color, COLOR_FUTURE | COLOR_NO_DATA | COLOR_FAILURE_FEW) {
            "#222"
        } else {
            "#fff"
        };
        let detail = if day.failure_minutes > 0 {
            format!("{} failure min", day.failure_minutes)
        } else if day.no_data_minutes > 0 && day.available_minutes > 0 {
            format!("{} no-data min", day.no_data_minutes)
        } else {
            String::new()
        };
        let _ = writeln!(
            w,
            "<g><title>{}: {} failure, {} no data, {} excluded, {} available minutes</title>\
             <rect x=\"{x}\" y=\"{y}\" width=\"{}\" height=\"{}\" fill=\"{color}\" stroke=\"#999\"/>\
             <text x=\"{}\" y=\"{}\" fill=\"{ink}\" class=\"dn\">{}</text>\
             <text x=\"{}\" y=\"{}\" fill=\"{ink}\" class=\"dd\">{detail}</text></g>",
            day.date,
            day.failure_minutes,
            day.no_data_minutes,
            day.excluded_minutes,
            day.available_minutes,
            CELL_W - 4,
            CELL_H - 4,
            x + 6,
            y + 18,
            day.date.format("%b %-d"),
            x + 6,
            y + 40,
        );
    }
    let _ = writeln!(w, "</svg>");
}

pub(super) fn legend(w: &mut String) {
    let _ = write!(w, "<p class=\"legend\">");
    for (color, label) in [
        (COLOR_AVAILABLE, "no failure"),
        (COLOR_FAILURE_FEW, "1-9 failure minutes"),
        (COLOR_FAILURE_SOME, "10-59"),
        (COLOR_FAILURE_MANY, "60 or more"),
        (COLOR_NO_DATA, "no data"),
        (COLOR_EXCLUDED, "excluded"),
        (COLOR_FUTURE, "not yet"),
    ] {
        let _ = write!(
            w,
            "<svg width=\"12\" height=\"12\"><rect width=\"12\" height=\"12\" fill=\"{color}\" stroke=\"#999\"/></svg> {label} "
        );
    }
    let _ = writeln!(w, "</p>");
}

fn incident_section(w: &mut String, n: usize, incident: &Incident) {
    let _ = writeln!(
        w,
        "<section class=\"incident\"><h3>{}</h3>",
        esc(&incident.title(n))
    );
    minute_strip(w, &incident.strip, "minute verdicts around the incident");
    let _ = writeln!(w, "<p>Seen by: {}</p>", esc(&incident.seen_by()));
    table(w, &incident.attempts_table());
    if let Some(delivery) = &incident.delivery {
        let _ = writeln!(
            w,
            "<p>Delivery to the recipient: {}</p>",
            esc(&delivery.line())
        );
    }
    if !incident.errors.is_empty() {
        table(w, &incident.errors_table());
    }
    let _ = writeln!(w, "</section>");
}

/// One bar per minute, coloured by its verdict.
pub(super) fn minute_strip(w: &mut String, strip: &[(Minute, Verdict)], label: &str) {
    let width = strip.len() as u32 * STRIP_MINUTE_W + 2;
    let _ = write!(
        w,
        "<svg class=\"strip\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"26\" viewBox=\"0 0 {width} 26\" role=\"img\" aria-label=\"{}\">",
        esc(label)
    );
    for (i, (minute, verdict)) in strip.iter().enumerate() {
        let _ = write!(
            w,
            "<rect x=\"{}\" y=\"1\" width=\"{}\" height=\"24\" fill=\"{}\"><title>{} UTC: {}</title></rect>",
            1 + i as u32 * STRIP_MINUTE_W,
            STRIP_MINUTE_W - 1,
            verdict_color(*verdict),
            minute,
            verdict.as_str()
        );
    }
    let _ = writeln!(w, "</svg>");
}

fn table(w: &mut String, t: &Table) {
    let _ = write!(w, "<table><tr>");
    for name in &t.header {
        let _ = write!(w, "<th>{name}</th>");
    }
    let _ = writeln!(w, "</tr>");
    for row in &t.rows {
        let _ = write!(w, "<tr>");
        for (column, cell) in row.iter().enumerate() {
            let class = if t.numeric.contains(&column) {
                " class=\"n\""
            } else {
                ""
            };
            let content = match cell {
                Cell::Text(text) => esc(text),
                Cell::Flagged(text) => format!("<strong class=\"bad\">{}</strong>", esc(text)),
                Cell::Lines(lines) => lines
                    .iter()
                    .map(|l| format!("<code>{}</code>", esc(l)))
                    .collect::<Vec<_>>()
                    .join("<br>"),
            };
            let _ = write!(w, "<td{class}>{content}</td>");
        }
        let _ = writeln!(w, "</tr>");
    }
    let _ = writeln!(w, "</table>");
}

/// Escapes text for HTML: provider error messages are not ours to trust.
pub(super) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(super) const STYLE: &str = "body{font-family:'DejaVu Sans',Arial,sans-serif;margin:24px;color:#222;max-width:1100px}\
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}h3{font-size:15px}\
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:13px;vertical-align:top}\
td.n{text-align:right}.figures{display:flex;gap:24px;align-items:center}.big{font-size:40px;font-weight:bold}\
.ok{color:#2e7d32}.bad{color:#b00020}.low{color:#757575}.cov{font-size:13px;max-width:260px}.lowcov{color:#b00020;font-weight:bold}.wd{font-size:12px;fill:#555}.dn{font-size:13px;font-weight:bold}.dd{font-size:11px}\
.legend{font-size:12px}code{font-size:12px;word-break:break-all}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_text_cannot_inject_markup() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }
}
