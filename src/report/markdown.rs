//! `improbe report --format markdown`: the evidence as a document to paste
//! into a support ticket.

use std::fmt::Write as _;

use super::evidence::no_incident;
use crate::sla::contract::Words;

use super::evidence::{Cell, Evidence, GAP_MINUTES, Table};

pub fn render(e: &Evidence) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        "# Availability evidence: `{}`, {} {}\n",
        e.target,
        Words::capitalised(e.words.period),
        e.figures.month
    );
    let _ = writeln!(w, "{}\n", e.period());

    let _ = writeln!(w, "## Figures\n");
    let _ = writeln!(w, "| | |\n|---|---|");
    for (name, value) in e.figure_rows() {
        let _ = writeln!(w, "| {name} | {} |", escape(&value));
    }

    let _ = writeln!(w, "\n## Incidents ({})\n", e.incidents.len());
    if e.incidents.is_empty() {
        let _ = writeln!(w, "{}\n", no_incident(&e.words));
    }
    for (n, incident) in e.incidents.iter().enumerate() {
        let _ = writeln!(w, "### {}\n", incident.title(n + 1));
        let _ = writeln!(w, "Seen by: {}\n", escape(&incident.seen_by()));
        table(w, &incident.attempts_table());
        if let Some(delivery) = &incident.delivery {
            let _ = writeln!(w, "Delivery to the recipient: {}\n", delivery.line());
        }
        if !incident.errors.is_empty() {
            table(w, &incident.errors_table());
        }
    }

    let c = &e.coverage;
    let _ = writeln!(w, "## Coverage\n\n{}\n", c.summary());
    if c.gaps.is_empty() {
        let _ = writeln!(w, "No gap longer than {GAP_MINUTES} minutes.\n");
    } else {
        let _ = writeln!(w, "Gaps longer than {GAP_MINUTES} minutes:\n");
        table(w, &c.gaps_table());
    }

    let _ = writeln!(w, "## Exclusions\n");
    if e.exclusions.is_empty() {
        let _ = writeln!(w, "None applied.\n");
    } else {
        table(w, &e.exclusions_table());
    }

    let _ = writeln!(w, "## Days\n");
    table(w, &e.days_table());

    if e.undelivered_total > 0 {
        let _ = writeln!(w, "## {}\n", e.undelivered_heading());
        table(w, &e.undelivered_table());
    }

    let _ = writeln!(w, "## Digest\n\n{}", escape(&e.digest_line()));
    out
}

fn table(w: &mut String, t: &Table) {
    let _ = writeln!(w, "| {} |", t.header.join(" | "));
    let rule: Vec<&str> = (0..t.header.len())
        .map(|c| {
            if t.numeric.contains(&c) {
                "---:"
            } else {
                "---"
            }
        })
        .collect();
    let _ = writeln!(w, "|{}|", rule.join("|"));
    for row in &t.rows {
        let cells: Vec<String> = row
            .iter()
            .map(|cell| match cell {
                Cell::Text(text) => escape(text),
                Cell::Flagged(text) => format!("**{}**", escape(text)),
                Cell::Lines(lines) => lines
                    .iter()
                    .map(|l| escape(l))
                    .collect::<Vec<_>>()
                    .join("<br>"),
            })
            .collect();
        let _ = writeln!(w, "| {} |", cells.join(" | "));
    }
    let _ = writeln!(w);
}

/// Text safe inside a Markdown table cell: no column or line breaks, and
/// nothing Markdown would render: links and images (`[`, `]`), emphasis,
/// code and strike-through (`*`, `_`, `` ` ``, `~`), HTML and autolinks
/// (`<`, `>`), entities (`&`). Provider text stays text in a ticket.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '|' | '[' | ']' | '*' | '_' | '`' | '~' => {
                escaped.push('\\');
                escaped.push(c);
            }
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '&' => escaped.push_str("&amp;"),
            '\n' | '\r' => escaped.push(' '),
            c if c.is_control() => escaped.push(char::REPLACEMENT_CHARACTER),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn provider_text_renders_as_text() {
        let hostile = "[click](javascript:alert(1)) ![x](http://e/x.png) *b* `c` <b>&amp;|\ncol";
        assert_eq!(
            escape(hostile),
            "\\[click\\](javascript:alert(1)) !\\[x\\](http://e/x.png) \\*b\\* \\`c\\` &lt;b&gt;&amp;amp;\\| col"
        );
    }
}
