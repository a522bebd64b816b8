//! The sentences and tables of a report, decided once here; the Markdown
//! and HTML renderers only know their syntax (and escape every cell).

use super::*;

// The sentences both renderers print, written once.
impl Evidence {
    /// What the report covers and where it came from.
    pub fn period(&self) -> String {
        let f = &self.figures;
        format!(
            "{} {} to {} ({}), from {} to {} (end exclusive){}. Generated {} by improbe {}.",
            Words::capitalised(self.words.period),
            f.first_day,
            f.last_day,
            self.timezone,
            f.start,
            f.end,
            if f.complete { "" } else { ", still running" },
            self.generated_at,
            self.improbe_version
        )
    }

    /// The figures of `improbe sla`, as label and value.
    /// Under a contract measured in intervals longer than a minute, the
    /// counts are of intervals, and the contract is named.
    pub fn figure_rows(&self) -> Vec<(String, String)> {
        let f = &self.figures;
        let mut rows = Vec::new();
        if f.contract != crate::sla::contract::DEFAULT_CONTRACT {
            rows.push(("Contract".to_owned(), f.contract.clone()));
        }
        if f.unit_minutes == 1 {
            rows.extend([
                ("Total minutes".to_owned(), f.total_minutes.to_string()),
                (
                    format!("{}s", Words::capitalised(&self.words.down_title)),
                    f.failure_minutes.to_string(),
                ),
                (
                    "Excluded minutes".to_owned(),
                    f.excluded_minutes.to_string(),
                ),
                ("No-data minutes".to_owned(), f.no_data_minutes.to_string()),
            ]);
        } else {
            let unit = f.unit_minutes;
            rows.extend([
                (
                    format!("{unit}-minute intervals"),
                    f.total_units.to_string(),
                ),
                (
                    format!("Down {unit}-minute intervals"),
                    f.down_units.to_string(),
                ),
                (
                    format!("Excluded {unit}-minute intervals"),
                    f.excluded_units.to_string(),
                ),
                (
                    format!("No-data {unit}-minute intervals"),
                    f.no_data_units.to_string(),
                ),
            ]);
        }
        rows.extend([
            (
                "Availability".to_owned(),
                format!("{}%", f.availability_percent),
            ),
            ("Coverage".to_owned(), self.coverage.beside_availability()),
            (
                format!("Meets the {}% commitment", f.commitment),
                if f.meets_commitment { "yes" } else { "no" }.to_owned(),
            ),
            (
                "Credit".to_owned(),
                format!("{}% = {} {}", f.credit_percent, f.credit_amount, f.currency),
            ),
            ("Claim opens".to_owned(), f.claim_opens.clone()),
            ("Claim deadline".to_owned(), f.claim_deadline.clone()),
        ]);
        rows
    }

    pub fn digest_line(&self) -> String {
        let d = &self.digest;
        format!(
            "{}:{} over {} attempts: {}.",
            d.algorithm, d.value, d.attempts, d.canonical_form
        )
    }
}

impl Incident {
    pub fn title(&self, number: usize) -> String {
        format!(
            "{number}. {} to {} ({} minute{})",
            self.start,
            self.end,
            self.minutes,
            if self.minutes == 1 { "" } else { "s" }
        )
    }

    pub fn seen_by(&self) -> String {
        if self.probers.is_empty() {
            "-".to_owned()
        } else {
            self.probers.join(", ")
        }
    }
}

impl Coverage {
    pub fn is_low(&self) -> bool {
        self.coverage_percent
            .parse::<f64>()
            .is_ok_and(|p| p < LOW_COVERAGE_PERCENT)
            && self.elapsed_minutes > self.excluded_minutes
    }

    /// What stands beside the availability figure: how much of it was measured.
    pub fn beside_availability(&self) -> String {
        let measured = format!(
            "coverage {}% ({} of {} elapsed, not excluded minutes measured)",
            self.coverage_percent,
            self.observed_minutes,
            self.elapsed_minutes - self.excluded_minutes
        );
        if self.is_low() {
            format!(
                "{measured}: low coverage, this availability rests on too little data to file or reject a claim with"
            )
        } else {
            measured
        }
    }

    pub fn summary(&self) -> String {
        let mut summary = format!(
            "{} of {} elapsed minutes outside exclusions had a conclusive verdict ({}%); {} had no data, {} were excluded.",
            self.observed_minutes,
            self.elapsed_minutes - self.excluded_minutes,
            self.coverage_percent,
            self.no_data_minutes,
            self.excluded_minutes
        );
        if !self.given_up_probers.is_empty() {
            summary.push_str(&format!(
                " Given up after {} s without a report, so not waited for before announcing: {}.",
                crate::settlement::GIVE_UP_AFTER.as_secs(),
                self.given_up_probers.join("; ")
            ));
        }
        summary
    }
}

impl AppliedExclusion {
    /// The notice, and whether it must be flagged as "no prior notice".
    pub fn notice(&self) -> (String, bool) {
        match (&self.announced_at, self.prior_notice) {
            (Some(at), true) => (at.clone(), false),
            (Some(at), false) => (format!("(announced {at})"), true),
            (None, _) => (String::new(), true),
        }
    }
}

pub const NO_PRIOR_NOTICE: &str = "no prior notice";

/// A table of the report, decided here once; the renderers only know their
/// syntax (and escape every cell).
pub struct Table {
    pub header: Vec<&'static str>,
    /// Right-aligned columns.
    pub numeric: Vec<usize>,
    pub rows: Vec<Vec<Cell>>,
}

pub enum Cell {
    Text(String),
    /// Shown emphasised: something a reader must not miss.
    Flagged(String),
    /// Several lines in one cell.
    Lines(Vec<String>),
}

impl DeliverySummary {
    /// "412 confirmed (p50 80 ms, p95 140 ms, max 900 ms), 2 missing".
    pub fn line(&self) -> String {
        let mut line = format!("{} confirmed", self.confirmed);
        if let (Some(p50), Some(p95), Some(max)) = (self.p50_ms, self.p95_ms, self.max_ms) {
            line.push_str(&format!(" (p50 {p50} ms, p95 {p95} ms, max {max} ms)"));
        }
        if self.missing > 0 {
            line.push_str(&format!(", {} missing", self.missing));
        }
        line
    }
}

fn delivery_cell(delivery: Option<&DeliverySummary>) -> Cell {
    match delivery {
        None => text("-"),
        Some(d) if d.missing > 0 => Cell::Flagged(d.line()),
        Some(d) => Cell::Text(d.line()),
    }
}

fn text(value: impl ToString) -> Cell {
    Cell::Text(value.to_string())
}

fn or_dash<T: ToString>(value: Option<T>) -> Cell {
    value.map_or_else(|| text("-"), text)
}

impl Incident {
    pub fn attempts_table(&self) -> Table {
        Table {
            header: vec!["operation", "ok", "fail", "inconclusive"],
            numeric: vec![1, 2, 3],
            rows: self
                .attempts
                .iter()
                .map(|(kind, t)| vec![text(kind), text(t.ok), text(t.fail), text(t.inconclusive)])
                .collect(),
        }
    }

    pub fn errors_table(&self) -> Table {
        Table {
            header: vec![
                "HTTP status",
                "error code",
                "outcome",
                "count",
                "samples (verbatim)",
            ],
            numeric: vec![3],
            rows: self
                .errors
                .iter()
                .map(|group| {
                    let samples = group
                        .samples
                        .iter()
                        .map(|s| {
                            format!(
                                "{} {} {}: {}",
                                s.started_at,
                                s.prober,
                                s.kind,
                                s.error.as_deref().unwrap_or("-")
                            )
                        })
                        .collect();
                    let code = match group.error_code.as_deref() {
                        Some(code) if group.unclassified_code => {
                            Cell::Flagged(format!("{code} ({UNCLASSIFIED_CODE_NOTE})"))
                        }
                        other => or_dash(other),
                    };
                    vec![
                        or_dash(group.http_status),
                        code,
                        text(group.outcome),
                        text(group.count),
                        Cell::Lines(samples),
                    ]
                })
                .collect(),
        }
    }
}

impl Coverage {
    pub fn gaps_table(&self) -> Table {
        Table {
            header: vec!["gap start", "end", "minutes", "prober heartbeat"],
            numeric: vec![2],
            rows: self
                .gaps
                .iter()
                .map(|g| {
                    vec![
                        text(&g.start),
                        text(&g.end),
                        text(g.minutes),
                        text(&g.heartbeat),
                    ]
                })
                .collect(),
        }
    }
}

impl Evidence {
    pub fn exclusions_table(&self) -> Table {
        Table {
            header: vec![
                "id",
                "start",
                "end",
                "minutes in month",
                "reason",
                "notice",
                "recorded",
            ],
            numeric: vec![0, 3],
            rows: self
                .exclusions
                .iter()
                .map(|x| {
                    let notice = match x.notice() {
                        (text, false) => Cell::Text(text),
                        (text, true) => {
                            Cell::Flagged(format!("{NO_PRIOR_NOTICE} {text}").trim_end().to_owned())
                        }
                    };
                    vec![
                        text(x.id),
                        text(&x.start),
                        text(&x.end),
                        text(x.minutes_in_month),
                        text(&x.reason),
                        notice,
                        text(format!(
                            "{} by {} ({})",
                            x.recorded_at, x.recorded_by, x.source
                        )),
                    ]
                })
                .collect(),
        }
    }

    pub fn days_table(&self) -> Table {
        // The delivery column only where some send's delivery was checked.
        let with_delivery = self.days.iter().any(|d| d.delivery.is_some());
        // Minutes in each state; under an interval contract a minute takes
        // its interval's verdict, so the columns add up to the figures.
        let mut header = vec![
            "date",
            self.words.down_short,
            "no data",
            "excluded",
            "available",
        ];
        if with_delivery {
            header.push("delivery");
        }
        Table {
            header,
            numeric: vec![1, 2, 3, 4],
            rows: self
                .days
                .iter()
                .map(|d| {
                    let mut row = vec![
                        text(d.date),
                        text(d.failure_minutes),
                        text(d.no_data_minutes),
                        text(d.excluded_minutes),
                        text(d.available_minutes),
                    ];
                    if with_delivery {
                        row.push(delivery_cell(d.delivery.as_ref()));
                    }
                    row
                })
                .collect(),
        }
    }

    /// Delivery to the recipient, day by day, for the days that checked it.
    pub fn delivery_table(&self) -> Table {
        Table {
            header: vec!["date", "delivery"],
            numeric: vec![],
            rows: self
                .days
                .iter()
                .filter(|d| d.delivery.is_some())
                .map(|d| vec![text(d.date), delivery_cell(d.delivery.as_ref())])
                .collect(),
        }
    }

    /// Sends the provider accepted and the recipient never saw.
    pub fn undelivered_table(&self) -> Table {
        Table {
            header: vec!["started", "prober", "operation", "answered in ms"],
            numeric: vec![3],
            rows: self
                .undelivered
                .iter()
                .map(|s| {
                    vec![
                        text(&s.started_at),
                        text(&s.prober),
                        text(s.kind),
                        or_dash(s.latency_ms),
                    ]
                })
                .collect(),
        }
    }

    pub fn undelivered_heading(&self) -> String {
        let listed = self.undelivered.len() as u64;
        if listed < self.undelivered_total {
            format!(
                "Accepted but not delivered ({}; the first {listed} listed)",
                self.undelivered_total
            )
        } else {
            format!("Accepted but not delivered ({listed})")
        }
    }
}
